import Foundation
import Testing

/// Every command that reads a TOML file, fed broken ones: each must exit with 2 and one line naming the file,
/// the line and the reason — never crash.
@Suite struct BrokenConfigurationTests {
    struct Document: Sendable, CustomTestStringConvertible {
        let bytes: [UInt8]
        /// The line and a fragment of the reason expected, or nil when the file cannot even be read as text.
        let line: Int?
        let reason: String?

        init(_ text: String, line: Int, _ reason: String) {
            bytes = Array(text.utf8)
            self.line = line
            self.reason = reason
        }

        init(bytes: [UInt8]) {
            self.bytes = bytes
            line = nil
            reason = nil
        }

        var testDescription: String { String(decoding: bytes.prefix(40), as: UTF8.self).debugDescription }
    }

    static let corpus: [Document] = [
        Document("[[[broken", line: 1, "expected a key, found '['"),
        Document("[broken", line: 1, "expected ']' to close the header"),
        Document("listen = \"127.0.0.1:8189", line: 1, "unterminated string"),
        Document("# settings\nlisten = ", line: 2, "expected a value"),
        Document("=", line: 1, "expected a key, found '='"),
        Document("a = \"\\x41\"", line: 1, "invalid escape sequence"),
        Document("a = \"\\uD800\"", line: 1, "is not a Unicode scalar value"),
        Document("listen = \"a\"\nlisten = \"b\"", line: 2, "duplicate key listen"),
        Document("[a]\nx = 1\n[a]", line: 3, "table [a] is defined twice"),
        Document("a = { b = 1 }\na.c = 2", line: 2, "a is an inline table and cannot be extended"),
        Document("a = { b = 1, }", line: 1, "an inline table cannot end with a comma"),
        Document("a = 01", line: 1, "leading zeros are not allowed"),
        Document("a = 1__0", line: 1, "an underscore in a number must sit between two digits"),
        Document("a = +0x1", line: 1, "cannot have a sign"),
        Document("a = 99999999999999999999", line: 1, "integer out of range"),
        Document("a = 1979-02-30", line: 1, "has no day 30"),
        Document("a = \"nul \u{0}\"", line: 1, "control character U+0000"),
        Document("# bell \u{7}", line: 1, "control character U+0007 is not allowed in a comment"),
        Document("a = 1\rb = 2", line: 1, "a carriage return must be followed by a line feed"),
        Document("a = " + String(repeating: "[", count: 100_000), line: 1, "values nest deeper than 128 levels"),
        Document(String(repeating: "[", count: 100_000), line: 1, "expected a key, found '['"),
        Document(Array(repeating: "k", count: 10_000).joined(separator: ".") + " = 1", line: 1, "more than 128 parts"),
        Document(bytes: Array("listen = \"".utf8) + [0xC3, 0x28, 0x22]),
    ]

    /// The commands that read a TOML file, given its path and a scratch directory.
    static let commands: [(name: String, arguments: @Sendable (String, String) -> [String])] = [
        ("serve", { file, scratch in ["serve", "--config", file, "--data", scratch, "--listen", "127.0.0.1:0"] }),
        ("users list", { file, scratch in ["users", "list", "--config", file, "--data", scratch] }),
        ("tokens list", { file, scratch in ["tokens", "list", "--config", file, "--data", scratch] }),
        ("doctor", { file, _ in ["doctor", "--url", "http://127.0.0.1:9", "--config", file] }),
        ("secrets check", { file, _ in ["secrets", "check", "--manifest", file] }),
        ("secrets sync", { file, _ in ["secrets", "sync", "--dry-run", "--manifest", file] }),
        ("secrets rotate", { file, _ in ["secrets", "rotate", "--dry-run", "--manifest", file] }),
    ]

    @Test(arguments: corpus)
    func everyCommandRefusesTheFileWithExitCode2(_ document: Document) async throws {
        let directory = try AccountCommandTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("comfygate.toml").path
        try Data(document.bytes).write(to: URL(fileURLWithPath: file))
        let scratch = directory.appendingPathComponent("data").path
        for command in Self.commands {
            let result = try await CommandRunner.run(command.arguments(file, scratch), in: directory, timeout: 30)
            expectRefusal(result, of: document, in: file, by: command.name)
        }
        // `secrets check` finds comfygate-secrets.toml in the current directory without --manifest.
        let manifest = directory.appendingPathComponent("comfygate-secrets.toml").path
        try Data(document.bytes).write(to: URL(fileURLWithPath: manifest))
        let result = try await CommandRunner.run(["secrets", "check"], in: directory, timeout: 30)
        expectRefusal(result, of: document, in: manifest, by: "secrets check (default manifest)")
    }

    private func expectRefusal(_ result: CommandRunner.Result, of document: Document, in file: String, by command: String) {
        let context = Comment(rawValue: "\(command): status \(result.status), stderr: \(result.stderr.prefix(600))")
        #expect(result.status == 2, context)
        #expect(!result.stderr.contains("Fatal error") && !result.stderr.contains("Stack dump"), context)
        let naming = result.stderr.split(separator: "\n").filter { $0.contains(file) }
        #expect(naming.count == 1, context)
        guard let line = naming.first else { return }
        if let number = document.line, let reason = document.reason {
            #expect(line.contains("\(file):\(number):"), context)
            #expect(line.contains("not valid TOML: "), context)
            #expect(line.contains(reason), context)
        } else {
            #expect(line.contains("cannot read"), context)
        }
    }
}

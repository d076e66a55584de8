import ComfyGateCore
import Foundation
import Logging
import Synchronization
import Testing

@Suite struct StructuredLogHandlerTests {
    /// The lines a logger wrote.
    final class Lines: Sendable {
        private let lines = Mutex<[String]>([])

        var all: [String] { lines.withLock { $0 } }

        func logger(level: Logger.Level = .info, format: LogFormat = .logfmt) -> Logger {
            var logger = Logger(label: "comfygate") { label in
                StructuredLogHandler(label: label, format: format) { line in self.lines.withLock { $0.append(line) } }
            }
            logger.logLevel = level
            return logger
        }
    }

    static let forgedUser = "eve\ntime=2025-01-01T00:00:00.000Z level=info label=comfygate msg=\"login.succeeded\" user=admin"

    @Test func aForgedRecordInAUserNameStaysInsideItsField() throws {
        let lines = Lines()
        lines.logger().info("login.failed", metadata: ["user": "\(Self.forgedUser)", "client": "127.0.0.1"])
        let line = try #require(lines.all.first)
        #expect(lines.all.count == 1)
        #expect(!line.contains("\n") && !line.contains("\r"))
        let fields = try LogfmtReader.fields(line)
        #expect(fields.map(\.key) == ["time", "level", "label", "msg", "client", "user"])
        #expect(Dictionary(uniqueKeysWithValues: fields.map { ($0.key, $0.value) }) == [
            "time": fields[0].value, "level": "info", "label": "comfygate", "msg": "login.failed", "client": "127.0.0.1",
            "user": Self.forgedUser,
        ])
    }

    @Test func jsonLinesAreOneObjectWithStableKeysThatNoValueCanBreak() throws {
        let lines = Lines()
        lines.logger(format: .json).info("request", metadata: [
            "user": "\(Self.forgedUser)", "status": .stringConvertible(200), "duration_ms": .stringConvertible(1.5),
            "msg": "a value posing as the message", "path": "/view\u{2028}\"x\"\\",
        ])
        let line = try #require(lines.all.first)
        #expect(!line.contains("\n") && !line.contains("\r") && !line.contains("\u{2028}"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(Set(object.keys) == ["time", "level", "label", "msg", "_msg", "user", "status", "duration_ms", "path"])
        #expect(object["msg"] as? String == "request")
        #expect(object["_msg"] as? String == "a value posing as the message")
        #expect(object["level"] as? String == "info")
        #expect(object["label"] as? String == "comfygate")
        #expect(object["user"] as? String == Self.forgedUser)
        #expect(object["path"] as? String == "/view\u{2028}\"x\"\\")
        #expect(object["status"] as? Int == 200)
        #expect(object["duration_ms"] as? Double == 1.5)
        #expect(line.hasPrefix(#"{"time":""#))
    }

    @Test func theLineFormat() {
        let line = StructuredLogHandler.line(
            time: Date(timeIntervalSince1970: 1_700_000_000.25), level: .info, label: "comfygate",
            message: "login.succeeded", metadata: ["user": "x\nadmin", "client": "127.0.0.1", "empty": ""])
        #expect(
            line
                == #"time=2023-11-14T22:13:20.250Z level=info label=comfygate msg="login.succeeded" client=127.0.0.1 empty="" user="x\nadmin""#
        )
    }

    @Test func everyControlCharacterIsEscapedAndReadsBack() throws {
        let codes: [UInt32] = Array(0x00...0x1F) + Array(0x7F...0x9F) + [0x2028, 0x2029, 0x202E, 0x2066, 0x200F, 0x061C]
        let scalars = codes.compactMap { Unicode.Scalar($0) }
        let hostile = String(String.UnicodeScalarView(scalars)) + #" "quoted" back\slash é ✓"#
        let line = StructuredLogHandler.line(
            time: Date(), level: .warning, label: "comfygate", message: hostile, metadata: ["value": "\(hostile)"])
        let escaped = Set(scalars)
        #expect(!line.unicodeScalars.contains(where: escaped.contains))
        let fields = try LogfmtReader.fields(line)
        #expect(fields.first { $0.key == "msg" }?.value == hostile)
        #expect(fields.first { $0.key == "value" }?.value == hostile)
        #expect(line.contains("é ✓"), "printable text outside ASCII stays readable")
    }

    @Test(arguments: ["admin level=error", #"x" level="error"#, "a b", "", "x=y", "ünï", "tab\there", "\"", "\\"])
    func valuesThatCouldPoseAsFieldsAreQuoted(_ value: String) throws {
        let line = StructuredLogHandler.line(time: Date(), level: .info, label: "l", message: "m", metadata: ["user": "\(value)"])
        let fields = try LogfmtReader.fields(line)
        #expect(fields.map(\.key) == ["time", "level", "label", "msg", "user"])
        #expect(fields.last?.value == value)
        #expect(line.contains(" user=\""), "quoted: \(line)")
    }

    @Test(arguments: ["127.0.0.1", "127.0.0.1:8189", "http://127.0.0.1:8188/path", "[::1]:8189", "login.failed", "a-b_c~d%20"])
    func plainValuesStayBare(_ value: String) {
        let line = StructuredLogHandler.line(time: Date(), level: .info, label: "l", message: "m", metadata: ["address": "\(value)"])
        #expect(line.hasSuffix(" address=\(value)"))
    }

    @Test func keysAreSanitisedAndNeverRepeatAField() throws {
        let line = StructuredLogHandler.line(
            time: Date(), level: .info, label: "comfygate", message: "real",
            metadata: ["msg": "forged", "level": "error", "bad key\n=x": "1", "bad_key__x": "2", "": "3"])
        let fields = try LogfmtReader.fields(line)
        #expect(Set(fields.map(\.key)).count == fields.count, "\(line)")
        #expect(fields.first { $0.key == "msg" }?.value == "real")
        #expect(fields.first { $0.key == "level" }?.value == "info")
        #expect(fields.first { $0.key == "_msg" }?.value == "forged")
        #expect(fields.first { $0.key == "_level" }?.value == "error")
        #expect(fields.contains { $0.key == "_" && $0.value == "3" })
        #expect(Set(fields.filter { $0.key.hasSuffix("bad_key__x") }.map(\.value)) == ["1", "2"])
    }

    @Test func levelsAndLoggerMetadataApply() throws {
        let lines = Lines()
        var logger = lines.logger(level: .notice)
        logger[metadataKey: "request"] = "r1"
        logger.info("dropped")
        logger.notice("kept", metadata: ["request": "r2", "extra": "e"])
        #expect(lines.all.count == 1)
        let fields = try LogfmtReader.fields(try #require(lines.all.first))
        #expect(fields.map(\.key) == ["time", "level", "label", "msg", "extra", "request"])
        #expect(fields[1].value == "notice" && fields[3].value == "kept" && fields[5].value == "r2")
    }
}

/// Reads a logfmt line back: `key=bare` or `key="escaped"` fields separated by single spaces.
enum LogfmtReader {
    struct Malformed: Error {}

    static func fields(_ line: String) throws -> [(key: String, value: String)] {
        var scalars = Substring(line).unicodeScalars
        var fields: [(key: String, value: String)] = []
        while !scalars.isEmpty {
            guard let equals = scalars.firstIndex(of: "=") else { throw Malformed() }
            let key = String(Substring(scalars[..<equals]))
            scalars = scalars[scalars.index(after: equals)...]
            var value = ""
            if scalars.first == "\"" {
                scalars = scalars.dropFirst()
                while true {
                    guard let scalar = scalars.popFirst() else { throw Malformed() }
                    if scalar == "\"" { break }
                    guard scalar == "\\" else {
                        value.unicodeScalars.append(scalar)
                        continue
                    }
                    switch scalars.popFirst() {
                    case "n": value += "\n"
                    case "r": value += "\r"
                    case "t": value += "\t"
                    case "\"": value += "\""
                    case "\\": value += "\\"
                    case "u":
                        let hex = String(Substring(scalars.prefix(4)))
                        scalars = scalars.dropFirst(4)
                        guard hex.count == 4, let code = UInt32(hex, radix: 16), let decoded = Unicode.Scalar(code) else {
                            throw Malformed()
                        }
                        value.unicodeScalars.append(decoded)
                    default: throw Malformed()
                    }
                }
            } else {
                while let scalar = scalars.first, scalar != " " {
                    value.unicodeScalars.append(scalar)
                    scalars = scalars.dropFirst()
                }
            }
            fields.append((key, value))
            if let separator = scalars.popFirst(), separator != " " { throw Malformed() }
        }
        return fields
    }
}

import ArgumentParser
import ComfyGateCore
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `comfygate secrets`: one source of truth for a deployment's secrets, rendered into every file that needs them.
///
/// Exit codes: 0 success; 1 `check` found problems or an operation failed; 2 usage or manifest errors.
struct SecretsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "secrets",
        abstract: "Keep a deployment's secrets and their hashes in step (see docs/secrets.md).",
        discussion: """
            Exit codes: 0 success, 1 problems found or operation failed, 2 usage or manifest error.

            Examples:
              comfygate secrets init --layout comfyui-qwen
              comfygate secrets check --json
              comfygate secrets sync --dry-run
              comfygate secrets rotate qwen_api_user --grace 1h
            """,
        subcommands: [
            SecretsInitCommand.self, SecretsCheckCommand.self, SecretsSyncCommand.self, SecretsRotateCommand.self,
        ]
    )

    /// Opens the gateway store for `comfygate-store` targets: the SQLite store in the target's data directory.
    static let storeOpener: (any GatewayStoreOpener)? = SQLiteStoreOpener()
}

/// `--manifest FILE`, shared by `check`, `sync` and `rotate`.
struct ManifestOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The manifest (default: ./comfygate-secrets.toml).", valueName: "file"))
    var manifest: String?

    /// Loads and validates the manifest; on failure prints every problem and exits with 2.
    func engine() -> SecretsEngine {
        let url = URL(fileURLWithPath: manifest ?? SecretsManifest.defaultFileName).standardizedFileURL
        guard FileManager.default.fileExists(atPath: url.path) else {
            SecretsOutput.fail(
                [
                    "\(url.path): no manifest here (run `comfygate secrets init --layout comfyui-qwen`, or pass --manifest FILE)"
                ],
                code: 2)
        }
        do {
            let loaded = try SecretsManifest(contentsOf: url)
            return SecretsEngine(
                manifest: loaded, writer: SecretsOutput.writer(), storeOpener: SecretsCommand.storeOpener)
        } catch {
            SecretsOutput.fail(error.problems, code: 2)
        }
    }
}

/// Printing and exiting, shared by the subcommands.
enum SecretsOutput {
    /// Writes one line per problem to stderr and exits with `code`.
    static func fail(_ problems: [String], code: Int32) -> Never {
        for problem in problems { printError(problem) }
        exit(code)
    }

    static func printError(_ line: String) {
        FileHandle.standardError.write(Data(("comfygate secrets: " + line + "\n").utf8))
    }

    /// Maps an error thrown by the library to its message and exit code.
    static func fail(_ error: any Error) -> Never {
        switch error {
        case let error as ManifestError: fail(error.problems, code: 2)
        case let error as SecretsError: fail(error.problems, code: 1)
        default: fail(["\(error)"], code: 1)
        }
    }

    static func waiting(_ manifest: URL) {
        printError("another run holds \(SecretsLock.file(for: manifest).path); waiting for it to finish")
    }

    /// The file writer. `COMFYGATE_SECRETS_TEST_PAUSE=<step>:<n>` (used by the crash tests only) makes the
    /// process announce itself on stderr and stop before the n-th occurrence of that write step, so that a test
    /// can kill it there.
    static func writer() -> AtomicFileWriter {
        guard let setting = ProcessInfo.processInfo.environment["COMFYGATE_SECRETS_TEST_PAUSE"] else {
            return AtomicFileWriter()
        }
        let parts = setting.split(separator: ":")
        guard parts.count == 2, let step = WriteStep(rawValue: String(parts[0])), let target = Int(parts[1]) else {
            fail(["COMFYGATE_SECRETS_TEST_PAUSE must be <step>:<occurrence>, e.g. rename:1"], code: 2)
        }
        let seen = Mutex(0)
        return AtomicFileWriter { current, url in
            guard current == step else { return }
            let count = seen.withLock { value in
                value += 1
                return value
            }
            guard count == target else { return }
            FileHandle.standardError.write(Data("comfygate-secrets-paused \(step.rawValue) \(url.path)\n".utf8))
            while true { sleep(60) }
        }
    }

    /// One aligned row per location; notes on the following lines.
    static func table(_ reports: [LocationReport]) -> String {
        let rows = reports.map { report -> [String] in
            let what = report.role == .source ? "source" : report.value
            return [
                report.status.rawValue, report.secret, "\(report.location) [\(what)]", report.fingerprint ?? "-",
                report.reason ?? "",
            ]
        }
        let header = ["STATUS", "SECRET", "LOCATION", "FINGERPRINT", "DETAIL"]
        let widths = (0..<4).map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        func line(_ row: [String]) -> String {
            (0..<4).map { row[$0].padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ")
                + "  " + row[4]
        }
        var lines = [line(header)]
        for (row, report) in zip(rows, reports) {
            lines.append(line(row).trimmingCharacters(in: .whitespaces))
            for note in report.notes { lines.append(String(repeating: " ", count: widths[0] + 2) + "also: " + note) }
        }
        return lines.joined(separator: "\n")
    }
}

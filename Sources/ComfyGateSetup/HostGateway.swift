import ComfyGateCore
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A `comfygate serve` that setup runs on this host for its readiness and test steps, logging to a file, and
/// stops when it ends. Its environment has no `COMFYGATE_*` variable, so only the deployment's settings apply.
final class HostGateway: Sendable {
    private let process: ChildProcess
    private let log: URL

    init(executable: String, arguments: [String], log: URL) throws {
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("COMFYGATE_") }
        environment["NO_COLOR"] = "1"
        self.log = log
        process = try ChildProcess(
            [executable] + arguments, environment: environment, standardOutput: .file(log.path), standardError: .sameAsOutput)
    }

    var isRunning: Bool { process.isRunning }

    /// The last lines of its log.
    func logTail() -> String {
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        return text.split(whereSeparator: \.isNewline).suffix(3).joined(separator: " / ")
    }

    /// SIGTERM (a graceful stop), then SIGKILL after 10 seconds.
    func stop() async {
        process.send(SIGTERM)
        let deadline = ContinuousClock.now + .seconds(10)
        while process.isRunning {
            if ContinuousClock.now > deadline {
                process.send(SIGKILL)
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
    }
}

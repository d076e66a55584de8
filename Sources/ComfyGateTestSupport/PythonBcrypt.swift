import ComfyGateCore
import Foundation

/// Python's `bcrypt` package, run as a subprocess: the reference the secrets tests check interoperability
/// against, waited for on a thread of its own. A missing `python3` or `bcrypt` is an error, never a reason to skip.
public enum PythonBcrypt {
    /// Why Python's bcrypt could not be run.
    public struct Unavailable: Error, CustomStringConvertible {
        public var description: String
    }

    /// Whether Python's `bcrypt.checkpw` accepts `secret` for `hash`.
    public static func verify(_ secret: String, hash: String) async throws -> Bool {
        let output = try await run(
            "import bcrypt,sys; print(bcrypt.checkpw(sys.argv[1].encode(), sys.argv[2].encode()))", secret, hash)
        return output == "True"
    }

    /// A hash made by Python's `bcrypt.hashpw` with the given cost.
    public static func hash(_ secret: String, cost: Int) async throws -> String {
        try await run(
            "import bcrypt,sys; print(bcrypt.hashpw(sys.argv[1].encode(), bcrypt.gensalt(int(sys.argv[2]))).decode())",
            secret, String(cost))
    }

    private static func run(_ script: String, _ arguments: String...) async throws -> String {
        try await DedicatedThread.run(name: "test-python") { try runBlocking(script, arguments) }
    }

    private static func runBlocking(_ script: String, _ arguments: [String]) throws -> String {
        let child: ChildProcess
        do {
            child = try ChildProcess(["python3", "-c", script] + arguments)
        } catch {
            throw Unavailable(
                description: "python3 could not be started (\(error)); install Python 3 and `pip install bcrypt`")
        }
        let errors = Thread.detachedRead(child.standardError)
        let data = child.standardOutput?.readAllBytes() ?? Data()
        let errorData = errors.wait()
        guard child.waitForExit() == 0 else {
            throw Unavailable(
                description: "python3 with bcrypt failed (exit \(child.waitForExit())): "
                    + String(decoding: errorData, as: UTF8.self) + " — run `pip install bcrypt`")
        }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

import ComfyGateCore
import ComfyGateTestSupport
import Foundation
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Runs the built `comfygate` binary as a subprocess, as scripts and people do.
enum CommandRunner {
    struct Result: Sendable {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    /// The `comfygate` executable built beside this test bundle.
    static var executable: URL {
        let testBinary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var directory = testBinary.deletingLastPathComponent()
        while directory.path != "/" {
            let candidate = directory.appendingPathComponent("comfygate")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return URL(fileURLWithPath: ".build/debug/comfygate")
    }

    /// Runs to completion (at most `timeout` seconds) and collects both output streams. The waiting happens on
    /// a thread of its own, so servers in the test process keep running meanwhile.
    static func run(
        _ arguments: [String],
        in directory: URL? = nil,
        environment: [String: String] = [:],
        standardInput: String? = nil,
        timeout: TimeInterval = 120
    ) async throws -> Result {
        try await DedicatedThread.run(name: "test-subprocess") {
            try runBlocking(arguments, in: directory, environment: environment, standardInput: standardInput, timeout: timeout)
        }
    }

    private static func runBlocking(
        _ arguments: [String], in directory: URL?, environment: [String: String], standardInput: String?, timeout: TimeInterval
    ) throws -> Result {
        let child = try launch(arguments, in: directory, environment: environment, standardInput: .pipe)
        let output = Thread.detachedRead(child.standardOutput)
        let errors = Thread.detachedRead(child.standardError)
        if let standardInput { child.standardInput?.write(Data(standardInput.utf8)) }
        try child.standardInput?.close()
        let deadline = DispatchTime.now() + timeout
        guard let stdout = output.wait(timeout: deadline), let stderr = errors.wait(timeout: deadline) else {
            child.send(SIGTERM)
            throw RunnerError.timedOut(arguments)
        }
        let status = child.waitForExit()
        return Result(status: status, stdout: String(decoding: stdout, as: UTF8.self), stderr: String(decoding: stderr, as: UTF8.self))
    }

    /// Starts `comfygate <arguments>` (in `directory`, with a clean environment plus `environment`).
    static func launch(
        _ arguments: [String], in directory: URL? = nil, environment: [String: String] = [:],
        standardInput: ChildProcess.Stream = .null, standardOutput: ChildProcess.Stream = .pipe, standardError: ChildProcess.Stream = .pipe
    ) throws -> ChildProcess {
        try ChildProcess(
            [executable.path] + arguments, environment: cleanEnvironment(adding: environment), directory: directory?.path,
            standardInput: standardInput, standardOutput: standardOutput, standardError: standardError)
    }

    /// Starts `comfygate <arguments>`, waits (on a thread of its own) until its standard error contains `marker`,
    /// then sends SIGKILL. Returns false when the process finished without printing the marker.
    static func killWhenPrinted(_ marker: String, _ arguments: [String], in directory: URL, environment: [String: String]) async throws -> Bool {
        try await DedicatedThread.run(name: "test-subprocess") {
            try killBlocking(whenPrinted: marker, arguments, in: directory, environment: environment)
        }
    }

    private static func killBlocking(whenPrinted marker: String, _ arguments: [String], in directory: URL, environment: [String: String]) throws -> Bool {
        let child = try launch(arguments, in: directory, environment: environment, standardOutput: .null)
        var seen = Data()
        while let errors = child.standardError {
            let chunk = errors.readAvailableBytes()
            if chunk.isEmpty { break }
            seen += chunk
            if String(decoding: seen, as: UTF8.self).contains(marker) {
                child.send(SIGKILL)
                child.waitForExit()
                return true
            }
        }
        child.waitForExit()
        return false
    }

    /// The test process's environment without any `COMFYGATE_*` variable, plus `adding`.
    static func cleanEnvironment(adding extra: [String: String]) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("COMFYGATE_") }
        environment.merge(extra) { _, new in new }
        return environment
    }

    enum RunnerError: Error {
        case timedOut([String])
    }
}

/// A `comfygate serve` subprocess, stopped with SIGTERM when the test is done.
final class ServeProcess: Sendable {
    let process: ChildProcess
    let port: Int
    /// What `serve` printed on standard output (the first-start credentials).
    let standardOutput: String
    private let errorLog: OutputBuffer

    var pid: Int32 { process.pid }

    private init(process: ChildProcess, port: Int, standardOutput: String, errorLog: OutputBuffer) {
        self.process = process
        self.port = port
        self.standardOutput = standardOutput
        self.errorLog = errorLog
    }

    var standardError: String { errorLog.text }

    /// Starts `comfygate serve --listen 127.0.0.1:0 …` and waits until it logs its address.
    /// - Parameter launcher: a command that runs `comfygate` in its place (`prlimit --nofile=256:256 --`), exec'ing
    ///   it so the process is the gateway itself.
    static func start(
        _ arguments: [String], environment: [String: String] = [:], launcher: [String] = [], timeout: TimeInterval = 30
    ) async throws -> ServeProcess {
        let command = launcher + [CommandRunner.executable.path, "serve", "--listen", "127.0.0.1:0"] + arguments
        let process = try ChildProcess(command, environment: CommandRunner.cleanEnvironment(adding: environment))
        let errorLog = OutputBuffer()
        let outputLog = OutputBuffer()
        for (handle, log) in [(process.standardError, errorLog), (process.standardOutput, outputLog)] {
            Thread {
                while let handle {
                    let chunk = handle.readAvailableBytes()
                    if chunk.isEmpty { return }
                    log.append(chunk)
                }
            }.start()
        }
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let log = errorLog.text
            if let range = log.range(of: #"address=127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                let port = Int(log[range].split(separator: ":").last ?? "") ?? 0
                try await Task.sleep(for: .milliseconds(50))
                return ServeProcess(process: process, port: port, standardOutput: outputLog.text, errorLog: errorLog)
            }
            if !process.isRunning { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        process.send(SIGTERM)
        throw ServeError.didNotStart(errorLog.text)
    }

    /// Starts `comfygate serve` (as ``start(_:environment:launcher:timeout:)``), runs `body` with it, then stops it,
    /// whether `body` returned or threw.
    static func running<Value: Sendable>(
        _ arguments: [String], environment: [String: String] = [:], launcher: [String] = [],
        sourceLocation: SourceLocation = #_sourceLocation, _ body: (ServeProcess) async throws -> Value
    ) async throws -> Value {
        let gate = try await start(arguments, environment: environment, launcher: launcher)
        let outcome: Result<Value, any Error>
        do { outcome = .success(try await body(gate)) } catch { outcome = .failure(error) }
        await gate.stop(sourceLocation: sourceLocation)
        return try outcome.get()
    }

    /// How long a gateway may take to stop after SIGTERM (longer than the gateway's own bound on its shutdown).
    static let stopLimit: Duration = .seconds(60)

    /// SIGTERM, then waits (without holding a thread) for the gateway to exit; returns the exit status. A gateway that
    /// does not stop cleanly (still running after ``stopLimit``, or exiting with an error) fails the test with what it
    /// logged since the signal; one still running is killed. A gateway the test killed itself exits with 137.
    @discardableResult
    func stop(sourceLocation: SourceLocation = #_sourceLocation) async -> Int32 {
        let logged = errorLog.count
        process.send(SIGTERM)
        let status = await process.exitStatus(within: Self.stopLimit)
        if status != 0 && status != 128 + SIGKILL {
            let since = String(decoding: errorLog.bytes(from: logged).suffix(16 << 10), as: UTF8.self)
            let outcome = status.map { "exited with \($0)" } ?? "still runs \(Self.stopLimit) later"
            Issue.record("comfygate serve did not stop cleanly on SIGTERM: it \(outcome); it logged since:\n\(since)", sourceLocation: sourceLocation)
        }
        guard let status else {
            process.send(SIGKILL)
            return await process.exitStatus(within: .seconds(10)) ?? -1
        }
        return status
    }

    /// Peak resident memory of the process so far, in bytes (`VmHWM`).
    func peakResidentBytes() throws -> Int { try Self.procStatus(pid: pid, field: "VmHWM") }

    /// Current resident memory, in bytes (`VmRSS`).
    func residentBytes() throws -> Int { try Self.procStatus(pid: pid, field: "VmRSS") }

    private static func procStatus(pid: Int32, field: String) throws -> Int {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") }),
            let kilobytes = Int(line.split(separator: " ").dropFirst().first ?? "")
        else { throw ServeError.noMemoryFigure(field) }
        return kilobytes * 1024
    }

    enum ServeError: Error {
        case didNotStart(String)
        case noMemoryFigure(String)
    }
}

/// Bytes collected from a pipe, shared between the reading thread and the test.
final class OutputBuffer: Sendable {
    private let data = Mutex(Data())

    func append(_ chunk: Data) { data.withLock { $0.append(chunk) } }

    var text: String { String(decoding: data.withLock { $0 }, as: UTF8.self) }

    /// How many bytes were collected so far.
    var count: Int { data.withLock { $0.count } }

    /// The bytes collected from `offset` on.
    func bytes(from offset: Int) -> Data { data.withLock { $0.suffix(from: min(offset, $0.count)) } }
}

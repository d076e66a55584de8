public import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A child process started with `posix_spawn`. Foundation's `Process.run()` on Linux reads `/proc/self/fd` entries
/// past their end and crashed (in `memcpy`) once a process held many descriptors; every program ComfyGate (and its
/// tests) starts goes through here instead.
public final class ChildProcess: Sendable {
    /// Where one of the child's standard streams goes.
    public enum Stream: Sendable {
        /// A pipe to this process: write to ``standardInput``, read from ``standardOutput`` / ``standardError``.
        case pipe
        /// `/dev/null`.
        case null
        /// A file, created or truncated (mode 0600).
        case file(String)
        /// Standard error only: wherever standard output goes.
        case sameAsOutput
    }

    public let pid: pid_t
    /// The write end of the child's standard input, when it is a pipe.
    public let standardInput: FileHandle?
    /// The read end of the child's standard output, when it is a pipe.
    public let standardOutput: FileHandle?
    /// The read end of the child's standard error, when it is a pipe.
    public let standardError: FileHandle?
    private let exitStatus = Mutex<Int32?>(nil)

    /// Starts `command` (its first element looked up on `PATH` when it has no slash).
    /// - Parameters:
    ///   - environment: the child's whole environment; this process's when nil.
    ///   - directory: the child's working directory.
    public init(
        _ command: [String], environment: [String: String]? = nil, directory: String? = nil, standardInput: Stream = .null,
        standardOutput: Stream = .pipe, standardError: Stream = .pipe
    ) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var parentEnds: [Int32?] = [nil, nil, nil]
        var childEnds: [Int32] = []
        defer { for fd in childEnds { close(fd) } }
        for (target, stream) in [standardInput, standardOutput, standardError].enumerated() {
            switch stream {
            case .pipe:
                var fds: [Int32] = [0, 0]
                guard pipe(&fds) == 0 else { throw Failure(what: "pipe", errno: errno) }
                for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
                let (childEnd, parentEnd) = target == 0 ? (fds[0], fds[1]) : (fds[1], fds[0])
                childEnds.append(childEnd)
                parentEnds[target] = parentEnd
                posix_spawn_file_actions_adddup2(&actions, childEnd, Int32(target))
            case .null:
                posix_spawn_file_actions_addopen(&actions, Int32(target), "/dev/null", target == 0 ? O_RDONLY : O_WRONLY, 0)
            case .file(let path):
                posix_spawn_file_actions_addopen(&actions, Int32(target), path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            case .sameAsOutput:
                posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, Int32(target))
            }
        }

        // Nothing else of this process's leaks into the child: an inherited socket would keep a connection open
        // after the test closed it. (Descriptors opened by other threads from here to the spawn may still slip
        // through; the pipes above are close-on-exec.)
        let keep = Set(childEnds)
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? [] {
            guard let fd = Int32(name), fd > 2, !keep.contains(fd) else { continue }
            posix_spawn_file_actions_addclose(&actions, fd)
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        // A process group of its own, as Foundation's Process makes: a signal to the test's group spares it.
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))

        // The working directory through coreutils' `env --chdir` (glibc's addchdir_np is not visible to Swift here).
        let command = directory.map { ["/usr/bin/env", "--chdir=" + $0] + command } ?? command
        let arguments = command.map { strdup($0) } + [nil]
        defer { for argument in arguments { free(argument) } }
        let variables = (environment ?? ProcessInfo.processInfo.environment).map { strdup("\($0)=\($1)") } + [nil]
        defer { for variable in variables { free(variable) } }
        var child = pid_t()
        let result = posix_spawnp(&child, command[0], &actions, &attributes, arguments, variables)
        guard result == 0 else {
            for fd in parentEnds.compactMap({ $0 }) { close(fd) }
            throw Failure(what: "posix_spawn \(command[0])", errno: result)
        }
        pid = child
        self.standardInput = parentEnds[0].map { FileHandle(fileDescriptor: $0, closeOnDealloc: true) }
        self.standardOutput = parentEnds[1].map { FileHandle(fileDescriptor: $0, closeOnDealloc: true) }
        self.standardError = parentEnds[2].map { FileHandle(fileDescriptor: $0, closeOnDealloc: true) }
    }

    /// Waits (blocking the calling thread) for the child to end: its exit status, or 128 + the signal that ended it.
    @discardableResult
    public func waitForExit() -> Int32 {
        if let status = exitStatus.withLock({ $0 }) { return status }
        var raw: Int32 = 0
        while waitpid(pid, &raw, 0) == -1 && errno == EINTR {}
        return record(raw)
    }

    /// Waits, without holding a thread, for the child to end: its exit status, or nil when it still runs after `limit`
    /// (or the waiting task is cancelled).
    public func exitStatus(within limit: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + limit
        while isRunning {
            guard ContinuousClock.now < deadline, !Task.isCancelled else { return nil }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return exitStatus.withLock { $0 }
    }

    /// Whether the child is still running (reaping it when it ended).
    public var isRunning: Bool {
        if exitStatus.withLock({ $0 }) != nil { return false }
        var raw: Int32 = 0
        guard waitpid(pid, &raw, WNOHANG) == pid else { return true }
        record(raw)
        return false
    }

    /// Sends `signal` (SIGTERM, SIGKILL…) unless the child has already been reaped.
    public func send(_ signal: Int32) {
        if exitStatus.withLock({ $0 }) == nil { kill(pid, signal) }
    }

    @discardableResult
    private func record(_ raw: Int32) -> Int32 {
        let signal = raw & 0x7F
        let status = signal == 0 ? (raw >> 8) & 0xFF : 128 + signal
        exitStatus.withLock { $0 = $0 ?? status }
        return status
    }

    /// A system call that failed while starting the child.
    public struct Failure: Error, CustomStringConvertible {
        public let what: String
        public let errno: Int32
        public var description: String { "\(what): \(String(cString: strerror(errno)))" }
    }
}

extension FileHandle {
    /// The bytes that can be read now (blocking until some are), empty at the end of the file. Unlike
    /// `availableData`, which traps when a signal interrupts the read (a child process ending sends one), this
    /// reads again.
    public func readAvailableBytes() -> Data {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = systemRead(fileDescriptor, &buffer, buffer.count)
            if count < 0, errno == EINTR { continue }
            return count > 0 ? Data(buffer[0..<count]) : Data()
        }
    }

    /// Every byte until the end of the file (reads through interruptions by signals).
    public func readAllBytes() -> Data {
        var data = Data()
        while true {
            let chunk = readAvailableBytes()
            if chunk.isEmpty { return data }
            data += chunk
        }
    }
}

extension ChildProcess {
    /// What a program printed (standard output and error together) and how it ended.
    public struct Completion: Sendable {
        /// Its exit status, or 128 + the signal that ended it.
        public let status: Int32
        public let output: String
        /// Whether it was killed for running longer than allowed.
        public let timedOut: Bool
    }

    /// Runs `command` to its end without blocking Swift concurrency's threads, killing it after `timeout`.
    public static func run(
        _ command: [String], directory: String? = nil, environment: [String: String]? = nil, timeout: Duration
    ) async throws -> Completion {
        let child = try ChildProcess(
            command, environment: environment, directory: directory, standardOutput: .pipe, standardError: .sameAsOutput)
        let started = ContinuousClock.now
        let deadline = Task {
            try await Task.sleep(for: timeout)
            child.send(SIGKILL)
        }
        let (status, output) = await DedicatedThread.run(name: "child-output") { () -> (Int32, Data) in
            let output = child.standardOutput?.readAllBytes() ?? Data()
            return (child.waitForExit(), output)
        }
        deadline.cancel()
        let timedOut = status == 128 + SIGKILL && ContinuousClock.now - started >= timeout
        return Completion(status: status, output: String(decoding: output, as: UTF8.self), timedOut: timedOut)
    }
}

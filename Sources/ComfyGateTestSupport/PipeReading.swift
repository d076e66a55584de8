public import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
    private let systemRead = Glibc.read
#elseif canImport(Darwin)
    import Darwin
    private let systemRead = Darwin.read
#endif

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
}

extension FileHandle {
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

/// A pipe read to its end on a thread of its own, so two pipes of one child can be drained at once.
public final class PipeReader: Sendable {
    private let collected = Mutex<Data?>(nil)
    private let done = DispatchSemaphore(value: 0)

    init(_ handle: FileHandle?) {
        Thread { [self] in
            let data = handle?.readAllBytes() ?? Data()
            collected.withLock { $0 = data }
            done.signal()
        }.start()
    }

    /// Waits until the pipe ended: what it carried.
    public func wait() -> Data {
        done.wait()
        return collected.withLock { $0 } ?? Data()
    }

    /// Waits at most `timeout`; nil when the pipe has not ended by then.
    public func wait(timeout: DispatchTime) -> Data? {
        guard done.wait(timeout: timeout) == .success else { return nil }
        return collected.withLock { $0 } ?? Data()
    }
}

extension Thread {
    /// Reads `handle` to its end on a new thread.
    public static func detachedRead(_ handle: FileHandle?) -> PipeReader { PipeReader(handle) }
}

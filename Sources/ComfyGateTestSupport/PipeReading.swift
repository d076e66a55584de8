public import Foundation
import ComfyGateCore
import Synchronization


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

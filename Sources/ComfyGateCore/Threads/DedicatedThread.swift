import Foundation

/// Runs blocking work on a thread of its own.
///
/// On Linux, Swift concurrency's default global executor and every libdispatch *concurrent* queue share
/// one pool of as many threads as there are cores: blocking work sent to such a queue stalls every task in
/// the process until it returns. (`serve` runs its tasks on the event loops instead; the other commands, the
/// tests and any program using these libraries do not.) Blocking work — bcrypt, a wait for a subprocess, a
/// blocking socket read — therefore goes to a new thread, which costs tens of microseconds and touches
/// neither that pool nor the event loops. Callers bound how many run at once.
public enum DedicatedThread {
    /// Runs `work` on a new thread named `name` (for `top -H` and `perf`) and returns (or throws) what it did.
    public static func run<Value: Sendable, Failure: Error>(
        name: String, _ work: @escaping @Sendable () throws(Failure) -> Value
    ) async throws(Failure) -> Value {
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<Value, Failure>, Never>) in
            let thread = Thread {
                // Named from inside: on Linux a name given before `start()` does not reach the system thread.
                Thread.current.name = name
                do throws(Failure) {
                    continuation.resume(returning: .success(try work()))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
            thread.start()
        }
        return try result.get()
    }
}

import Synchronization

/// A piece of work took longer than its limit.
public struct DeadlineExceeded: Error, Sendable {
    public init() {}
}

/// Runs `body`, throwing ``DeadlineExceeded`` when it takes longer than `limit`.
///
/// Returns at the limit even when `body` ignores cancellation (a websocket handshake that never completes does):
/// `body` is then cancelled and left to end on its own, so a hung server cannot hang the caller.
public func withDeadline<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    let race = Race<T>()
    return try await withCheckedThrowingContinuation { continuation in
        race.start(continuation)
        let work = Task {
            do { race.finish(.success(try await body())) } catch { race.finish(.failure(error)) }
        }
        Task {
            try? await Task.sleep(for: limit)
            work.cancel()
            race.finish(.failure(DeadlineExceeded()))
        }
    }
}

/// The first of the work and the clock to finish resumes the caller.
private final class Race<T: Sendable>: Sendable {
    private let continuation = Mutex<CheckedContinuation<T, any Error>?>(nil)

    func start(_ newValue: CheckedContinuation<T, any Error>) { continuation.withLock { $0 = newValue } }

    func finish(_ result: Result<T, any Error>) {
        continuation.withLock { $0.take() }?.resume(with: result)
    }
}

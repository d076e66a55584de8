import Synchronization

/// Bounds concurrent work: at most `limit` holders at once and at most `maxWaiting` callers queued behind
/// them. A caller beyond that is refused at once instead of piling up.
final class AsyncLimiter: Sendable {
    private struct State {
        var available: Int
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state: Mutex<State>
    private let maxWaiting: Int

    init(limit: Int, maxWaiting: Int) {
        precondition(limit > 0)
        self.state = Mutex(State(available: limit))
        self.maxWaiting = maxWaiting
    }

    /// Waits for a turn; `false` when the queue is full.
    func acquire() async -> Bool {
        enum Decision { case acquired, refused, wait }
        let decision: Decision = state.withLock { state in
            if state.available > 0 {
                state.available -= 1
                return .acquired
            }
            return state.waiters.count >= maxWaiting ? .refused : .wait
        }
        switch decision {
        case .acquired: return true
        case .refused: return false
        case .wait:
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { state in
                    if state.available > 0 {
                        state.available -= 1
                        return true
                    }
                    state.waiters.append(continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
            return true
        }
    }

    /// Gives the turn to the next waiter, or back to the pool.
    func release() {
        let next: CheckedContinuation<Void, Never>? = state.withLock { state in
            if state.waiters.isEmpty {
                state.available += 1
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.resume()
    }
}

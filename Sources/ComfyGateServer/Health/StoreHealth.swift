import ComfyGateCore
import Logging
import Synchronization

/// What the gateway knows of its store's health, and the one place that says so in the log: a failure is
/// logged once when it starts (or its cause changes), the recovery once when it ends — not once per request.
final class StoreHealth: Sendable {
    private let failure = Mutex<String?>(nil)
    private let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    /// Records a failed store operation.
    func recordFailure(_ error: any Error) {
        let cause = Self.cause(of: error)
        let isNew = failure.withLock { current in
            defer { current = cause }
            return current != cause
        }
        if isNew { logger.error("the store failed: requests that need it answer 500", metadata: ["cause": "\(cause)"]) }
    }

    /// Records a store operation that worked.
    func recordSuccess() {
        let wasFailing = failure.withLock { current in
            defer { current = nil }
            return current != nil
        }
        if wasFailing { logger.notice("the store works again") }
    }

    /// The store's own account of a failure (it names the store), or the error as text.
    static func cause(of error: any Error) -> String {
        if let error = error as? StoreError { return error.description }
        return String(describing: error)
    }
}

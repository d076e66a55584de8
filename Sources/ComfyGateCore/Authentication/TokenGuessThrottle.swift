public import Foundation

/// Slows token guessing per client address, as ``LoginThrottle`` slows password guessing.
///
/// A failure is a presented value that matches no token (a revoked or expired token is not a guess). While an
/// address is locked out every token it presents is refused before any store or bcrypt work, the right one
/// too: answering known values during a lockout would let guesses be tested against them for free.
public final class TokenGuessThrottle: Sendable {
    public let policy: BackoffPolicy
    private let ledger = FailureLedger()

    /// By default: 10 free failures per address, then 30 s doubling up to 15 minutes.
    public init(policy: BackoffPolicy = BackoffPolicy(freeFailures: 10, firstLockout: 30, maxLockout: 900)) {
        self.policy = policy
    }

    /// How long the address is still locked out; nil when it is not.
    public func lockoutRemaining(address: String, at date: Date) -> TimeInterval? {
        ledger.lockoutRemaining([key(address)], at: date)
    }

    /// Starts a check that costs real work (bcrypt), or says how long to wait: during a lockout, or (1 s) while
    /// the checks in progress would use up the address's free failures. A started check must be finished with
    /// ``finishCheck(address:matched:at:)``.
    public func startCheck(address: String, at date: Date) -> TimeInterval? {
        ledger.start([key(address)], at: date)
    }

    /// Ends a check started with ``startCheck(address:at:)``: `matched` false counts a failure, nil (not
    /// checked) nothing. Returns the lockout a failure started, if any.
    @discardableResult
    public func finishCheck(address: String, matched: Bool?, at date: Date) -> TimeInterval? {
        ledger.finish([key(address)], failed: matched.map { !$0 }, at: date)
    }

    /// Counts a failure that was not started with ``startCheck(address:at:)`` (a cheap check, such as a native
    /// token's). Returns the lockout it started, if any.
    @discardableResult
    public func recordFailure(address: String, at date: Date) -> TimeInterval? {
        ledger.recordFailure([key(address)], at: date)
    }

    private func key(_ address: String) -> FailureLedger.Key {
        FailureLedger.Key(name: address, policy: policy)
    }
}

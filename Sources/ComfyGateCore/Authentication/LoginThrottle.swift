public import Foundation

/// Slows password guessing, per account and per client address, each by its own ``BackoffPolicy``.
///
/// An account gets a few free failures, then lockouts that double with every further failure up to a cap and
/// keep escalating for as long as the guessing goes on. A client address gets many more free failures before
/// it is locked out as a whole, so one guesser behind an address shared by many people (a NAT, a proxy) locks
/// only the accounts it guesses, not everyone's, until it has failed far more often than a person would.
/// Attempts still being checked count too, so parallel guesses cannot all slip in before the first failure is
/// recorded.
public final class LoginThrottle: Sendable {
    public let accountPolicy: BackoffPolicy
    public let addressPolicy: BackoffPolicy
    private let ledger = FailureLedger()

    /// By default: 5 free failures per account and 50 per address, then 30 s doubling up to 15 minutes.
    public init(
        accountPolicy: BackoffPolicy = BackoffPolicy(freeFailures: 5, firstLockout: 30, maxLockout: 900),
        addressPolicy: BackoffPolicy = BackoffPolicy(freeFailures: 50, firstLockout: 30, maxLockout: 900)
    ) {
        self.accountPolicy = accountPolicy
        self.addressPolicy = addressPolicy
    }

    /// Starts an attempt, or says how long to wait: during a lockout of the account or the address, or (1 s)
    /// while the attempts already being checked would use up the free ones. A started attempt must be finished
    /// with ``finishAttempt(account:address:succeeded:at:)``.
    public func startAttempt(account: String, address: String, at date: Date) -> TimeInterval? {
        ledger.start(keys(account: account, address: address), at: date)
    }

    /// Ends an attempt started with ``startAttempt(account:address:at:)``, counting its outcome; `nil` when the
    /// password could not be checked (busy, store error), which counts as nothing. Success forgets the account's
    /// failures (not the address's).
    public func finishAttempt(account: String, address: String, succeeded: Bool?, at date: Date) {
        ledger.finish(keys(account: account, address: address), failed: succeeded.map { !$0 }, at: date)
        if succeeded == true { ledger.forget(accountKey(account)) }
    }

    /// True for the first refused attempt of a lockout of this account or address, false for the ones after it:
    /// a password-guessing flood leaves one audit entry per lockout instead of one per attempt.
    public func isFirstRefusal(account: String, address: String) -> Bool {
        ledger.isFirstRefusal(keys(account: account, address: address))
    }

    /// Counts a failed attempt against the account and the address.
    public func recordFailure(account: String, address: String, at date: Date) {
        ledger.recordFailure(keys(account: account, address: address), at: date)
    }

    private func keys(account: String, address: String) -> [FailureLedger.Key] {
        [accountKey(account), FailureLedger.Key(name: "address:" + address, policy: addressPolicy)]
    }

    private func accountKey(_ account: String) -> FailureLedger.Key {
        FailureLedger.Key(name: "account:" + account.lowercased(), policy: accountPolicy)
    }
}

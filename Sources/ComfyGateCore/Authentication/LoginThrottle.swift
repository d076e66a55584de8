public import Foundation

/// Slows password guessing, per account and per client address, each by its own ``BackoffPolicy``.
///
/// An account gets a few free failures, then lockouts that double with every further failure up to a cap and
/// keep escalating for as long as the guessing goes on. A client address gets many more free failures before
/// it is locked out as a whole, so one guesser behind an address shared by many people (a NAT, a proxy) locks
/// only the accounts it guesses, not everyone's, until it has failed far more often than a person would.
/// Attempts still being checked count too, so parallel guesses cannot all slip in before the first failure is
/// recorded.
///
/// With a store, failures and lockouts are shared by every process using it (gateway replicas): the shared
/// methods read the account's and the address's records on each attempt and count each failure there, while the
/// attempts still being checked are counted by each process.
public final class LoginThrottle: Sendable {
    public let accountPolicy: BackoffPolicy
    public let addressPolicy: BackoffPolicy
    /// Where failures are shared; nil keeps them in this process.
    public let store: (any GatewayStore)?
    private let ledger = FailureLedger()

    /// By default: 5 free failures per account and 50 per address, then 30 s doubling up to 15 minutes.
    public init(
        accountPolicy: BackoffPolicy = BackoffPolicy(freeFailures: 5, firstLockout: 30, maxLockout: 900),
        addressPolicy: BackoffPolicy = BackoffPolicy(freeFailures: 50, firstLockout: 30, maxLockout: 900),
        store: (any GatewayStore)? = nil
    ) {
        self.accountPolicy = accountPolicy
        self.addressPolicy = addressPolicy
        self.store = store
    }

    /// ``startAttempt(account:address:at:)`` after taking on the failures every process sharing the store
    /// counted against the account and the address (one read).
    public func startSharedAttempt(account: String, address: String, at date: Date) async throws -> TimeInterval? {
        let keys = keys(account: account, address: address)
        if let store { ledger.adopt(try await store.loginFailures(keys: keys.map(\.name)), for: keys) }
        return ledger.start(keys, at: date)
    }

    /// Ends an attempt started with ``startSharedAttempt(account:address:at:)``: a failure is counted in the store
    /// for every process sharing it (one write), a success forgets the account's failures there too. When the
    /// store fails, the failure is still counted in this process.
    public func finishSharedAttempt(account: String, address: String, succeeded: Bool?, at date: Date) async throws {
        guard let store, let succeeded else {
            return finishAttempt(account: account, address: address, succeeded: succeeded, at: date)
        }
        let keys = keys(account: account, address: address)
        if succeeded {
            defer { finishAttempt(account: account, address: address, succeeded: true, at: date) }
            if ledger.hasFailures(keys[0]) { try await store.deleteLoginFailures(key: keys[0].name) }
            return
        }
        do {
            let counted = try await store.recordLoginFailure(
                policies: Dictionary(uniqueKeysWithValues: keys.map { ($0.name, $0.policy) }), at: date)
            ledger.finish(keys, adopting: counted)
        } catch {
            finishAttempt(account: account, address: address, succeeded: false, at: date)
            throw error
        }
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

    /// The account's key, then the address's.
    private func keys(account: String, address: String) -> [FailureLedger.Key] {
        [accountKey(account), FailureLedger.Key(name: "address:" + address, policy: addressPolicy)]
    }

    private func accountKey(_ account: String) -> FailureLedger.Key {
        FailureLedger.Key(name: "account:" + account.lowercased(), policy: accountPolicy)
    }
}

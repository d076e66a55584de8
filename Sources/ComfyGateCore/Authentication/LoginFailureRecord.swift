public import Foundation

/// Failed logins counted under one ``LoginThrottle`` key (`account:<name>` or `address:<ip>`), shared through the
/// store by every replica.
public struct LoginFailureRecord: Sendable, Codable, Equatable {
    /// The throttle key.
    public var key: String
    /// Failures since the key was last forgotten.
    public var failures: Int
    public var lastFailureAt: Date
    /// The end of the lockout the last failure started (`lastFailureAt` when it started none).
    public var lockedUntil: Date

    public init(key: String, failures: Int, lastFailureAt: Date, lockedUntil: Date) {
        self.key = key
        self.failures = failures
        self.lastFailureAt = lastFailureAt
        self.lockedUntil = lockedUntil
    }

    /// The record of `key` after one more failure at `date`, judged by `policy`, given its record so far: counting
    /// starts over when the key has been forgotten.
    public static func counting(
        failureAt date: Date, of key: String, after previous: LoginFailureRecord?, policy: BackoffPolicy
    ) -> LoginFailureRecord {
        let failures =
            if let previous, date < policy.forgottenAt(lockoutEnd: previous.lockedUntil) { previous.failures + 1 } else { 1 }
        return LoginFailureRecord(
            key: key, failures: failures, lastFailureAt: date,
            lockedUntil: date.addingTimeInterval(policy.lockout(afterFailures: failures)))
    }

    /// The latest lockout end of a record that each of `policies` has forgotten at `date`; nil without policies.
    public static func latestForgottenLockoutEnd(at date: Date, policies: some Sequence<BackoffPolicy>) -> Date? {
        policies.map(\.maxLockout).max().map { date.addingTimeInterval(-$0) }
    }
}

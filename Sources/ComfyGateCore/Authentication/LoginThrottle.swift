public import Foundation
import Synchronization

/// Slows password guessing: after `freeAttempts` failures within `window`, further attempts for the same
/// account or from the same client address are refused until the window has passed since the last failure.
/// The lockout doubles with every further failure, up to `maxLockout`.
public final class LoginThrottle: Sendable {
    private struct Record {
        var failures: Int
        var lastFailure: Date
        /// Whether a refusal during the current lockout was already reported.
        var refusalReported = false
    }

    private let freeAttempts: Int
    private let window: TimeInterval
    private let maxLockout: TimeInterval
    private let records = Mutex([String: Record]())

    public init(freeAttempts: Int = 5, window: TimeInterval = 60, maxLockout: TimeInterval = 900) {
        self.freeAttempts = freeAttempts
        self.window = window
        self.maxLockout = maxLockout
    }

    /// Seconds to wait before another attempt for this account or address, or nil when allowed now.
    public func retryAfter(account: String, address: String, at date: Date) -> TimeInterval? {
        records.withLock { records in
            [Self.key(account: account), Self.key(address: address)].compactMap { key -> TimeInterval? in
                guard let record = records[key] else { return nil }
                let lockout = lockout(for: record.failures)
                let elapsed = date.timeIntervalSince(record.lastFailure)
                if elapsed >= max(lockout, window) {
                    records[key] = nil
                    return nil
                }
                return lockout > elapsed ? lockout - elapsed : nil
            }.max()
        }
    }

    /// True for the first refused attempt of a lockout of this account or address, false for the ones after it:
    /// a password-guessing flood leaves one audit entry per lockout instead of one per attempt.
    public func isFirstRefusal(account: String, address: String) -> Bool {
        records.withLock { records in
            var first = false
            for key in [Self.key(account: account), Self.key(address: address)] {
                guard let record = records[key], !record.refusalReported, lockout(for: record.failures) > 0 else { continue }
                records[key]!.refusalReported = true
                first = true
            }
            return first
        }
    }

    /// Counts a failed attempt against the account and the address.
    public func recordFailure(account: String, address: String, at date: Date) {
        records.withLock { records in
            if records.count > 100_000 { records.removeAll() }
            for key in [Self.key(account: account), Self.key(address: address)] {
                let failures = (records[key]?.failures ?? 0) + 1
                records[key] = Record(failures: failures, lastFailure: date)
            }
        }
    }

    /// Forgets the account's failures after a successful login.
    public func recordSuccess(account: String) {
        _ = records.withLock { $0.removeValue(forKey: Self.key(account: account)) }
    }

    private func lockout(for failures: Int) -> TimeInterval {
        guard failures >= freeAttempts else { return 0 }
        let doublings = min(failures - freeAttempts, 20)
        return min(maxLockout, window * pow(2, Double(doublings)) / 2)
    }

    private static func key(account: String) -> String { "account:" + account.lowercased() }
    private static func key(address: String) -> String { "address:" + address }
}

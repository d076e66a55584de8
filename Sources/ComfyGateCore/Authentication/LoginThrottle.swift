public import Foundation
import Synchronization

/// Slows password guessing: after `freeAttempts` failures within `window`, further attempts for the same
/// account or from the same client address are refused until the window has passed since the last failure.
/// The lockout doubles with every further failure, up to `maxLockout`. Attempts still being checked count
/// too, so parallel guesses cannot all slip in before the first failure is recorded.
public final class LoginThrottle: Sendable {
    private struct Record {
        var failures: Int
        var lastFailure: Date
        /// Whether a refusal during the current lockout was already reported.
        var refusalReported = false
        /// Attempts started and not yet finished.
        var pending = 0
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

    /// Starts an attempt, or says how long to wait: during a lockout, or (1 s) while the attempts already being
    /// checked would use up the free ones. A started attempt must be finished with
    /// ``finishAttempt(account:address:succeeded:at:)``.
    public func startAttempt(account: String, address: String, at date: Date) -> TimeInterval? {
        records.withLock { records in
            let keys = [Self.key(account: account), Self.key(address: address)]
            var wait: TimeInterval?
            for key in keys {
                guard let record = records[key] else { continue }
                let lockout = lockout(for: record.failures)
                let elapsed = date.timeIntervalSince(record.lastFailure)
                if elapsed >= max(lockout, window), record.pending == 0 {
                    records[key] = nil
                } else if lockout > elapsed {
                    wait = max(wait ?? 0, lockout - elapsed)
                } else if record.failures + record.pending >= freeAttempts {
                    wait = max(wait ?? 0, 1)
                }
            }
            if wait != nil { return wait }
            for key in keys { records[key, default: Record(failures: 0, lastFailure: .distantPast)].pending += 1 }
            return nil
        }
    }

    /// Ends an attempt started with ``startAttempt(account:address:at:)``, counting its outcome; `nil` when the
    /// password could not be checked (busy, store error), which counts as nothing.
    public func finishAttempt(account: String, address: String, succeeded: Bool?, at date: Date) {
        records.withLock { records in
            for key in [Self.key(account: account), Self.key(address: address)] where records[key] != nil {
                records[key]!.pending = max(0, records[key]!.pending - 1)
            }
        }
        switch succeeded {
        case true?: recordSuccess(account: account)
        case false?: recordFailure(account: account, address: address, at: date)
        case nil: break
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
                var record = records[key] ?? Record(failures: 0, lastFailure: date)
                record.failures += 1
                record.lastFailure = date
                record.refusalReported = false
                records[key] = record
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

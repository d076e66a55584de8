public import Foundation
import Synchronization

/// How failed attempts of one kind (for one account, or from one address) are punished: `freeFailures`
/// cost nothing, each one after them locks the key out for twice as long as the one before, from
/// `firstLockout` up to `maxLockout`. The count only starts over once the key has been quiet for
/// `maxLockout` after its lockout ended, so waiting out each lockout does not reset it.
public struct BackoffPolicy: Sendable, Equatable {
    public var freeFailures: Int
    public var firstLockout: TimeInterval
    public var maxLockout: TimeInterval

    public init(freeFailures: Int, firstLockout: TimeInterval, maxLockout: TimeInterval) {
        precondition(freeFailures > 0 && firstLockout > 0 && maxLockout >= firstLockout)
        self.freeFailures = freeFailures
        self.firstLockout = firstLockout
        self.maxLockout = maxLockout
    }

    /// The lockout that follows the given number of failures.
    public func lockout(afterFailures failures: Int) -> TimeInterval {
        guard failures >= freeFailures else { return 0 }
        let doublings = min(failures - freeFailures, 40)
        return min(maxLockout, firstLockout * pow(2, Double(doublings)))
    }

    /// When a key whose last lockout ends at `lockedUntil` is forgotten if nothing else happens: `maxLockout` later.
    public func forgottenAt(lockoutEnd lockedUntil: Date) -> Date {
        lockedUntil.addingTimeInterval(maxLockout)
    }
}

/// Failure counts by key with exponential backoff, shared by ``LoginThrottle`` and ``TokenGuessThrottle``, counted
/// as the store counts them (``LoginFailureRecord/counting(failureAt:of:after:policy:)``).
///
/// Attempts that are started and not yet finished count as failures-to-be: with `n` free failures left,
/// at most `n` attempts (one once none is left) are checked at once, so parallel guesses cannot all slip
/// in before the first failure is recorded.
final class FailureLedger: Sendable {
    /// A key and the policy its failures are judged by.
    struct Key {
        let name: String
        let policy: BackoffPolicy
    }

    private struct Record {
        /// The failures so far; nil before the first.
        var counted: LoginFailureRecord?
        /// When the record is dropped if nothing happens: `maxLockout` after the end of its lockout.
        var forgottenAfter = Date.distantPast
        /// Attempts started and not yet finished.
        var pending = 0
        /// Whether a refusal during the current lockout was already reported.
        var refusalReported = false

        var failures: Int { counted?.failures ?? 0 }

        func lockoutRemaining(at date: Date) -> TimeInterval {
            max(0, (counted?.lockedUntil ?? .distantPast).timeIntervalSince(date))
        }

        func isForgotten(at date: Date) -> Bool { pending == 0 && date >= forgottenAfter }

        /// Takes on failures counted here or elsewhere; a new lockout is reported again.
        mutating func take(_ counted: LoginFailureRecord?, policy: BackoffPolicy) {
            if counted?.lockedUntil != self.counted?.lockedUntil { refusalReported = false }
            self.counted = counted
            forgottenAfter = counted.map { policy.forgottenAt(lockoutEnd: $0.lockedUntil) } ?? .distantPast
        }
    }

    /// How many keys are remembered before forgotten ones are swept out (and, failing that, all of them).
    private let capacity: Int
    private let records = Mutex([String: Record]())

    init(capacity: Int = 100_000) {
        self.capacity = capacity
    }

    /// The longest lockout still running for any of `keys`, ignoring attempts in progress; nil when none is.
    func lockoutRemaining(_ keys: [Key], at date: Date) -> TimeInterval? {
        records.withLock { records in
            let wait = keys.map { records[$0.name]?.lockoutRemaining(at: date) ?? 0 }.max() ?? 0
            return wait > 0 ? wait : nil
        }
    }

    /// Starts an attempt for all of `keys`, or says how long to wait: the rest of a lockout, or 1 s while the
    /// attempts in progress would use up what is left of the free ones. A started attempt must be finished
    /// with ``finish(_:failed:at:)``.
    func start(_ keys: [Key], at date: Date) -> TimeInterval? {
        records.withLock { records in
            var wait: TimeInterval?
            for key in keys {
                guard let record = records[key.name] else { continue }
                if record.isForgotten(at: date) {
                    records[key.name] = nil
                    continue
                }
                let remaining = record.lockoutRemaining(at: date)
                if remaining > 0 {
                    wait = max(wait ?? 0, remaining)
                } else if record.pending >= max(1, key.policy.freeFailures - record.failures) {
                    wait = max(wait ?? 0, 1)
                }
            }
            if wait != nil { return wait }
            for key in keys { records[key.name, default: Record()].pending += 1 }
            return nil
        }
    }

    /// Ends an attempt started with ``start(_:at:)``: `failed` true counts a failure at `date`, false or nil
    /// counts nothing. Returns the lockout the failure started, if any.
    @discardableResult
    func finish(_ keys: [Key], failed: Bool?, at date: Date) -> TimeInterval? {
        records.withLock { records in
            for key in keys where records[key.name] != nil {
                records[key.name]!.pending = max(0, records[key.name]!.pending - 1)
            }
            return failed == true ? Self.countFailure(keys, at: date, in: &records, capacity: capacity) : nil
        }
    }

    /// Counts a failure for all of `keys` that was not started with ``start(_:at:)``. Returns the lockout it
    /// started, if any.
    @discardableResult
    func recordFailure(_ keys: [Key], at date: Date) -> TimeInterval? {
        records.withLock { records in Self.countFailure(keys, at: date, in: &records, capacity: capacity) }
    }

    /// Takes on the failures other processes counted for `keys` (what the store holds): keys without a record
    /// there have none.
    func adopt(_ shared: [LoginFailureRecord], for keys: [Key]) {
        records.withLock { records in Self.adopt(shared, for: keys, in: &records) }
    }

    /// Ends an attempt started with ``start(_:at:)`` whose failure was counted elsewhere (the store), taking on the
    /// records counted there.
    func finish(_ keys: [Key], adopting shared: [LoginFailureRecord]) {
        records.withLock { records in
            for key in keys where records[key.name] != nil {
                records[key.name]!.pending = max(0, records[key.name]!.pending - 1)
            }
            Self.adopt(shared, for: keys, in: &records)
        }
    }

    /// Whether any failure of `key` is remembered.
    func hasFailures(_ key: Key) -> Bool {
        records.withLock { $0[key.name].map { $0.failures > 0 } ?? false }
    }

    private static func adopt(_ shared: [LoginFailureRecord], for keys: [Key], in records: inout [String: Record]) {
        for key in keys {
            let counted = shared.first { $0.key == key.name }
            guard counted != nil || records[key.name] != nil else { continue }
            records[key.name, default: Record()].take(counted, policy: key.policy)
        }
    }

    /// Forgets a key, as after a successful login.
    func forget(_ key: Key) {
        _ = records.withLock { $0.removeValue(forKey: key.name) }
    }

    /// True for the first refusal of a lockout of any of `keys`, false for the ones after it.
    func isFirstRefusal(_ keys: [Key]) -> Bool {
        records.withLock { records in
            var first = false
            for key in keys {
                guard let record = records[key.name], !record.refusalReported, record.failures >= key.policy.freeFailures
                else { continue }
                records[key.name]!.refusalReported = true
                first = true
            }
            return first
        }
    }

    private static func countFailure(
        _ keys: [Key], at date: Date, in records: inout [String: Record], capacity: Int
    ) -> TimeInterval? {
        if records.count >= capacity {
            records = records.filter { !$0.value.isForgotten(at: date) }
            if records.count >= capacity { records.removeAll() }
        }
        var longest: TimeInterval = 0
        for key in keys {
            var record = records[key.name] ?? Record()
            record.take(
                LoginFailureRecord.counting(failureAt: date, of: key.name, after: record.counted, policy: key.policy),
                policy: key.policy)
            record.refusalReported = false
            records[key.name] = record
            longest = max(longest, key.policy.lockout(afterFailures: record.failures))
        }
        return longest > 0 ? longest : nil
    }
}

public import ComfyGateCore
import Foundation
import Testing

/// What two gateway replicas sharing one database must see of each other, as Swift Testing checks: each store
/// implementation runs them with two stores on one database (two processes), e.g.
///
/// ```swift
/// @Test func loginLockoutsAreShared() async throws {
///     try await ReplicaScenarios.loginThrottlesShareLockouts(SQLiteStore(path: path), SQLiteStore(path: path))
/// }
/// ```
public enum ReplicaScenarios {
    static let start = Date(timeIntervalSince1970: 1_800_000_000)

    /// Failed logins through either replica count for both: the lockout they start refuses the account on both,
    /// and a success through one forgives the account on both.
    public static func loginThrottlesShareLockouts(_ first: any GatewayStore, _ second: any GatewayStore) async throws {
        let policy = BackoffPolicy(freeFailures: 3, firstLockout: 30, maxLockout: 600)
        let one = LoginThrottle(accountPolicy: policy, store: first)
        let two = LoginThrottle(accountPolicy: policy, store: second)

        for (index, throttle) in [one, two, one].enumerated() {
            let address = "192.0.2.\(index)"
            #expect(try await throttle.startSharedAttempt(account: "alice", address: address, at: start) == nil)
            try await throttle.finishSharedAttempt(account: "alice", address: address, succeeded: false, at: start)
        }
        let soon = start.addingTimeInterval(1)
        #expect(
            try await two.startSharedAttempt(account: "ALICE", address: "198.51.100.1", at: soon) == 29,
            "three failures split over two replicas lock the account on both")
        #expect(try await one.startSharedAttempt(account: "alice", address: "198.51.100.2", at: soon) == 29)

        let later = start.addingTimeInterval(30)
        #expect(try await one.startSharedAttempt(account: "alice", address: "192.0.2.9", at: later) == nil)
        try await one.finishSharedAttempt(account: "alice", address: "192.0.2.9", succeeded: true, at: later)
        for throttle in [two, two] {
            #expect(try await throttle.startSharedAttempt(account: "alice", address: "192.0.2.9", at: later) == nil)
            try await throttle.finishSharedAttempt(account: "alice", address: "192.0.2.9", succeeded: false, at: later)
        }
        #expect(
            try await two.startSharedAttempt(account: "alice", address: "192.0.2.9", at: later) == nil,
            "the success through the other replica forgave the earlier failures: two new ones are free")
        try await two.finishSharedAttempt(account: "alice", address: "192.0.2.9", succeeded: nil, at: later)
    }
}

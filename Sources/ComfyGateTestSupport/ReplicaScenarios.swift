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

    /// A token revoked, a session ended and a user disabled through one replica are refused by the other, whose
    /// caches held them, within about a second (``CachedGatewayStore``'s lifetime). Checked by polling, with a
    /// bound far below any longer cache (the verifier keeps bcrypt results for minutes) and above a loaded
    /// machine's pauses.
    public static func revocationsReachTheOtherReplica(_ first: any GatewayStore, _ second: any GatewayStore)
        async throws
    {
        let one = CachedGatewayStore(first)
        let two = CachedGatewayStore(second)
        let hasher = PasswordHasher()
        let verifier = CredentialVerifier(store: two, hasher: hasher)
        let sessionsOne = SessionManager(store: one, idleTimeout: 3600, absoluteTimeout: 86_400)
        let sessionsTwo = SessionManager(store: two, idleTimeout: 3600, absoluteTimeout: 86_400)
        let bound = Duration.seconds(10)

        let alice = User(name: "alice", role: .user, passwordHash: nil, createdAt: Date())
        let bob = User(name: "bob", role: .user, passwordHash: nil, createdAt: Date())
        try await one.insertUser(alice)
        try await one.insertUser(bob)
        let native = TokenFormat.generate()
        try await one.insertToken(
            APIToken(id: native.id, userID: alice.id, name: "laptop", verifier: native.verifier, createdAt: Date()))
        let importedSecret = "imported-" + TokenFormat.randomBase62(count: 20)
        let imported = APIToken(
            id: TokenFormat.randomID(), userID: alice.id, name: "imported",
            verifier: .bcrypt(try await hasher.hash(importedSecret, cost: 4)), createdAt: Date())
        try await one.insertToken(imported)
        let bobs = TokenFormat.generate()
        try await one.insertToken(APIToken(id: bobs.id, userID: bob.id, name: "bob's", verifier: bobs.verifier, createdAt: Date()))
        let aliceCookie = try await sessionsOne.open(for: alice)
        let bobCookie = try await sessionsOne.open(for: bob)

        func refusal(_ token: String) async throws -> CredentialVerifier.Refusal? {
            if case .failure(let refusal) = try await verifier.verify(token: token) { return refusal }
            return nil
        }
        // The other replica accepts them all, and caches what it read (for about a second).
        for token in [native.token, importedSecret, bobs.token] { #expect(try await refusal(token) == nil) }
        #expect(try await sessionsTwo.resolve(cookieValue: aliceCookie)?.userID == alice.id)
        #expect(try await sessionsTwo.resolve(cookieValue: bobCookie)?.userID == bob.id)

        #expect(try await one.revokeToken(id: native.id, at: Date()))
        #expect(try await one.revokeToken(id: imported.id, at: Date()))
        try await sessionsOne.close(cookieValue: aliceCookie)
        var disabled = bob
        disabled.isDisabled = true
        try await one.updateUser(disabled)

        #expect(
            try await eventually(within: bound) {
                try await refusal(native.token) == .revoked && verifier.cachedIdentity(token: native.token) == nil
            }, "a revoked token")
        #expect(try await eventually(within: bound) { try await refusal(importedSecret) != nil }, "a revoked imported token")
        #expect(
            try await eventually(within: bound) {
                try await sessionsTwo.resolve(cookieValue: aliceCookie) == nil
                    && sessionsTwo.cachedIdentity(cookieValue: aliceCookie) == nil
            }, "an ended session")
        #expect(try await eventually(within: bound) { try await refusal(bobs.token) == .userDisabled }, "a disabled user's token")
        #expect(
            try await eventually(within: bound) { try await sessionsTwo.resolve(cookieValue: bobCookie) == nil },
            "a disabled user's session")
    }
}

public import ComfyGateCore
import Foundation
import Testing

/// The behaviour every ``GatewayStore`` must have, as Swift Testing checks.
///
/// Each implementation's test target runs every ``Check`` against a fresh, empty, migrated store, e.g.
///
/// ```swift
/// @Test(arguments: GatewayStoreConformance.Check.allCases)
/// func conformance(_ check: GatewayStoreConformance.Check) async throws {
///     try await check.run(on: SQLiteStore.inMemory())
/// }
/// ```
///
/// What the checks pin down, beyond the protocol's own documentation:
/// - user names are unique **regardless of case**, `user(named:)` ignores case, and `users()` sorts by name
///   ignoring case; the stored name keeps the case it was given;
/// - `updateUser` and `setTokenExpiry` throw ``StoreError/notFound(_:)`` for an unknown id, while the touch
///   and delete methods silently do nothing (a session may end while a request still uses it);
/// - a token expiring exactly at `date` is no longer usable, a session expiring exactly at `date` is not
///   removed by `deleteSessions(expiredBefore:)`, and a prompt created exactly at `date` is not listed by
///   `prompts(createdAfter:)`;
/// - ties are broken by id (tokens; prompts, in reverse when newest first) and by insertion order (audit
///   events); a limit of zero or less lists nothing;
/// - jobs, assets and quotas follow the same rules: ties by id (in reverse when newest first), bounds named
///   "before" and "after" exclude a record exactly on them, while `usage(from:to:)` includes `from`;
/// - dates round-trip to within a millisecond; the fixtures use whole seconds, which every store keeps
///   exactly, so records can be compared with `==`.
public enum GatewayStoreConformance {
    /// One behaviour, checked against an empty store.
    public enum Check: String, CaseIterable, Sendable {
        case insertAndFindUsers
        case userNamesAreUniqueIgnoringCase
        case usersAreOrderedByNameAndCounted
        case updateUsers
        case insertAndFindTokens
        case tokensAreListedByUserInCreationOrder
        case usableBcryptTokensExcludeRevokedExpiredAndNative
        case revokeTokensOnce
        case setAndClearTokenExpiry
        case touchTokens
        case insertFindTouchAndDeleteSessions
        case deleteSessionsOfOneUser
        case deleteExpiredSessions
        case auditEventsAreNewestFirst
        case insertAndFindPrompts
        case promptsAreListedNewestFirst
        case promptsCreatedAfterAreOldestFirst
        case updatePromptStatuses
        case comfyUserIDsAreSetAndReplaced
        case insertAndFindJobs
        case idempotencyKeysAreUniquePerUser
        case updateJobsCompareAndSet
        case racingDispatchesUpdateOnce
        case claimJobsOnceWithinSlots
        case concurrentClaimsNeverOverfillABackend
        case jobsAreListedNewestFirstAndPaged
        case queuedAndUnfinishedJobsAreOldestFirst
        case countJobsForQuotas
        case gpuSecondsOverAWindow
        case usageIsSummedPerUser
        case expireAndDeleteJobs
        case assetsAreFoundByHashAndJob
        case userQuotasAreSetReplacedAndDeleted
        case loginFailuresAreCountedLockedAndForgotten
        case concurrentLoginFailuresAreAllCounted
        case backendControlsAreSetAndReplaced
        case backendStatusesKeepTheLatestPerReplica
        case datesKeepMilliseconds
        case concurrentWrites

        /// Runs this check against `store`, which must be empty.
        public func run(on store: any GatewayStore) async throws {
            switch self {
            case .insertAndFindUsers: try await GatewayStoreConformance.insertAndFindUsers(store)
            case .userNamesAreUniqueIgnoringCase:
                try await GatewayStoreConformance.userNamesAreUniqueIgnoringCase(store)
            case .usersAreOrderedByNameAndCounted:
                try await GatewayStoreConformance.usersAreOrderedByNameAndCounted(store)
            case .updateUsers: try await GatewayStoreConformance.updateUsers(store)
            case .insertAndFindTokens: try await GatewayStoreConformance.insertAndFindTokens(store)
            case .tokensAreListedByUserInCreationOrder:
                try await GatewayStoreConformance.tokensAreListedByUserInCreationOrder(store)
            case .usableBcryptTokensExcludeRevokedExpiredAndNative:
                try await GatewayStoreConformance.usableBcryptTokensExcludeRevokedExpiredAndNative(store)
            case .revokeTokensOnce: try await GatewayStoreConformance.revokeTokensOnce(store)
            case .setAndClearTokenExpiry: try await GatewayStoreConformance.setAndClearTokenExpiry(store)
            case .touchTokens: try await GatewayStoreConformance.touchTokens(store)
            case .insertFindTouchAndDeleteSessions:
                try await GatewayStoreConformance.insertFindTouchAndDeleteSessions(store)
            case .deleteSessionsOfOneUser: try await GatewayStoreConformance.deleteSessionsOfOneUser(store)
            case .deleteExpiredSessions: try await GatewayStoreConformance.deleteExpiredSessions(store)
            case .auditEventsAreNewestFirst: try await GatewayStoreConformance.auditEventsAreNewestFirst(store)
            case .insertAndFindPrompts: try await GatewayStoreConformance.insertAndFindPrompts(store)
            case .promptsAreListedNewestFirst: try await GatewayStoreConformance.promptsAreListedNewestFirst(store)
            case .promptsCreatedAfterAreOldestFirst:
                try await GatewayStoreConformance.promptsCreatedAfterAreOldestFirst(store)
            case .updatePromptStatuses: try await GatewayStoreConformance.updatePromptStatuses(store)
            case .comfyUserIDsAreSetAndReplaced: try await GatewayStoreConformance.comfyUserIDsAreSetAndReplaced(store)
            case .insertAndFindJobs: try await GatewayStoreConformance.insertAndFindJobs(store)
            case .idempotencyKeysAreUniquePerUser:
                try await GatewayStoreConformance.idempotencyKeysAreUniquePerUser(store)
            case .updateJobsCompareAndSet: try await GatewayStoreConformance.updateJobsCompareAndSet(store)
            case .racingDispatchesUpdateOnce: try await GatewayStoreConformance.racingDispatchesUpdateOnce(store)
            case .claimJobsOnceWithinSlots: try await GatewayStoreConformance.claimJobsOnceWithinSlots(store)
            case .concurrentClaimsNeverOverfillABackend:
                try await GatewayStoreConformance.concurrentClaimsNeverOverfillABackend(store, store)
            case .jobsAreListedNewestFirstAndPaged:
                try await GatewayStoreConformance.jobsAreListedNewestFirstAndPaged(store)
            case .queuedAndUnfinishedJobsAreOldestFirst:
                try await GatewayStoreConformance.queuedAndUnfinishedJobsAreOldestFirst(store)
            case .countJobsForQuotas: try await GatewayStoreConformance.countJobsForQuotas(store)
            case .gpuSecondsOverAWindow: try await GatewayStoreConformance.gpuSecondsOverAWindow(store)
            case .usageIsSummedPerUser: try await GatewayStoreConformance.usageIsSummedPerUser(store)
            case .expireAndDeleteJobs: try await GatewayStoreConformance.expireAndDeleteJobs(store)
            case .assetsAreFoundByHashAndJob: try await GatewayStoreConformance.assetsAreFoundByHashAndJob(store)
            case .userQuotasAreSetReplacedAndDeleted:
                try await GatewayStoreConformance.userQuotasAreSetReplacedAndDeleted(store)
            case .loginFailuresAreCountedLockedAndForgotten:
                try await GatewayStoreConformance.loginFailuresAreCountedLockedAndForgotten(store)
            case .concurrentLoginFailuresAreAllCounted:
                try await GatewayStoreConformance.concurrentLoginFailuresAreAllCounted(store, store)
            case .backendControlsAreSetAndReplaced:
                try await GatewayStoreConformance.backendControlsAreSetAndReplaced(store)
            case .backendStatusesKeepTheLatestPerReplica:
                try await GatewayStoreConformance.backendStatusesKeepTheLatestPerReplica(store)
            case .datesKeepMilliseconds: try await GatewayStoreConformance.datesKeepMilliseconds(store)
            case .concurrentWrites: try await GatewayStoreConformance.concurrentWrites(store)
            }
        }
    }

    /// Runs every check, each against a new store from `makeStore`.
    public static func run(_ makeStore: @Sendable () async throws -> any GatewayStore) async throws {
        for check in Check.allCases {
            try await check.run(on: makeStore())
        }
    }

    // MARK: Fixtures

    /// A whole-second reference time (2025-11-25T00:00:00Z); fixtures are offsets from it.
    static let t0 = Date(timeIntervalSince1970: 1_764_028_800)

    static func time(_ seconds: Int) -> Date { t0.addingTimeInterval(TimeInterval(seconds)) }

    static func user(_ name: String, id: String? = nil, role: Role = .user, at seconds: Int = 0) -> User {
        User(
            id: id ?? "id-\(name.lowercased())",
            name: name,
            role: role,
            passwordHash: "$2b$12$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234",
            createdAt: time(seconds)
        )
    }

    static func token(
        _ id: String,
        userID: String = "id-alice",
        verifier: APIToken.Verifier? = nil,
        at seconds: Int = 0,
        expiresAt: Date? = nil,
        revokedAt: Date? = nil
    ) -> APIToken {
        APIToken(
            id: id,
            userID: userID,
            name: "label of \(id)",
            verifier: verifier ?? .sha256(String(repeating: "ab", count: 32)),
            createdAt: time(seconds),
            expiresAt: expiresAt,
            revokedAt: revokedAt
        )
    }

    static func session(_ digest: String, userID: String = "id-alice", expiresIn seconds: Int = 3600) -> Session {
        Session(idDigest: digest, userID: userID, createdAt: t0, lastSeenAt: t0, expiresAt: time(seconds))
    }

    static func prompt(_ id: String, userID: String = "id-alice", at seconds: Int = 0) -> PromptRecord {
        PromptRecord(promptID: id, userID: userID, createdAt: time(seconds), status: .queued, updatedAt: time(seconds))
    }

    static func job(
        _ id: String, userID: String = "id-alice", state: JobState = .queued, at seconds: Int = 0, key: String? = nil
    ) -> Job {
        Job(
            id: id,
            userID: userID,
            source: .native,
            state: state,
            workflow: #"{"3":{"class_type":"KSampler","inputs":{"seed":1}}}"#,
            idempotencyKey: key,
            createdAt: time(seconds)
        )
    }

    /// A job created at `created` that finished at `seconds`.
    static func completed(
        _ id: String,
        userID: String = "id-alice",
        state: JobState = .succeeded,
        at seconds: Int,
        gpuSeconds: Double = 0,
        created: Int = 0
    ) -> Job {
        var job = job(id, userID: userID, state: state, at: created)
        job.completedAt = time(seconds)
        job.gpuSeconds = gpuSeconds
        return job
    }

    static func asset(
        _ id: String, userID: String = "id-alice", hash: String?, at seconds: Int = 0, jobID: String? = nil
    ) -> Asset {
        Asset(
            id: id, userID: userID, hash: hash, sizeBytes: 100, contentType: "image/png", name: "\(id).png",
            createdAt: time(seconds), jobID: jobID)
    }

    /// Expects `body` to throw ``StoreError/duplicate(_:)`` whose message mentions `name`.
    static func expectDuplicate(
        mentioning name: String,
        sourceLocation: SourceLocation = #_sourceLocation,
        _ body: () async throws -> Void
    ) async {
        do {
            try await body()
            Issue.record(
                "expected StoreError.duplicate mentioning '\(name)', nothing was thrown", sourceLocation: sourceLocation
            )
        } catch let StoreError.duplicate(what) {
            #expect(
                what.contains(name), "duplicate message '\(what)' should mention '\(name)'",
                sourceLocation: sourceLocation)
        } catch {
            Issue.record("expected StoreError.duplicate, got \(error)", sourceLocation: sourceLocation)
        }
    }

    /// Expects `body` to throw ``StoreError/notFound(_:)``.
    static func expectNotFound(sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> Void) async
    {
        do {
            try await body()
            Issue.record("expected StoreError.notFound, nothing was thrown", sourceLocation: sourceLocation)
        } catch StoreError.notFound {
        } catch {
            Issue.record("expected StoreError.notFound, got \(error)", sourceLocation: sourceLocation)
        }
    }

    /// Expects two optional dates to be within a millisecond of each other.
    static func expectClose(_ actual: Date?, _ expected: Date?, sourceLocation: SourceLocation = #_sourceLocation) {
        switch (actual, expected) {
        case (nil, nil):
            break
        case (let actual?, let expected?):
            let difference = abs(actual.timeIntervalSince(expected))
            #expect(
                difference < 0.001, "\(actual) is \(difference) s away from \(expected)", sourceLocation: sourceLocation
            )
        default:
            Issue.record(
                "expected \(String(describing: expected)), got \(String(describing: actual))",
                sourceLocation: sourceLocation)
        }
    }

    // MARK: Users

    static func insertAndFindUsers(_ store: any GatewayStore) async throws {
        let alice = user("alice", role: .admin)
        var bob = user("Bob", at: 10)
        bob.passwordHash = nil
        bob.isDisabled = true
        try await store.insertUser(alice)
        try await store.insertUser(bob)

        #expect(try await store.user(id: alice.id) == alice)
        #expect(try await store.user(id: bob.id) == bob)
        #expect(try await store.user(named: "alice") == alice)
        #expect(try await store.user(named: "ALICE") == alice, "names are looked up ignoring case")
        #expect(try await store.user(named: "bob") == bob, "the stored name keeps its case")
        #expect(try await store.user(id: "ID-ALICE") == nil, "ids are matched exactly")
        #expect(try await store.user(id: "nobody") == nil)
        #expect(try await store.user(named: "carol") == nil)
        #expect(try await store.user(named: "alic") == nil)
    }

    static func userNamesAreUniqueIgnoringCase(_ store: any GatewayStore) async throws {
        try await store.insertUser(user("alice"))
        await expectDuplicate(mentioning: "alice") { try await store.insertUser(user("alice", id: "other")) }
        await expectDuplicate(mentioning: "Alice") { try await store.insertUser(user("Alice", id: "other")) }
        await expectDuplicate(mentioning: "carol") { try await store.insertUser(user("carol", id: "id-alice")) }
        #expect(try await store.userCount() == 1)
        #expect(try await store.user(named: "alice")?.name == "alice")
    }

    static func usersAreOrderedByNameAndCounted(_ store: any GatewayStore) async throws {
        #expect(try await store.users().isEmpty)
        #expect(try await store.userCount() == 0)
        for name in ["carol", "Bob", "alice", "dave", "b.ob", "_x", "a-z", "Zed", "bob2"] {
            try await store.insertUser(user(name))
        }
        let names = try await store.users().map(\.name)
        #expect(names == ["_x", "a-z", "alice", "b.ob", "Bob", "bob2", "carol", "dave", "Zed"])
        #expect(try await store.userCount() == 9)
    }

    static func updateUsers(_ store: any GatewayStore) async throws {
        let alice = user("alice")
        try await store.insertUser(alice)
        try await store.insertUser(user("bob"))

        var renamed = alice
        renamed.name = "alicia"
        renamed.role = .viewer
        renamed.passwordHash = nil
        renamed.isDisabled = true
        try await store.updateUser(renamed)
        #expect(try await store.user(id: alice.id) == renamed)
        #expect(try await store.user(named: "alice") == nil)
        #expect(try await store.user(named: "alicia") == renamed)

        var recased = renamed
        recased.name = "Alicia"
        recased.isDisabled = false
        recased.passwordHash = "$2b$12$newhash"
        try await store.updateUser(recased)
        #expect(try await store.user(named: "alicia") == recased, "a user may change the case of its own name")

        var clash = recased
        clash.name = "BOB"
        await expectDuplicate(mentioning: "BOB") { try await store.updateUser(clash) }
        #expect(try await store.user(id: alice.id) == recased, "a failed update changes nothing")

        await expectNotFound { try await store.updateUser(user("ghost")) }
        #expect(try await store.userCount() == 2)
    }

    // MARK: Tokens

    static func insertAndFindTokens(_ store: any GatewayStore) async throws {
        let native = token("native1")
        let imported = APIToken(
            id: "imported1",
            userID: "id-bob",
            name: "ci",
            verifier: .bcrypt("$2y$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234"),
            createdAt: time(5),
            expiresAt: time(3600),
            lastUsedAt: time(60),
            revokedAt: time(120)
        )
        try await store.insertToken(native)
        try await store.insertToken(imported)
        #expect(try await store.token(id: "native1") == native)
        #expect(try await store.token(id: "imported1") == imported)
        #expect(try await store.token(id: "NATIVE1") == nil, "ids are matched exactly")
        #expect(try await store.token(id: "missing") == nil)

        await expectDuplicate(mentioning: "native1") { try await store.insertToken(token("native1", userID: "id-bob")) }
        #expect(try await store.token(id: "native1") == native)
    }

    static func tokensAreListedByUserInCreationOrder(_ store: any GatewayStore) async throws {
        let tokens = [
            token("t3", at: 30),
            token("t1", at: 10),
            token("b1", userID: "id-bob", at: 20),
            token("t2b", at: 20),
            token("t2a", at: 20),
        ]
        for token in tokens { try await store.insertToken(token) }
        #expect(try await store.tokens(userID: "id-alice").map(\.id) == ["t1", "t2a", "t2b", "t3"])
        #expect(try await store.tokens(userID: "id-bob").map(\.id) == ["b1"])
        #expect(try await store.tokens(userID: nil).map(\.id) == ["t1", "b1", "t2a", "t2b", "t3"])
        #expect(try await store.tokens(userID: "nobody").isEmpty)
        #expect(try await store.tokens(userID: "id-alice").first == token("t1", at: 10))
    }

    static func usableBcryptTokensExcludeRevokedExpiredAndNative(_ store: any GatewayStore) async throws {
        let now = time(1000)
        let bcrypt = APIToken.Verifier.bcrypt("$2b$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234")
        let tokens = [
            token("open", verifier: bcrypt, at: 1),
            token("later", verifier: bcrypt, at: 2, expiresAt: time(1001)),
            token("expiring-now", verifier: bcrypt, at: 3, expiresAt: now),
            token("expired", verifier: bcrypt, at: 4, expiresAt: time(999)),
            token("revoked", verifier: bcrypt, at: 5, revokedAt: time(500)),
            token("revoked-later", verifier: bcrypt, at: 6, revokedAt: time(2000)),
            token("native", at: 7),
        ]
        for token in tokens { try await store.insertToken(token) }
        let usable = try await store.usableBcryptTokens(at: now)
        #expect(usable.map(\.id) == ["open", "later"])
        #expect(usable.first == tokens[0])
        #expect(
            try await store.usableBcryptTokens(at: time(0)).map(\.id) == ["open", "later", "expiring-now", "expired"])
    }

    static func revokeTokensOnce(_ store: any GatewayStore) async throws {
        try await store.insertToken(token("t1"))
        #expect(try await store.revokeToken(id: "t1", at: time(100)))
        #expect(try await store.token(id: "t1")?.revokedAt == time(100))
        #expect(try await store.revokeToken(id: "t1", at: time(200)) == false, "revoking twice reports false")
        #expect(try await store.token(id: "t1")?.revokedAt == time(100), "the first revocation time is kept")
        #expect(try await store.revokeToken(id: "missing", at: time(100)) == false)
    }

    static func setAndClearTokenExpiry(_ store: any GatewayStore) async throws {
        try await store.insertToken(token("t1"))
        try await store.setTokenExpiry(id: "t1", expiresAt: time(86_400))
        #expect(try await store.token(id: "t1")?.expiresAt == time(86_400))
        try await store.setTokenExpiry(id: "t1", expiresAt: nil)
        #expect(try await store.token(id: "t1") == token("t1"))
        await expectNotFound { try await store.setTokenExpiry(id: "missing", expiresAt: time(1)) }
    }

    static func touchTokens(_ store: any GatewayStore) async throws {
        try await store.insertToken(token("t1"))
        try await store.insertToken(token("t2"))
        try await store.touchToken(id: "t1", at: time(60))
        #expect(try await store.token(id: "t1")?.lastUsedAt == time(60))
        try await store.touchToken(id: "t1", at: time(120))
        var expected = token("t1")
        expected.lastUsedAt = time(120)
        #expect(try await store.token(id: "t1") == expected, "touching changes only the last use")
        #expect(try await store.token(id: "t2")?.lastUsedAt == nil)
        try await store.touchToken(id: "missing", at: time(1))
    }

    // MARK: Sessions

    static func insertFindTouchAndDeleteSessions(_ store: any GatewayStore) async throws {
        var first = session("digest-1")
        first.clientAddress = "192.0.2.7"
        first.userAgent = "Mozilla/5.0 (X11; Linux x86_64) Chromium"
        let second = session("digest-2")
        try await store.insertSession(first)
        try await store.insertSession(second)
        #expect(try await store.session(idDigest: "digest-1") == first)
        #expect(try await store.session(idDigest: "missing") == nil)
        await expectDuplicate(mentioning: "session") {
            try await store.insertSession(session("digest-1", userID: "id-bob"))
        }

        try await store.touchSession(idDigest: "digest-1", at: time(300))
        var touched = first
        touched.lastSeenAt = time(300)
        #expect(try await store.session(idDigest: "digest-1") == touched, "touching changes only the last activity")
        try await store.touchSession(idDigest: "missing", at: time(300))

        #expect(try await store.sessions(userID: "id-alice") == [touched, second], "most recently active first, with where from")
        #expect(try await store.sessions(userID: "id-bob").isEmpty)

        try await store.deleteSession(idDigest: "digest-1")
        #expect(try await store.session(idDigest: "digest-1") == nil)
        #expect(try await store.session(idDigest: "digest-2") == second)
        try await store.deleteSession(idDigest: "digest-1")
    }

    static func deleteSessionsOfOneUser(_ store: any GatewayStore) async throws {
        try await store.insertSession(session("a1"))
        try await store.insertSession(session("a2"))
        try await store.insertSession(session("b1", userID: "id-bob"))
        try await store.deleteSessions(userID: "id-alice")
        #expect(try await store.session(idDigest: "a1") == nil)
        #expect(try await store.session(idDigest: "a2") == nil)
        #expect(try await store.session(idDigest: "b1") != nil)
        try await store.deleteSessions(userID: "nobody")
        #expect(try await store.session(idDigest: "b1") != nil)
    }

    static func deleteExpiredSessions(_ store: any GatewayStore) async throws {
        try await store.insertSession(session("old", expiresIn: 100))
        try await store.insertSession(session("older", expiresIn: 50))
        try await store.insertSession(session("edge", expiresIn: 200))
        try await store.insertSession(session("fresh", expiresIn: 300))
        #expect(try await store.deleteSessions(expiredBefore: time(200)) == 2)
        #expect(try await store.session(idDigest: "old") == nil)
        #expect(try await store.session(idDigest: "older") == nil)
        #expect(try await store.session(idDigest: "edge") != nil, "a session expiring exactly then is kept")
        #expect(try await store.session(idDigest: "fresh") != nil)
        #expect(try await store.deleteSessions(expiredBefore: time(200)) == 0)
        #expect(try await store.deleteSessions(expiredBefore: time(1000)) == 2)
    }

    // MARK: Audit

    static func auditEventsAreNewestFirst(_ store: any GatewayStore) async throws {
        #expect(try await store.auditEvents(limit: 10).isEmpty)
        let events = [
            AuditEvent(
                time: time(1), action: "login.failed", userName: "alice", clientAddress: "192.0.2.1",
                detail: "bad password"),
            AuditEvent(time: time(2), action: "login.succeeded", userName: "alice", clientAddress: "2001:db8::1"),
            AuditEvent(
                time: time(3), action: "token.created", userName: nil, clientAddress: nil,
                detail: "it's \"quoted\"; DROP TABLE users; -- ü"),
            AuditEvent(time: time(3), action: "token.revoked", userName: "bob"),
            AuditEvent(
                time: time(0), action: "user.created", userName: "alice", detail: "appended late with an early time"),
        ]
        for event in events { try await store.appendAudit(event) }
        #expect(
            try await store.auditEvents(limit: 3) == [events[3], events[2], events[1]],
            "equal times: last appended first")
        #expect(try await store.auditEvents(limit: 100) == [events[3], events[2], events[1], events[0], events[4]])
        #expect(try await store.auditEvents(limit: 0).isEmpty)
        #expect(try await store.auditEvents(limit: -1).isEmpty)
        #expect(try await store.userCount() == 0, "quoted text is data, not SQL")
    }

    // MARK: Prompts

    static func insertAndFindPrompts(_ store: any GatewayStore) async throws {
        let queued = prompt("8d5f6a3e-0c1b-4f5e-9a7d-2b3c4d5e6f70")
        var finished = prompt("p2", userID: "id-bob", at: 10)
        finished.status = .succeeded
        finished.updatedAt = time(70)
        try await store.insertPrompt(queued)
        try await store.insertPrompt(finished)
        #expect(try await store.prompt(id: queued.promptID) == queued)
        #expect(try await store.prompt(id: "p2") == finished)
        #expect(try await store.prompt(id: "P2") == nil, "ids are matched exactly")
        #expect(try await store.prompt(id: "missing") == nil)

        await expectDuplicate(mentioning: "p2") { try await store.insertPrompt(prompt("p2", userID: "id-carol")) }
        #expect(try await store.prompt(id: "p2") == finished, "a refused insert changes nothing")
    }

    static func promptsAreListedNewestFirst(_ store: any GatewayStore) async throws {
        #expect(try await store.prompts(userID: nil, limit: 10).isEmpty)
        let prompts = [
            prompt("p1", at: 10),
            prompt("p3", at: 30),
            prompt("b1", userID: "id-bob", at: 20),
            prompt("p2a", at: 20),
            prompt("p2b", at: 20),
        ]
        for prompt in prompts { try await store.insertPrompt(prompt) }
        #expect(try await store.prompts(userID: "id-alice", limit: 10).map(\.promptID) == ["p3", "p2b", "p2a", "p1"])
        #expect(try await store.prompts(userID: "id-alice", limit: 2).map(\.promptID) == ["p3", "p2b"])
        #expect(try await store.prompts(userID: "id-bob", limit: 10) == [prompts[2]])
        #expect(try await store.prompts(userID: nil, limit: 10).map(\.promptID) == ["p3", "p2b", "p2a", "b1", "p1"])
        #expect(try await store.prompts(userID: nil, limit: 3).map(\.promptID) == ["p3", "p2b", "p2a"])
        #expect(try await store.prompts(userID: "nobody", limit: 10).isEmpty)
        #expect(try await store.prompts(userID: nil, limit: 0).isEmpty)
        #expect(try await store.prompts(userID: "id-alice", limit: -1).isEmpty)
    }

    static func promptsCreatedAfterAreOldestFirst(_ store: any GatewayStore) async throws {
        #expect(try await store.prompts(createdAfter: time(0)).isEmpty)
        let prompts = [
            prompt("late", userID: "id-bob", at: 300),
            prompt("edge", at: 100),
            prompt("early", at: 50),
            prompt("tie-b", at: 200),
            prompt("tie-a", userID: "id-bob", at: 200),
        ]
        for prompt in prompts { try await store.insertPrompt(prompt) }
        #expect(
            try await store.prompts(createdAfter: time(100)).map(\.promptID) == ["tie-a", "tie-b", "late"],
            "a prompt created exactly then is left out")
        let all = try await store.prompts(createdAfter: time(0))
        #expect(all.map(\.promptID) == ["early", "edge", "tie-a", "tie-b", "late"])
        #expect(all.first == prompts[2])
        #expect(try await store.prompts(createdAfter: time(300)).isEmpty)
    }

    static func updatePromptStatuses(_ store: any GatewayStore) async throws {
        let original = prompt("p1")
        try await store.insertPrompt(original)
        try await store.insertPrompt(prompt("p2"))
        var expected = original
        for (offset, status) in PromptStatus.allCases.enumerated() {
            #expect(try await store.updatePromptStatus(id: "p1", status: status, at: time(60 + offset)))
            expected.status = status
            expected.updatedAt = time(60 + offset)
            #expect(try await store.prompt(id: "p1") == expected, "only the status and its time change")
        }
        #expect(
            try await store.updatePromptStatus(id: "p1", status: expected.status, at: expected.updatedAt),
            "an update that changes nothing still finds the prompt")
        #expect(try await store.prompt(id: "p2") == prompt("p2"))
        #expect(try await store.updatePromptStatus(id: "missing", status: .failed, at: time(1)) == false)
        #expect(try await store.prompt(id: "missing") == nil, "updating an unknown prompt creates nothing")
    }

    // MARK: ComfyUI users

    static func comfyUserIDsAreSetAndReplaced(_ store: any GatewayStore) async throws {
        #expect(try await store.comfyUserID(forUser: "id-alice") == nil)
        try await store.setComfyUserID("comfy-alice", forUser: "id-alice")
        try await store.setComfyUserID("comfy-bob", forUser: "id-bob")
        #expect(try await store.comfyUserID(forUser: "id-alice") == "comfy-alice")
        #expect(try await store.comfyUserID(forUser: "id-bob") == "comfy-bob")
        try await store.setComfyUserID("comfy-alice-2", forUser: "id-alice")
        #expect(try await store.comfyUserID(forUser: "id-alice") == "comfy-alice-2", "setting again replaces")
        #expect(try await store.comfyUserID(forUser: "id-bob") == "comfy-bob")
        #expect(try await store.comfyUserID(forUser: "ID-ALICE") == nil, "user ids are matched exactly")
    }

    // MARK: Jobs

    static func insertAndFindJobs(_ store: any GatewayStore) async throws {
        let full = Job(
            id: "j1",
            userID: "id-alice",
            source: .v2,
            state: .failed,
            workflow: #"{"9":{"class_type":"SaveImage","inputs":{"filename_prefix":"ünï \"quoted\""}}}"#,
            extraData: #"{"extra_pnginfo":{"workflow":{}}}"#,
            clientID: "client-1",
            idempotencyKey: "key-1",
            requestDigest: String(repeating: "cd", count: 32),
            metadata: #"{"project":"demo"}"#,
            createdAt: time(0),
            dispatchedAt: time(5),
            startedAt: time(6),
            completedAt: time(20),
            expiresAt: time(86_400),
            backend: "http://gpu-1:8188",
            outputs: [
                JobOutput(
                    nodeID: "9", fileName: "ComfyUI_00001_.png", subfolder: "a/b", mediaKind: .image,
                    contentType: "image/png", sizeBytes: 1234, assetID: "asset-1"),
                JobOutput(
                    nodeID: "12", fileName: "preview.webm", fileType: .temp, mediaKind: .video,
                    contentType: "video/webm"),
            ],
            failure: JobFailure(
                code: "execution_error", message: "out of memory", nodeID: "9", classType: "SaveImage",
                details: #"{"traceback":["line 1"]}"#),
            gpuSeconds: 12.5,
            historyEntry: #"{"prompt":[0,"j1",{},{},["9"]],"outputs":{},"status":{"status_str":"error"}}"#,
            retryable: true,
            attempts: 2
        )
        let minimal = job("j2", userID: "id-bob", at: 10)
        try await store.insertJob(full)
        try await store.insertJob(minimal)

        #expect(try await store.job(id: "j1") == full)
        #expect(try await store.job(id: "j2") == minimal)
        #expect(try await store.job(id: "J1") == nil, "ids are matched exactly")
        #expect(try await store.job(id: "missing") == nil)
        #expect(try await store.job(userID: "id-alice", idempotencyKey: "key-1") == full)
        #expect(try await store.job(userID: "id-bob", idempotencyKey: "key-1") == nil)
        #expect(try await store.job(userID: "id-alice", idempotencyKey: "KEY-1") == nil)

        await expectDuplicate(mentioning: "job 'j1'") { try await store.insertJob(job("j1", userID: "id-carol")) }
        #expect(try await store.job(id: "j1") == full, "a refused insert changes nothing")
    }

    static func idempotencyKeysAreUniquePerUser(_ store: any GatewayStore) async throws {
        try await store.insertJob(job("a1", key: "k"))
        await expectDuplicate(mentioning: "idempotency key 'k'") { try await store.insertJob(job("a2", key: "k")) }
        #expect(try await store.job(id: "a2") == nil)
        try await store.insertJob(job("b1", userID: "id-bob", key: "k"))
        try await store.insertJob(job("a3"))
        try await store.insertJob(job("a4"))
        #expect(try await store.job(userID: "id-alice", idempotencyKey: "k")?.id == "a1")
        #expect(try await store.job(userID: "id-bob", idempotencyKey: "k")?.id == "b1", "keys are per user")

        var taking = job("a3")
        taking.idempotencyKey = "k"
        await expectDuplicate(mentioning: "idempotency key 'k'") {
            _ = try await store.updateJob(taking, expecting: .queued)
        }
        #expect(try await store.job(id: "a3") == job("a3"), "a refused update changes nothing")
        #expect(try await store.jobs(userID: nil, states: nil, limit: 10, createdBefore: nil).count == 4)
    }

    static func updateJobsCompareAndSet(_ store: any GatewayStore) async throws {
        let queued = job("j1")
        try await store.insertJob(queued)
        try await store.insertJob(job("j2"))

        var dispatched = queued
        dispatched.state = .running
        dispatched.dispatchedAt = time(5)
        dispatched.backend = "gpu-1"
        dispatched.attempts = 1
        #expect(try await store.updateJob(dispatched, expecting: .queued))
        #expect(try await store.job(id: "j1") == dispatched)

        var late = queued
        late.state = .running
        late.backend = "gpu-2"
        #expect(try await store.updateJob(late, expecting: .queued) == false, "the state has moved on")
        #expect(try await store.job(id: "j1") == dispatched, "a refused update changes nothing")

        var finished = dispatched
        finished.state = .succeeded
        finished.startedAt = time(6)
        finished.completedAt = time(30)
        finished.outputs = [JobOutput(nodeID: "9", fileName: "out.txt", mediaKind: .text, contentType: "text/plain")]
        finished.metadata = #"{"note":"done"}"#
        finished.gpuSeconds = 3.25
        finished.historyEntry = #"{"status":{"status_str":"success","completed":true,"messages":[]}}"#
        finished.retryable = true
        finished.attempts = 2
        #expect(try await store.updateJob(finished, expecting: .running))
        #expect(try await store.job(id: "j1") == finished, "every field is written")
        #expect(try await store.job(id: "j2") == job("j2"))

        #expect(try await store.updateJob(job("missing"), expecting: .queued) == false)
        #expect(try await store.job(id: "missing") == nil, "updating an unknown job creates nothing")
    }

    static func racingDispatchesUpdateOnce(_ store: any GatewayStore) async throws {
        try await store.insertJob(job("race"))
        let winners = try await withThrowingTaskGroup(of: String?.self) { group in
            for replica in 0..<10 {
                group.addTask {
                    var dispatched = job("race")
                    dispatched.state = .running
                    dispatched.backend = "gpu-\(replica)"
                    return try await store.updateJob(dispatched, expecting: .queued) ? dispatched.backend : nil
                }
            }
            return try await group.reduce(into: [String]()) { if let backend = $1 { $0.append(backend) } }
        }
        #expect(winners.count == 1, "exactly one replica dispatches the job")
        #expect(try await store.job(id: "race")?.backend == winners.first)
    }

    static func claimJobsOnceWithinSlots(_ store: any GatewayStore) async throws {
        #expect(try await store.activeJobCounts().isEmpty)
        for (index, id) in ["j1", "j2", "j3"].enumerated() { try await store.insertJob(job(id, at: index)) }
        try await store.insertJob(job("elsewhere", state: .running, at: 3))
        try await store.insertJob(completed("done", at: 4))

        var expected = job("j1")
        expected.state = .running
        expected.backend = "gpu-1"
        expected.dispatchedAt = time(5)
        expected.attempts = 1
        #expect(try await store.claimJob(id: "j1", backend: "gpu-1", slots: 2, at: time(5)) == expected)
        #expect(try await store.job(id: "j1") == expected)
        #expect(try await store.claimJob(id: "j1", backend: "gpu-2", slots: 2, at: time(6)) == nil, "claimed once")
        #expect(try await store.job(id: "j1") == expected, "a refused claim changes nothing")
        #expect(try await store.claimJob(id: "missing", backend: "gpu-1", slots: 2, at: time(6)) == nil)
        #expect(try await store.claimJob(id: "done", backend: "gpu-2", slots: 2, at: time(6)) == nil)

        #expect(try await store.claimJob(id: "j2", backend: "gpu-1", slots: 2, at: time(6))?.attempts == 1)
        #expect(try await store.claimJob(id: "j3", backend: "gpu-1", slots: 2, at: time(7)) == nil, "gpu-1 is full")
        #expect(try await store.job(id: "j3") == job("j3", at: 2))
        #expect(try await store.claimJob(id: "j3", backend: "gpu-2", slots: 0, at: time(7)) == nil, "no slots at all")
        #expect(try await store.activeJobCounts() == ["gpu-1": 2], "jobs without a backend are not counted")

        var canceling = expected
        canceling.state = .canceling
        #expect(try await store.updateJob(canceling, expecting: .running))
        #expect(try await store.claimJob(id: "j3", backend: "gpu-1", slots: 2, at: time(8)) == nil, "canceling counts")
        var succeeded = try #require(try await store.job(id: "j2"))
        succeeded.state = .succeeded
        #expect(try await store.updateJob(succeeded, expecting: .running))
        #expect(try await store.claimJob(id: "j3", backend: "gpu-1", slots: 2, at: time(9))?.backend == "gpu-1")

        // The backend running it died: back in the queue, then handed to another backend.
        var requeued = try #require(try await store.job(id: "j3"))
        requeued.state = .queued
        #expect(try await store.updateJob(requeued, expecting: .running))
        let retried = try #require(try await store.claimJob(id: "j3", backend: "gpu-2", slots: 1, at: time(10)))
        #expect(retried.attempts == 2 && retried.backend == "gpu-2" && retried.dispatchedAt == time(10))
        #expect(try await store.activeJobCounts() == ["gpu-1": 1, "gpu-2": 1])
    }

    /// Claimers working through `first` and `second` (two processes sharing one database, or the same store
    /// twice) race for every queued job on two backends: the backends fill up exactly, and no job runs twice.
    public static func concurrentClaimsNeverOverfillABackend(
        _ first: any GatewayStore, _ second: any GatewayStore
    ) async throws {
        let jobIDs = (0..<40).map { "job\($0)" }
        for (index, id) in jobIDs.enumerated() { try await first.insertJob(job(id, at: index)) }
        let backends = ["gpu-a", "gpu-b"]
        let slots = 3
        let claimed = try await withThrowingTaskGroup(of: [Job].self) { group in
            for claimer in 0..<8 {
                let store = claimer.isMultiple(of: 2) ? first : second
                // Each claimer starts somewhere else in the queue, so claims of different jobs interleave.
                let order = jobIDs[(claimer * 5)...] + jobIDs[..<(claimer * 5)]
                group.addTask {
                    var mine: [Job] = []
                    for id in order {
                        for backend in backends {
                            if let job = try await store.claimJob(id: id, backend: backend, slots: slots, at: time(100)) {
                                mine.append(job)
                            }
                        }
                    }
                    return mine
                }
            }
            return try await group.reduce(into: [Job]()) { $0 += $1 }
        }
        #expect(claimed.count == backends.count * slots)
        #expect(Set(claimed.map(\.id)).count == claimed.count, "no job is claimed twice")
        for backend in backends {
            #expect(claimed.filter { $0.backend == backend }.count == slots, "\(backend) is filled exactly")
        }
        #expect(claimed.allSatisfy { $0.state == .running && $0.attempts == 1 })
        #expect(try await second.activeJobCounts() == ["gpu-a": slots, "gpu-b": slots])
        #expect(try await first.queuedJobs().count == jobIDs.count - claimed.count)
    }

    static func jobsAreListedNewestFirstAndPaged(_ store: any GatewayStore) async throws {
        #expect(try await store.jobs(userID: nil, states: nil, limit: 10, createdBefore: nil).isEmpty)
        let jobs = [
            job("a1", at: 10),
            job("a3", state: .succeeded, at: 30),
            job("b1", userID: "id-bob", state: .running, at: 20),
            job("a2a", state: .failed, at: 20),
            job("a2b", at: 20),
        ]
        for job in jobs { try await store.insertJob(job) }
        func ids(_ userID: String?, _ states: Set<JobState>? = nil, limit: Int = 10, before: Int? = nil) async throws
            -> [String]
        {
            try await store.jobs(userID: userID, states: states, limit: limit, createdBefore: before.map { time($0) })
                .map(\.id)
        }
        #expect(try await ids("id-alice") == ["a3", "a2b", "a2a", "a1"])
        #expect(try await ids("id-alice", limit: 2) == ["a3", "a2b"])
        #expect(try await ids("id-alice", before: 30) == ["a2b", "a2a", "a1"], "the next page starts before the last")
        #expect(try await ids("id-alice", before: 20) == ["a1"])
        #expect(try await ids(nil) == ["a3", "b1", "a2b", "a2a", "a1"])
        #expect(try await ids(nil, before: 25) == ["b1", "a2b", "a2a", "a1"])
        #expect(try await ids("id-alice", [.queued]) == ["a2b", "a1"])
        #expect(try await ids(nil, [.queued, .running]) == ["b1", "a2b", "a1"])
        #expect(try await ids(nil, [.queued, .running], limit: 1, before: 20) == ["a1"])
        #expect(try await ids(nil, []).isEmpty)
        #expect(try await ids(nil, limit: 0).isEmpty)
        #expect(try await ids("id-alice", limit: -1).isEmpty)
        #expect(try await ids("nobody").isEmpty)
        #expect(try await store.jobs(userID: "id-bob", states: nil, limit: 10, createdBefore: nil) == [jobs[2]])
    }

    static func queuedAndUnfinishedJobsAreOldestFirst(_ store: any GatewayStore) async throws {
        #expect(try await store.queuedJobs().isEmpty)
        let jobs = [
            job("q2b", at: 20),
            job("q1", userID: "id-bob", at: 10),
            job("q2a", userID: "id-bob", at: 20),
            job("running", state: .running, at: 5),
            job("canceling", state: .canceling, at: 15),
            job("done", state: .succeeded, at: 1),
        ]
        for job in jobs { try await store.insertJob(job) }
        let queued = try await store.queuedJobs()
        #expect(queued.map(\.id) == ["q1", "q2a", "q2b"])
        #expect(queued.first == QueuedJob(id: "q1", userID: "id-bob", createdAt: jobs[1].createdAt))
        #expect(try await store.jobs(inStates: [.running, .canceling]).map(\.id) == ["running", "canceling"])
        #expect(try await store.jobs(inStates: [.succeeded]) == [jobs[5]])
        #expect(try await store.jobs(inStates: [.failed]).isEmpty)
        #expect(try await store.jobs(inStates: []).isEmpty)

        #expect(try await store.deleteJob(id: "q1"))
        #expect(try await store.deleteJob(id: "q1") == false, "deleting twice reports false")
        #expect(try await store.job(id: "q1") == nil)
        #expect(try await store.queuedJobs().map(\.id) == ["q2a", "q2b"])
    }

    static func countJobsForQuotas(_ store: any GatewayStore) async throws {
        #expect(try await store.countJobs(userID: "id-alice", states: nil, createdAfter: nil) == 0)
        for fixture in [
            job("a1", at: 10), job("a2", state: .running, at: 20), job("a3", state: .succeeded, at: 30),
            job("a4", state: .failed, at: 40), job("b1", userID: "id-bob", at: 10),
        ] {
            try await store.insertJob(fixture)
        }
        let waiting: Set<JobState> = [.queued, .running]
        #expect(try await store.countJobs(userID: "id-alice", states: waiting, createdAfter: nil) == 2)
        #expect(try await store.countJobs(userID: "id-alice", states: nil, createdAfter: nil) == 4)
        #expect(
            try await store.countJobs(userID: "id-alice", states: nil, createdAfter: time(20)) == 2,
            "a job created exactly then is left out")
        #expect(try await store.countJobs(userID: "id-alice", states: waiting, createdAfter: time(10)) == 1)
        #expect(try await store.countJobs(userID: "id-alice", states: [], createdAfter: nil) == 0)
        #expect(try await store.countJobs(userID: "id-bob", states: nil, createdAfter: nil) == 1)
        #expect(try await store.countJobs(userID: "nobody", states: nil, createdAfter: nil) == 0)
    }

    static func gpuSecondsOverAWindow(_ store: any GatewayStore) async throws {
        #expect(try await store.gpuSeconds(userID: nil, completedAfter: time(0)).isEmpty)
        for fixture in [
            completed("a1", at: 100, gpuSeconds: 10),
            completed("a2", state: .failed, at: 200, gpuSeconds: 5.5),
            completed("a3", state: .canceled, at: 300, gpuSeconds: 1),
            job("a4", state: .running),
            completed("b1", userID: "id-bob", at: 250, gpuSeconds: 7),
        ] {
            try await store.insertJob(fixture)
        }
        #expect(
            try await store.gpuSeconds(userID: nil, completedAfter: time(100)) == ["id-alice": 6.5, "id-bob": 7],
            "a job completed exactly then is left out")
        #expect(try await store.gpuSeconds(userID: nil, completedAfter: time(0)) == ["id-alice": 16.5, "id-bob": 7])
        #expect(try await store.gpuSeconds(userID: "id-alice", completedAfter: time(0)) == ["id-alice": 16.5])
        #expect(try await store.gpuSeconds(userID: nil, completedAfter: time(300)).isEmpty)
        #expect(try await store.gpuSeconds(userID: "nobody", completedAfter: time(0)).isEmpty)
    }

    static func usageIsSummedPerUser(_ store: any GatewayStore) async throws {
        #expect(try await store.usage(from: time(0), to: time(1000)).isEmpty)
        var waited = completed("a1", at: 40, gpuSeconds: 2, created: 0)
        waited.dispatchedAt = time(10)
        var failed = completed("a2", state: .failed, at: 150, gpuSeconds: 1.5, created: 100)
        failed.dispatchedAt = time(130)
        var running = job("b1", userID: "id-bob", state: .running, at: 50)
        running.dispatchedAt = time(55)
        var expired = completed("b2", userID: "id-bob", state: .expired, at: 90, gpuSeconds: 4, created: 60)
        expired.dispatchedAt = time(61)
        for fixture in [
            waited, failed, job("a3", at: 200), completed("a4", at: 1100, gpuSeconds: 100, created: 1000), running,
            expired,
        ] {
            try await store.insertJob(fixture)
        }
        #expect(
            try await store.usage(from: time(0), to: time(1000)) == [
                UsageSummary(userID: "id-alice", jobs: 3, finishedJobs: 2, dispatchedJobs: 2, gpuSeconds: 3.5, waitSeconds: 40),
                UsageSummary(userID: "id-bob", jobs: 2, finishedJobs: 1, dispatchedJobs: 2, gpuSeconds: 4, waitSeconds: 6),
            ])
        #expect(
            try await store.usage(from: time(1000), to: time(2000)) == [
                UsageSummary(userID: "id-alice", jobs: 1, finishedJobs: 1, dispatchedJobs: 0, gpuSeconds: 100, waitSeconds: 0)
            ],
            "the interval includes its start and excludes its end")
        #expect(try await store.usage(from: time(2000), to: time(3000)).isEmpty)
    }

    static func expireAndDeleteJobs(_ store: any GatewayStore) async throws {
        let jobs = [
            completed("succeeded", at: 100),
            completed("failed", state: .failed, at: 50),
            completed("canceled", state: .canceled, at: 150),
            completed("edge", at: 200),
            completed("fresh", at: 300),
            completed("old-expired", state: .expired, at: 10),
            job("running", state: .running),
            job("queued"),
        ]
        for job in jobs { try await store.insertJob(job) }

        let expired = try await store.expireJobs(completedBefore: time(200))
        #expect(expired.map(\.id) == ["failed", "succeeded", "canceled"], "ordered by completion time")
        #expect(expired.allSatisfy { $0.state == .expired })
        var expected = jobs[0]
        expected.state = .expired
        #expect(expired.dropFirst().first == expected, "only the state changes")
        #expect(try await store.job(id: "succeeded") == expected)
        #expect(try await store.job(id: "edge")?.state == .succeeded, "a job completed exactly then is kept")
        #expect(try await store.job(id: "running")?.state == .running)
        #expect(try await store.job(id: "queued")?.state == .queued)
        #expect(try await store.expireJobs(completedBefore: time(200)).isEmpty, "jobs expire once")

        #expect(try await store.deleteJobs(expiredBefore: time(100)) == 2)
        #expect(try await store.job(id: "failed") == nil)
        #expect(try await store.job(id: "old-expired") == nil)
        #expect(try await store.job(id: "succeeded") == expected, "a job completed exactly then is kept")
        #expect(try await store.deleteJobs(expiredBefore: time(1000)) == 2, "only expired jobs are removed")
        #expect(try await store.deleteJobs(expiredBefore: time(1000)) == 0)
        let left = try await store.jobs(userID: nil, states: nil, limit: 10, createdBefore: nil).map(\.id)
        #expect(Set(left) == ["edge", "fresh", "running", "queued"])
    }

    // MARK: Assets

    static func assetsAreFoundByHashAndJob(_ store: any GatewayStore) async throws {
        let assets = [
            Asset(
                id: "a1", userID: "id-alice", hash: "blake3:11", sizeBytes: 1_048_576, contentType: "image/png",
                name: "cat.png", createdAt: time(10), jobID: "j1", expiresAt: time(3600)),
            asset("a2", hash: "blake3:11", at: 20),
            asset("b1", userID: "id-bob", hash: "blake3:11", at: 5),
            asset("a4", hash: "blake3:22", at: 1, jobID: "j1"),
            asset("a5", hash: nil, at: 2),
        ]
        for asset in assets { try await store.insertAsset(asset) }
        #expect(try await store.asset(id: "a1") == assets[0])
        #expect(try await store.asset(id: "a5") == assets[4])
        #expect(try await store.asset(id: "A1") == nil, "ids are matched exactly")
        await expectDuplicate(mentioning: "a1") {
            try await store.insertAsset(asset("a1", userID: "id-bob", hash: nil))
        }
        #expect(try await store.asset(id: "a1") == assets[0], "a refused insert changes nothing")

        #expect(try await store.assets(userID: "id-alice", hash: "blake3:11").map(\.id) == ["a1", "a2"])
        #expect(try await store.assets(userID: "id-bob", hash: "blake3:11") == [assets[2]])
        #expect(try await store.assets(userID: "id-bob", hash: "blake3:22").isEmpty)
        #expect(try await store.assets(jobID: "j1").map(\.id) == ["a4", "a1"])
        #expect(try await store.assets(jobID: "j2").isEmpty)
        #expect(try await store.countAssets(hash: "blake3:11") == 3)
        #expect(try await store.countAssets(hash: "blake3:22") == 1)
        #expect(try await store.countAssets(hash: "blake3:33") == 0)

        #expect(try await store.deleteAsset(id: "a1"))
        #expect(try await store.deleteAsset(id: "a1") == false, "deleting twice reports false")
        #expect(try await store.asset(id: "a1") == nil)
        #expect(try await store.countAssets(hash: "blake3:11") == 2)
        #expect(try await store.assets(jobID: "j1").map(\.id) == ["a4"])
    }

    // MARK: Quotas

    static func userQuotasAreSetReplacedAndDeleted(_ store: any GatewayStore) async throws {
        #expect(try await store.userQuota(userID: "id-alice") == nil)
        #expect(try await store.userQuotas().isEmpty)
        let alice = UserQuota(
            userID: "id-alice",
            limits: QuotaLimits(maxWaitingJobs: 3, jobsPerDay: 100, gpuSecondsPerDay: 3600.5, maxImageArea: 2_097_152),
            weight: 2
        )
        let bob = UserQuota(userID: "id-bob")
        try await store.setUserQuota(bob)
        try await store.setUserQuota(alice)
        #expect(try await store.userQuota(userID: "id-alice") == alice)
        #expect(try await store.userQuota(userID: "id-bob") == bob)
        #expect(try await store.userQuota(userID: "ID-ALICE") == nil, "user ids are matched exactly")
        #expect(try await store.userQuotas() == [alice, bob])

        let replaced = UserQuota(userID: "id-alice", limits: QuotaLimits(jobsPerDay: 10), weight: 0.5)
        try await store.setUserQuota(replaced)
        let stored = try #require(try await store.userQuota(userID: "id-alice"))
        #expect(stored == replaced, "setting again replaces every field")
        let roleDefaults = QuotaLimits(maxWaitingJobs: 5, jobsPerDay: 50, gpuSecondsPerDay: 600)
        #expect(
            stored.limits.merging(over: roleDefaults)
                == QuotaLimits(maxWaitingJobs: 5, jobsPerDay: 10, gpuSecondsPerDay: 600, maxImageArea: nil))

        try await store.deleteUserQuota(userID: "id-alice")
        try await store.deleteUserQuota(userID: "id-alice")
        try await store.deleteUserQuota(userID: "nobody")
        #expect(try await store.userQuota(userID: "id-alice") == nil)
        #expect(try await store.userQuotas() == [bob])
    }

    // MARK: Login failures

    static func loginFailuresAreCountedLockedAndForgotten(_ store: any GatewayStore) async throws {
        let account = BackoffPolicy(freeFailures: 2, firstLockout: 30, maxLockout: 600)
        let address = BackoffPolicy(freeFailures: 50, firstLockout: 30, maxLockout: 900)
        let policies = ["account:alice": account, "address:192.0.2.7": address]
        #expect(try await store.loginFailures(keys: ["account:alice", "address:192.0.2.7"]).isEmpty)

        let first = try await store.recordLoginFailure(policies: policies, at: time(0))
        #expect(
            first == [
                LoginFailureRecord(key: "account:alice", failures: 1, lastFailureAt: time(0), lockedUntil: time(0)),
                LoginFailureRecord(key: "address:192.0.2.7", failures: 1, lastFailureAt: time(0), lockedUntil: time(0)),
            ])
        let second = try await store.recordLoginFailure(policies: policies, at: time(10))
        #expect(
            second == [
                LoginFailureRecord(key: "account:alice", failures: 2, lastFailureAt: time(10), lockedUntil: time(40)),
                LoginFailureRecord(key: "address:192.0.2.7", failures: 2, lastFailureAt: time(10), lockedUntil: time(10)),
            ])
        #expect(
            try await store.loginFailures(keys: ["address:192.0.2.7", "account:bob", "account:alice"]) == second,
            "ordered by key; keys without failures are left out")
        #expect(try await store.loginFailures(keys: []).isEmpty)

        // Quiet for less than the account's maxLockout after its lockout: counted on; then for all of it: over.
        let third = try await store.recordLoginFailure(policies: ["account:alice": account], at: time(639))
        #expect(third.map(\.failures) == [3] && third.first?.lockedUntil == time(639 + 60))
        let fresh = try await store.recordLoginFailure(policies: ["account:alice": account], at: time(699 + 600))
        #expect(fresh == [LoginFailureRecord(key: "account:alice", failures: 1, lastFailureAt: time(1299), lockedUntil: time(1299))])
        #expect(try await store.loginFailures(keys: ["address:192.0.2.7"]).isEmpty, "forgotten records are removed")

        try await store.deleteLoginFailures(key: "account:alice")
        try await store.deleteLoginFailures(key: "account:nobody")
        #expect(try await store.loginFailures(keys: ["account:alice"]).isEmpty)
    }

    /// Failed logins counted at once through `first` and `second` (two processes sharing one database, or the
    /// same store twice): every one is counted, each exactly once.
    public static func concurrentLoginFailuresAreAllCounted(_ first: any GatewayStore, _ second: any GatewayStore)
        async throws
    {
        let policy = BackoffPolicy(freeFailures: 5, firstLockout: 30, maxLockout: 900)
        let policies = ["account:alice": policy, "address:192.0.2.7": policy]
        let attempts = 20
        let counts = try await withThrowingTaskGroup(of: [Int].self) { group in
            for attempt in 0..<attempts {
                let store = attempt.isMultiple(of: 2) ? first : second
                group.addTask { try await store.recordLoginFailure(policies: policies, at: time(0)).map(\.failures) }
            }
            return try await group.reduce(into: [[Int]]()) { $0.append($1) }
        }
        #expect(Set(counts.map { $0[0] }) == Set(1...attempts), "each failure of the account is counted once")
        #expect(Set(counts.map { $0[1] }) == Set(1...attempts), "each failure of the address is counted once")
        let stored = try await second.loginFailures(keys: ["account:alice", "address:192.0.2.7"])
        #expect(stored.map(\.failures) == [attempts, attempts])
        #expect(stored.first?.lockedUntil == time(0).addingTimeInterval(policy.lockout(afterFailures: attempts)))
    }

    // MARK: Backends

    static func backendControlsAreSetAndReplaced(_ store: any GatewayStore) async throws {
        #expect(try await store.backendControls().isEmpty)
        let drainedB = BackendControl(name: "gpu-b", drained: true, changedAt: time(10), changedBy: "alice")
        let drainedA = BackendControl(name: "gpu-A", drained: true, changedAt: time(20))
        try await store.setBackendControl(drainedB)
        try await store.setBackendControl(drainedA)
        #expect(try await store.backendControls() == [drainedA, drainedB], "ordered by name")

        let enabledB = BackendControl(name: "gpu-b", drained: false, changedAt: time(30), changedBy: "bob")
        try await store.setBackendControl(enabledB)
        #expect(try await store.backendControls() == [drainedA, enabledB], "a later decision replaces the earlier one")
        let anonymous = BackendControl(name: "gpu-b", drained: true, changedAt: time(40))
        try await store.setBackendControl(anonymous)
        #expect(try await store.backendControls() == [drainedA, anonymous], "who changed it is cleared too")
    }

    static func backendStatusesKeepTheLatestPerReplica(_ store: any GatewayStore) async throws {
        #expect(try await store.backendStatuses().isEmpty)
        let status = #"{"reachable":true,"queue":{"running":1,"pending":0},"note":"ünï \"quoted\""}"#
        let records = [
            BackendStatusRecord(name: "gpu-b", replica: "replica-1", status: status, observedAt: time(1)),
            BackendStatusRecord(name: "gpu-a", replica: "replica-2", status: #"{"reachable":false}"#, observedAt: time(2)),
            BackendStatusRecord(name: "gpu-a", replica: "replica-1", status: status, observedAt: time(3)),
        ]
        for record in records { try await store.recordBackendStatus(record) }
        #expect(try await store.backendStatuses() == [records[2], records[1], records[0]], "by name, then replica")

        let newer = BackendStatusRecord(name: "gpu-a", replica: "replica-2", status: #"{"reachable":true}"#, observedAt: time(9))
        try await store.recordBackendStatus(newer)
        #expect(try await store.backendStatuses() == [records[2], newer, records[0]], "one record per backend and replica")
    }

    // MARK: Dates

    static func datesKeepMilliseconds(_ store: any GatewayStore) async throws {
        let created = Date(timeIntervalSince1970: 1_764_069_123.456_789)
        let later = created.addingTimeInterval(0.001)
        var alice = user("alice")
        alice.createdAt = created
        try await store.insertUser(alice)
        expectClose(try await store.user(id: alice.id)?.createdAt, created)

        try await store.insertToken(token("t1", expiresAt: later))
        try await store.touchToken(id: "t1", at: created)
        #expect(try await store.revokeToken(id: "t1", at: later))
        let stored = try #require(try await store.token(id: "t1"))
        expectClose(stored.expiresAt, later)
        expectClose(stored.lastUsedAt, created)
        expectClose(stored.revokedAt, later)

        let farFuture = Date(timeIntervalSince1970: 4_102_444_800.25)  // 2100-01-01T00:00:00.25Z
        try await store.insertSession(
            Session(idDigest: "d", userID: alice.id, createdAt: created, lastSeenAt: later, expiresAt: farFuture)
        )
        let session = try #require(try await store.session(idDigest: "d"))
        expectClose(session.createdAt, created)
        expectClose(session.lastSeenAt, later)
        expectClose(session.expiresAt, farFuture)

        try await store.appendAudit(AuditEvent(time: created, action: "a"))
        try await store.appendAudit(AuditEvent(time: later, action: "b"))
        let events = try await store.auditEvents(limit: 2)
        #expect(events.map(\.action) == ["b", "a"], "a millisecond apart is enough to order events")
        expectClose(events.first?.time, later)

        try await store.insertPrompt(
            PromptRecord(promptID: "p", userID: alice.id, createdAt: created, status: .queued, updatedAt: created)
        )
        #expect(try await store.updatePromptStatus(id: "p", status: .running, at: later))
        let prompt = try #require(try await store.prompt(id: "p"))
        expectClose(prompt.createdAt, created)
        expectClose(prompt.updatedAt, later)
        #expect(try await store.prompts(createdAfter: created.addingTimeInterval(-0.001)).map(\.promptID) == ["p"])
        #expect(try await store.prompts(createdAfter: later).isEmpty, "a millisecond apart is enough to filter prompts")

        var timedJob = job("j")
        timedJob.createdAt = created
        timedJob.dispatchedAt = later
        timedJob.completedAt = farFuture
        try await store.insertJob(timedJob)
        let storedJob = try #require(try await store.job(id: "j"))
        expectClose(storedJob.createdAt, created)
        expectClose(storedJob.dispatchedAt, later)
        expectClose(storedJob.completedAt, farFuture)
        #expect(try await store.jobs(userID: nil, states: nil, limit: 1, createdBefore: later).map(\.id) == ["j"])
        #expect(try await store.jobs(userID: nil, states: nil, limit: 1, createdBefore: created).isEmpty)
    }

    // MARK: Concurrency

    static func concurrentWrites(_ store: any GatewayStore) async throws {
        let writers = 40
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<writers {
                group.addTask {
                    let name = "user\(index)"
                    try await store.insertUser(user(name, at: index))
                    try await store.insertToken(token("token\(index)", userID: "id-\(name)", at: index))
                    try await store.touchToken(id: "token\(index)", at: time(index + 1))
                    try await store.insertSession(session("session\(index)", userID: "id-\(name)"))
                    try await store.appendAudit(AuditEvent(time: time(index), action: "user.created", userName: name))
                    try await store.insertPrompt(prompt("prompt\(index)", userID: "id-\(name)", at: index))
                    #expect(try await store.updatePromptStatus(id: "prompt\(index)", status: .running, at: time(index)))
                    try await store.setComfyUserID("comfy-\(name)", forUser: "id-\(name)")
                }
            }
            try await group.waitForAll()
        }
        #expect(try await store.userCount() == writers)
        #expect(try await store.tokens(userID: nil).count == writers)
        #expect(try await store.auditEvents(limit: 1000).count == writers)
        let prompts = try await store.prompts(createdAfter: time(-1))
        #expect(prompts.count == writers && prompts.allSatisfy { $0.status == .running })
        #expect(try await store.comfyUserID(forUser: "id-user\(writers - 1)") == "comfy-user\(writers - 1)")
        #expect(try await store.deleteSessions(expiredBefore: time(100_000)) == writers)

        // Racing inserts of one name: exactly one wins, the others see a duplicate.
        let outcomes = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<10 {
                group.addTask {
                    do {
                        try await store.insertUser(
                            user(index.isMultiple(of: 2) ? "racer" : "RACER", id: "racer-\(index)"))
                        return true
                    } catch StoreError.duplicate {
                        return false
                    }
                }
            }
            return try await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 }.count == 1)
        #expect(try await store.userCount() == writers + 1)
    }
}

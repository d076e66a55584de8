import ComfyGateCore
import ComfyGateSQLite
import ComfyGateTestSupport
import Foundation
import Synchronization
import Testing

@Suite struct CachedGatewayStoreTests {
    @Test(arguments: GatewayStoreConformance.Check.allCases)
    func passesTheStoreConformanceSuite(_ check: GatewayStoreConformance.Check) async throws {
        try await check.run(on: CachedGatewayStore(SQLiteStore.inMemory()))
    }

    /// A user with one native token and one session, written to `store`.
    private func seed(_ store: any GatewayStore) async throws -> (User, APIToken, Session) {
        let now = Date(timeIntervalSince1970: 1_800_000_000)  // whole seconds: stores keep millisecond precision
        let user = User(name: "alice", role: .user, passwordHash: nil, createdAt: now)
        let token = APIToken(id: "tok000000001", userID: user.id, name: "laptop", verifier: .sha256("ab"), createdAt: now)
        let session = Session(idDigest: "digest-1", userID: user.id, createdAt: now, lastSeenAt: now, expiresAt: now + 3600)
        try await store.insertUser(user)
        try await store.insertToken(token)
        try await store.insertSession(session)
        return (user, token, session)
    }

    @Test func writesThroughTheCacheTakeEffectAtOnce() async throws {
        let cache = CachedGatewayStore(try SQLiteStore.inMemory(), lifetime: .seconds(3600))
        let (seededUser, token, seededSession) = try await seed(cache)
        var user = seededUser
        var session = seededSession
        #expect(try await cache.token(id: token.id)?.revokedAt == nil)
        #expect(try await cache.user(id: user.id)?.isDisabled == false)
        #expect(try await cache.session(idDigest: session.idDigest) != nil)

        #expect(try await cache.revokeToken(id: token.id, at: Date()))
        #expect(try await cache.token(id: token.id)?.revokedAt != nil)
        user.isDisabled = true
        try await cache.updateUser(user)
        #expect(try await cache.user(id: user.id)?.isDisabled == true)
        try await cache.touchSession(idDigest: session.idDigest, at: session.lastSeenAt + 60)
        #expect(try await cache.session(idDigest: session.idDigest)?.lastSeenAt == session.lastSeenAt + 60)
        try await cache.deleteSessions(userID: user.id)
        #expect(try await cache.session(idDigest: session.idDigest) == nil)

        session.idDigest = "digest-2"
        try await cache.insertSession(session)
        #expect(try await cache.session(idDigest: "digest-2") != nil)
        try await cache.deleteSession(idDigest: "digest-2")
        #expect(try await cache.session(idDigest: "digest-2") == nil)
    }

    @Test func writesByAnotherProcessAreSeenOnceTheLifetimeHasPassed() async throws {
        let database = try SQLiteStore.inMemory()
        let longLived = CachedGatewayStore(database, lifetime: .seconds(3600))
        let shortLived = CachedGatewayStore(database, lifetime: .milliseconds(200))
        let (user, token, _) = try await seed(database)
        for cache in [longLived, shortLived] {
            #expect(try await cache.token(id: token.id)?.revokedAt == nil)
            #expect(try await cache.user(id: user.id)?.isDisabled == false)
        }

        // Written under the caches, as `comfygate tokens revoke` or `users disable` does from another process.
        #expect(try await database.revokeToken(id: token.id, at: Date()))
        var disabled = user
        disabled.isDisabled = true
        try await database.updateUser(disabled)
        #expect(try await longLived.token(id: token.id)?.revokedAt == nil, "within its lifetime the cached record answers")

        try await Task.sleep(for: .milliseconds(300))
        #expect(try await shortLived.token(id: token.id)?.revokedAt != nil)
        #expect(try await shortLived.user(id: user.id)?.isDisabled == true)
    }

    @Test func recordsThatDoNotExistAreNotCached() async throws {
        let database = try SQLiteStore.inMemory()
        let cache = CachedGatewayStore(database, lifetime: .seconds(3600))
        #expect(try await cache.token(id: "tok000000001") == nil)
        _ = try await seed(database)
        #expect(try await cache.token(id: "tok000000001") != nil, "a token created elsewhere works on its first use")
    }

    @Test func importedTokenListFollowsImportsAndRevocations() async throws {
        let cache = CachedGatewayStore(try SQLiteStore.inMemory(), lifetime: .seconds(3600))
        let (user, _, _) = try await seed(cache)
        #expect(try await cache.usableBcryptTokens(at: Date()).isEmpty)
        let imported = APIToken(
            id: "imp000000001", userID: user.id, name: "seed", verifier: .bcrypt("$2b$04$" + String(repeating: "a", count: 53)),
            createdAt: Date()
        )
        try await cache.insertToken(imported)
        #expect(try await cache.usableBcryptTokens(at: Date()).map(\.id) == [imported.id])
        #expect(try await cache.revokeToken(id: imported.id, at: Date()))
        #expect(try await cache.usableBcryptTokens(at: Date()).isEmpty)
    }
}

/// A store whose token lookups are slow and counted, to see concurrent misses share one read.
private final class SlowTokenLookups: GatewayStore {
    let base: SQLiteStore
    let tokenReads = Mutex(0)

    init(_ base: SQLiteStore) { self.base = base }

    /// Reads, then takes its time to answer: what it returns is as of the start of the call.
    func token(id: String) async throws -> APIToken? {
        tokenReads.withLock { $0 += 1 }
        let token = try await base.token(id: id)
        try await Task.sleep(for: .milliseconds(500))
        return token
    }

    func insertUser(_ user: User) async throws { try await base.insertUser(user) }
    func updateUser(_ user: User) async throws { try await base.updateUser(user) }
    func user(id: String) async throws -> User? { try await base.user(id: id) }
    func user(named name: String) async throws -> User? { try await base.user(named: name) }
    func users() async throws -> [User] { try await base.users() }
    func userCount() async throws -> Int { try await base.userCount() }
    func insertToken(_ token: APIToken) async throws { try await base.insertToken(token) }
    func tokens(userID: String?) async throws -> [APIToken] { try await base.tokens(userID: userID) }
    func usableBcryptTokens(at date: Date) async throws -> [APIToken] { try await base.usableBcryptTokens(at: date) }
    func revokeToken(id: String, at date: Date) async throws -> Bool { try await base.revokeToken(id: id, at: date) }
    func setTokenExpiry(id: String, expiresAt: Date?) async throws { try await base.setTokenExpiry(id: id, expiresAt: expiresAt) }
    func touchToken(id: String, at date: Date) async throws { try await base.touchToken(id: id, at: date) }
    func insertSession(_ session: Session) async throws { try await base.insertSession(session) }
    func session(idDigest: String) async throws -> Session? { try await base.session(idDigest: idDigest) }
    func touchSession(idDigest: String, at date: Date) async throws { try await base.touchSession(idDigest: idDigest, at: date) }
    func deleteSession(idDigest: String) async throws { try await base.deleteSession(idDigest: idDigest) }
    func sessions(userID: String) async throws -> [Session] { try await base.sessions(userID: userID) }
    func deleteSessions(userID: String) async throws { try await base.deleteSessions(userID: userID) }
    func deleteSessions(expiredBefore date: Date) async throws -> Int { try await base.deleteSessions(expiredBefore: date) }
    func appendAudit(_ event: AuditEvent) async throws { try await base.appendAudit(event) }
    func auditEvents(limit: Int) async throws -> [AuditEvent] { try await base.auditEvents(limit: limit) }
    func checkWritable() async throws { try await base.checkWritable() }
    func insertPrompt(_ record: PromptRecord) async throws { try await base.insertPrompt(record) }
    func prompt(id: String) async throws -> PromptRecord? { try await base.prompt(id: id) }
    func prompts(userID: String?, limit: Int) async throws -> [PromptRecord] { try await base.prompts(userID: userID, limit: limit) }
    func prompts(createdAfter date: Date) async throws -> [PromptRecord] { try await base.prompts(createdAfter: date) }
    func updatePromptStatus(id: String, status: PromptStatus, at date: Date) async throws -> Bool {
        try await base.updatePromptStatus(id: id, status: status, at: date)
    }
    func comfyUserID(forUser userID: String) async throws -> String? { try await base.comfyUserID(forUser: userID) }
    func setComfyUserID(_ comfyUserID: String, forUser userID: String) async throws { try await base.setComfyUserID(comfyUserID, forUser: userID) }
    func insertJob(_ job: Job) async throws { try await base.insertJob(job) }
    func job(id: String) async throws -> Job? { try await base.job(id: id) }
    func job(userID: String, idempotencyKey: String) async throws -> Job? {
        try await base.job(userID: userID, idempotencyKey: idempotencyKey)
    }
    func updateJob(_ job: Job, expecting expected: JobState) async throws -> Bool {
        try await base.updateJob(job, expecting: expected)
    }
    func jobs(userID: String?, states: Set<JobState>?, limit: Int, createdBefore: Date?) async throws -> [Job] {
        try await base.jobs(userID: userID, states: states, limit: limit, createdBefore: createdBefore)
    }
    func claimJob(id: String, backend: String, slots: Int, at date: Date) async throws -> Job? {
        try await base.claimJob(id: id, backend: backend, slots: slots, at: date)
    }
    func activeJobCounts() async throws -> [String: Int] { try await base.activeJobCounts() }
    func queuedJobs() async throws -> [QueuedJob] { try await base.queuedJobs() }
    func loginFailures(keys: [String]) async throws -> [LoginFailureRecord] { try await base.loginFailures(keys: keys) }
    func recordLoginFailure(policies: [String: BackoffPolicy], at date: Date) async throws -> [LoginFailureRecord] {
        try await base.recordLoginFailure(policies: policies, at: date)
    }
    func deleteLoginFailures(key: String) async throws { try await base.deleteLoginFailures(key: key) }
    func backendControls() async throws -> [BackendControl] { try await base.backendControls() }
    func setBackendControl(_ control: BackendControl) async throws { try await base.setBackendControl(control) }
    func recordBackendStatus(_ record: BackendStatusRecord) async throws { try await base.recordBackendStatus(record) }
    func backendStatuses() async throws -> [BackendStatusRecord] { try await base.backendStatuses() }
    func jobs(inStates states: Set<JobState>) async throws -> [Job] { try await base.jobs(inStates: states) }
    func countJobs(userID: String, states: Set<JobState>?, createdAfter: Date?) async throws -> Int {
        try await base.countJobs(userID: userID, states: states, createdAfter: createdAfter)
    }
    func gpuSeconds(userID: String?, completedAfter: Date) async throws -> [String: Double] {
        try await base.gpuSeconds(userID: userID, completedAfter: completedAfter)
    }
    func usage(from: Date, to: Date) async throws -> [UsageSummary] { try await base.usage(from: from, to: to) }
    func expireJobs(completedBefore date: Date) async throws -> [Job] {
        try await base.expireJobs(completedBefore: date)
    }
    func deleteJobs(expiredBefore date: Date) async throws -> Int { try await base.deleteJobs(expiredBefore: date) }
    func deleteJob(id: String) async throws -> Bool { try await base.deleteJob(id: id) }
    func insertAsset(_ asset: Asset) async throws { try await base.insertAsset(asset) }
    func asset(id: String) async throws -> Asset? { try await base.asset(id: id) }
    func assets(userID: String, hash: String) async throws -> [Asset] {
        try await base.assets(userID: userID, hash: hash)
    }
    func assets(jobID: String) async throws -> [Asset] { try await base.assets(jobID: jobID) }
    func deleteAsset(id: String) async throws -> Bool { try await base.deleteAsset(id: id) }
    func countAssets(hash: String) async throws -> Int { try await base.countAssets(hash: hash) }
    func userQuota(userID: String) async throws -> UserQuota? { try await base.userQuota(userID: userID) }
    func setUserQuota(_ quota: UserQuota) async throws { try await base.setUserQuota(quota) }
    func deleteUserQuota(userID: String) async throws { try await base.deleteUserQuota(userID: userID) }
    func userQuotas() async throws -> [UserQuota] { try await base.userQuotas() }
}

@Suite struct CachedGatewayStoreLoadSharingTests {
    @Test func concurrentMissesOfOneRecordShareOneRead() async throws {
        let slow = SlowTokenLookups(try SQLiteStore.inMemory())
        let cache = CachedGatewayStore(slow, lifetime: .seconds(3600))
        let token = APIToken(id: "tok000000001", userID: "u", name: "laptop", verifier: .sha256("ab"), createdAt: Date(timeIntervalSince1970: 0))
        try await slow.insertToken(token)
        let found = try await withThrowingTaskGroup(of: APIToken?.self) { group in
            for _ in 0..<20 { group.addTask { try await cache.token(id: token.id) } }
            return try await group.reduce(into: [APIToken?]()) { $0.append($1) }
        }
        #expect(found.count == 20 && found.allSatisfy { $0 == token })
        #expect(slow.tokenReads.withLock { $0 } < 5, "lookups that arrive while a read is in progress wait for it")
    }

    @Test func aLookupAfterARevocationNeverSharesAReadFromBeforeIt() async throws {
        let slow = SlowTokenLookups(try SQLiteStore.inMemory())
        let cache = CachedGatewayStore(slow, lifetime: .seconds(3600))
        let token = APIToken(id: "tok000000001", userID: "u", name: "laptop", verifier: .sha256("ab"), createdAt: Date(timeIntervalSince1970: 0))
        try await slow.insertToken(token)
        async let early = cache.token(id: token.id)  // reads the unrevoked record, answers half a second later
        try await Task.sleep(for: .milliseconds(100))
        #expect(try await cache.revokeToken(id: token.id, at: Date(timeIntervalSince1970: 60)))
        #expect(try await cache.token(id: token.id)?.revokedAt != nil, "revoked through the cache: refused at once")
        _ = try await early
    }
}

@Suite struct CachedGatewayStoreRefreshTests {
    @Test func recordsInUseAreReadAgainBeforeTheyExpire() async throws {
        let start = ContinuousClock.now
        let elapsed = Mutex(Duration.zero)
        let database = try SQLiteStore.inMemory()
        let cache = CachedGatewayStore(database, lifetime: .seconds(4), now: { start + elapsed.withLock { $0 } })
        let token = APIToken(id: "tok000000001", userID: "u", name: "laptop", verifier: .sha256("ab"), createdAt: Date(timeIntervalSince1970: 0))
        try await database.insertToken(token)
        #expect(try await cache.token(id: token.id) == token)
        #expect(try await database.revokeToken(id: token.id, at: Date(timeIntervalSince1970: 60)))

        elapsed.withLock { $0 = .seconds(2) }
        #expect(cache.cachedToken(id: token.id)?.revokedAt == nil, "halfway through its lifetime the record is used as it is")
        elapsed.withLock { $0 = .milliseconds(3_500) }
        #expect(cache.cachedToken(id: token.id)?.revokedAt == nil, "in its last quarter it is still used while it is read again")
        var refreshed: APIToken?
        for _ in 0..<1_000 where refreshed?.revokedAt == nil {
            refreshed = cache.cachedToken(id: token.id)
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(refreshed?.revokedAt != nil, "the background read replaced it")
        elapsed.withLock { $0 = .milliseconds(7_000) }
        #expect(cache.cachedToken(id: token.id) != nil, "the replacement has a lifetime of its own")
    }
}

public import Foundation
import Synchronization

/// A ``GatewayStore`` that answers the lookups every request makes (token by id, session by digest, user by id)
/// from memory for a short time, so authenticating a request usually costs no database round trip.
///
/// Writes made through this store take effect at once: they drop the entries they change. Writes made by
/// another process (the CLI revoking a token or disabling a user while `serve` runs, another gateway replica)
/// take effect within `lifetime`. Only records that exist are cached, so a new token works on its first use,
/// and the cache is bounded: it is emptied when it reaches `maxEntries`.
public final class CachedGatewayStore: GatewayStore {
    private struct Entry<Value: Sendable>: Sendable {
        var value: Value
        var expiresAt: ContinuousClock.Instant
        /// Whether a read to replace it before it expires has been started.
        var refreshing = false
    }

    private struct Entries {
        var tokens: [String: Entry<APIToken>] = [:]
        var sessions: [String: Entry<Session>] = [:]
        var users: [String: Entry<User>] = [:]
        var bcryptTokens: Entry<[APIToken]>?
        /// Counts writes, so a read that raced with a write does not cache what the write replaced.
        var generation = 0
        var count: Int { tokens.count + sessions.count + users.count }
    }

    /// The store that holds the records.
    public let base: any GatewayStore
    private let lifetime: Duration
    private let maxEntries: Int
    private let entries = Mutex(Entries())
    /// Reads in progress, by record, with the lookups waiting for them.
    private let loads = Mutex([String: [CheckedContinuation<LoadOutcome, any Error>]]())
    private let now: @Sendable () -> ContinuousClock.Instant

    /// - Parameters:
    ///   - base: the store that holds the records.
    ///   - lifetime: how long a record read from `base` is reused: the longest a change made elsewhere goes unseen.
    ///   - maxEntries: the most records kept before the cache starts over.
    ///   - now: the clock, replaceable in tests.
    public init(
        _ base: any GatewayStore,
        lifetime: Duration = .seconds(1),
        maxEntries: Int = 50_000,
        now: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }
    ) {
        self.base = base
        self.lifetime = lifetime
        self.maxEntries = maxEntries
        self.now = now
    }

    // MARK: Cached lookups

    public func token(id: String) async throws -> APIToken? {
        try await cached(\.tokens, id, flight: "token:" + id) { try await $0.token(id: id) }
    }

    public func session(idDigest: String) async throws -> Session? {
        try await cached(\.sessions, idDigest, flight: "session:" + idDigest) { try await $0.session(idDigest: idDigest) }
    }

    public func user(id: String) async throws -> User? {
        try await cached(\.users, id, flight: "user:" + id) { try await $0.user(id: id) }
    }

    /// Imported tokens usable at `date`, filtered from the list of unrevoked ones as read at most `lifetime` ago.
    public func usableBcryptTokens(at date: Date) async throws -> [APIToken] {
        let now = now()
        let (hit, generation) = entries.withLock { ($0.bcryptTokens, $0.generation) }
        let unrevoked: [APIToken]
        if let hit, hit.expiresAt > now {
            unrevoked = hit.value
        } else {
            unrevoked = try await base.usableBcryptTokens(at: .distantPast)
            entries.withLock { entries in
                if entries.generation == generation { entries.bcryptTokens = Entry(value: unrevoked, expiresAt: now + lifetime) }
            }
        }
        return unrevoked.filter { $0.isUsable(at: date) }
    }

    // MARK: Without waiting

    /// The token if it is in the cache and fresh; never reads the store (for decisions on an event loop).
    public func cachedToken(id: String) -> APIToken? {
        let now = now()
        guard let hit = entries.withLock({ $0.tokens[id] }), hit.expiresAt > now else { return nil }
        if hit.expiresAt - now < refreshAhead, entries.withLock({ Self.startRefresh(&$0.tokens[id]) }) {
            Task { _ = try? await cached(\.tokens, id, flight: "token:" + id, replacing: true) { try await $0.token(id: id) } }
        }
        return hit.value
    }

    /// The session if it is in the cache and fresh; never reads the store.
    public func cachedSession(idDigest: String) -> Session? {
        let now = now()
        guard let hit = entries.withLock({ $0.sessions[idDigest] }), hit.expiresAt > now else { return nil }
        if hit.expiresAt - now < refreshAhead, entries.withLock({ Self.startRefresh(&$0.sessions[idDigest]) }) {
            Task {
                _ = try? await cached(\.sessions, idDigest, flight: "session:" + idDigest, replacing: true) {
                    try await $0.session(idDigest: idDigest)
                }
            }
        }
        return hit.value
    }

    /// The user if it is in the cache and fresh; never reads the store.
    public func cachedUser(id: String) -> User? {
        let now = now()
        guard let hit = entries.withLock({ $0.users[id] }), hit.expiresAt > now else { return nil }
        if hit.expiresAt - now < refreshAhead, entries.withLock({ Self.startRefresh(&$0.users[id]) }) {
            Task { _ = try? await cached(\.users, id, flight: "user:" + id, replacing: true) { try await $0.user(id: id) } }
        }
        return hit.value
    }

    /// Records in use are read again in the last quarter of their lifetime, in the background, so a busy
    /// credential never expires under the requests that use it (each expiry would send them all the slow way).
    private var refreshAhead: Duration { lifetime / 4 }

    /// Marks an entry as being refreshed; false when it already was (one background read per entry).
    private static func startRefresh<Value>(_ entry: inout Entry<Value>?) -> Bool {
        guard entry != nil, !entry!.refreshing else { return false }
        entry!.refreshing = true
        return true
    }

    /// The cached record, or one read from the store. Concurrent misses of one key share a single read, so the
    /// requests in flight when a record expires cost one database round trip, not one each. Reads are shared
    /// only between lookups that saw the same writes, so a revocation made here is never undone by a read
    /// that started before it.
    /// - Parameter replacing: read even if a fresh record is cached (a refresh ahead of expiry).
    private func cached<Value: Sendable>(
        _ table: WritableKeyPath<Entries, [String: Entry<Value>]>,
        _ key: String,
        flight: String,
        replacing: Bool = false,
        read: (any GatewayStore) async throws -> Value?
    ) async throws -> Value? {
        while true {
            let now = now()
            let (hit, generation) = entries.withLock { ($0[keyPath: table][key], $0.generation) }
            if let hit, hit.expiresAt > now, !replacing { return hit.value }
            // A lookup never joins a read that started before a write it has seen complete.
            let flight = "\(flight)@\(generation)"
            let leads = loads.withLock { loads in
                if loads[flight] != nil { return false }
                loads[flight] = []
                return true
            }
            if !leads {
                switch try await joinLoad(flight) {
                case .loaded(let value): return value as? Value
                case .finishedBeforeJoining: continue
                }
            }
            let value: Value?
            do {
                value = try await read(base)
            } catch {
                for waiter in loads.withLock({ $0.removeValue(forKey: flight) ?? [] }) { waiter.resume(throwing: error) }
                throw error
            }
            if let value {
                entries.withLock { entries in
                    guard entries.generation == generation else { return }
                    if entries.count >= maxEntries { entries = Entries(generation: generation) }
                    entries[keyPath: table][key] = Entry(value: value, expiresAt: now + lifetime)
                }
            }
            for waiter in loads.withLock({ $0.removeValue(forKey: flight) ?? [] }) { waiter.resume(returning: .loaded(value)) }
            return value
        }
    }

    private enum LoadOutcome: Sendable {
        case loaded((any Sendable)?)
        /// The read ended between the check and the wait: look again.
        case finishedBeforeJoining
    }

    private func joinLoad(_ flight: String) async throws -> LoadOutcome {
        try await withCheckedThrowingContinuation { continuation in
            let joined = loads.withLock { loads in
                guard loads[flight] != nil else { return false }
                loads[flight]!.append(continuation)
                return true
            }
            if !joined { continuation.resume(returning: .finishedBeforeJoining) }
        }
    }

    /// Runs a write, then drops or adjusts the records it changed (after it, so no read in between caches the old record).
    private func write<Result>(_ body: () async throws -> Result, afterwards adjust: (inout Entries) -> Void) async throws -> Result {
        defer {
            entries.withLock { entries in
                entries.generation += 1
                adjust(&entries)
            }
        }
        return try await body()
    }

    // MARK: Writes update the cache

    public func insertUser(_ user: User) async throws {
        try await base.insertUser(user)
    }

    public func updateUser(_ user: User) async throws {
        try await write({ try await base.updateUser(user) }, afterwards: { $0.users[user.id] = nil })
    }

    public func insertToken(_ token: APIToken) async throws {
        try await write({ try await base.insertToken(token) }, afterwards: { $0.bcryptTokens = nil })
    }

    public func revokeToken(id: String, at date: Date) async throws -> Bool {
        try await write({ try await base.revokeToken(id: id, at: date) }, afterwards: { $0.tokens[id] = nil; $0.bcryptTokens = nil })
    }

    public func setTokenExpiry(id: String, expiresAt: Date?) async throws {
        try await write(
            { try await base.setTokenExpiry(id: id, expiresAt: expiresAt) },
            afterwards: { $0.tokens[id] = nil; $0.bcryptTokens = nil }
        )
    }

    public func touchToken(id: String, at date: Date) async throws {
        try await write({ try await base.touchToken(id: id, at: date) }, afterwards: { $0.tokens[id]?.value.lastUsedAt = date })
    }

    public func insertSession(_ session: Session) async throws {
        try await base.insertSession(session)
    }

    public func touchSession(idDigest: String, at date: Date) async throws {
        try await write({ try await base.touchSession(idDigest: idDigest, at: date) }, afterwards: { $0.sessions[idDigest] = nil })
    }

    public func deleteSession(idDigest: String) async throws {
        try await write({ try await base.deleteSession(idDigest: idDigest) }, afterwards: { $0.sessions[idDigest] = nil })
    }

    public func sessions(userID: String) async throws -> [Session] {
        try await base.sessions(userID: userID)
    }

    public func deleteSessions(userID: String) async throws {
        try await write(
            { try await base.deleteSessions(userID: userID) },
            afterwards: { $0.sessions = $0.sessions.filter { $0.value.value.userID != userID } }
        )
    }

    public func deleteSessions(expiredBefore date: Date) async throws -> Int {
        try await write(
            { try await base.deleteSessions(expiredBefore: date) },
            afterwards: { $0.sessions = $0.sessions.filter { $0.value.value.expiresAt >= date } }
        )
    }

    // MARK: Read straight from the store

    public func user(named name: String) async throws -> User? { try await base.user(named: name) }
    public func users() async throws -> [User] { try await base.users() }
    public func userCount() async throws -> Int { try await base.userCount() }
    public func tokens(userID: String?) async throws -> [APIToken] { try await base.tokens(userID: userID) }
    public func appendAudit(_ event: AuditEvent) async throws { try await base.appendAudit(event) }
    public func auditEvents(limit: Int) async throws -> [AuditEvent] { try await base.auditEvents(limit: limit) }
    public func checkWritable() async throws { try await base.checkWritable() }

    // MARK: Prompts and ComfyUI users, straight from the store

    public func insertPrompt(_ record: PromptRecord) async throws { try await base.insertPrompt(record) }
    public func prompt(id: String) async throws -> PromptRecord? { try await base.prompt(id: id) }
    public func prompts(userID: String?, limit: Int) async throws -> [PromptRecord] {
        try await base.prompts(userID: userID, limit: limit)
    }
    public func prompts(createdAfter date: Date) async throws -> [PromptRecord] {
        try await base.prompts(createdAfter: date)
    }
    public func updatePromptStatus(id: String, status: PromptStatus, at date: Date) async throws -> Bool {
        try await base.updatePromptStatus(id: id, status: status, at: date)
    }
    public func comfyUserID(forUser userID: String) async throws -> String? { try await base.comfyUserID(forUser: userID) }
    public func setComfyUserID(_ comfyUserID: String, forUser userID: String) async throws {
        try await base.setComfyUserID(comfyUserID, forUser: userID)
    }

    // MARK: Jobs, assets and quotas, straight from the store

    public func insertJob(_ job: Job) async throws { try await base.insertJob(job) }
    public func job(id: String) async throws -> Job? { try await base.job(id: id) }
    public func job(userID: String, idempotencyKey: String) async throws -> Job? {
        try await base.job(userID: userID, idempotencyKey: idempotencyKey)
    }
    public func updateJob(_ job: Job, expecting expected: JobState) async throws -> Bool {
        try await base.updateJob(job, expecting: expected)
    }
    public func jobs(userID: String?, states: Set<JobState>?, limit: Int, createdBefore: Date?) async throws -> [Job] {
        try await base.jobs(userID: userID, states: states, limit: limit, createdBefore: createdBefore)
    }
    public func claimJob(id: String, backend: String, slots: Int, at date: Date) async throws -> Job? {
        try await base.claimJob(id: id, backend: backend, slots: slots, at: date)
    }
    public func activeJobCounts() async throws -> [String: Int] { try await base.activeJobCounts() }
    public func queuedJobs() async throws -> [QueuedJob] { try await base.queuedJobs() }
    public func jobs(inStates states: Set<JobState>) async throws -> [Job] { try await base.jobs(inStates: states) }
    public func countJobs(userID: String, states: Set<JobState>?, createdAfter: Date?) async throws -> Int {
        try await base.countJobs(userID: userID, states: states, createdAfter: createdAfter)
    }
    public func gpuSeconds(userID: String?, completedAfter: Date) async throws -> [String: Double] {
        try await base.gpuSeconds(userID: userID, completedAfter: completedAfter)
    }
    public func usage(from: Date, to: Date) async throws -> [UsageSummary] { try await base.usage(from: from, to: to) }
    public func expireJobs(completedBefore date: Date) async throws -> [Job] {
        try await base.expireJobs(completedBefore: date)
    }
    public func deleteJobs(expiredBefore date: Date) async throws -> Int { try await base.deleteJobs(expiredBefore: date) }
    public func deleteJob(id: String) async throws -> Bool { try await base.deleteJob(id: id) }
    public func insertAsset(_ asset: Asset) async throws { try await base.insertAsset(asset) }
    public func asset(id: String) async throws -> Asset? { try await base.asset(id: id) }
    public func assets(userID: String, hash: String) async throws -> [Asset] {
        try await base.assets(userID: userID, hash: hash)
    }
    public func assets(jobID: String) async throws -> [Asset] { try await base.assets(jobID: jobID) }
    public func deleteAsset(id: String) async throws -> Bool { try await base.deleteAsset(id: id) }
    public func countAssets(hash: String) async throws -> Int { try await base.countAssets(hash: hash) }
    public func userQuota(userID: String) async throws -> UserQuota? { try await base.userQuota(userID: userID) }
    public func setUserQuota(_ quota: UserQuota) async throws { try await base.setUserQuota(quota) }
    public func deleteUserQuota(userID: String) async throws { try await base.deleteUserQuota(userID: userID) }
    public func userQuotas() async throws -> [UserQuota] { try await base.userQuotas() }

    // MARK: Login failures, straight from the store

    public func loginFailures(keys: [String]) async throws -> [LoginFailureRecord] {
        try await base.loginFailures(keys: keys)
    }
    public func recordLoginFailure(policies: [String: BackoffPolicy], at date: Date) async throws -> [LoginFailureRecord] {
        try await base.recordLoginFailure(policies: policies, at: date)
    }
    public func deleteLoginFailures(key: String) async throws { try await base.deleteLoginFailures(key: key) }

    // MARK: Backends, straight from the store

    public func backendControls() async throws -> [BackendControl] { try await base.backendControls() }
    public func setBackendControl(_ control: BackendControl) async throws { try await base.setBackendControl(control) }
    public func recordBackendStatus(_ record: BackendStatusRecord) async throws { try await base.recordBackendStatus(record) }
    public func backendStatuses() async throws -> [BackendStatusRecord] { try await base.backendStatuses() }
}

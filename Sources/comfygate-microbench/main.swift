// A development tool for `bench/run`: times the native token check on an in-memory store.
//
// Prints one line per measurement, `RESULT name=… ns_per_op=… iterations=…`. Not part of the product.
import ComfyGateCore
import Foundation
import Synchronization

/// Just enough of a store for the token path; everything else is unused here and fails loudly.
final class MemoryStore: GatewayStore {
    private let users = Mutex([String: User]())
    private let tokens = Mutex([String: APIToken]())

    func insertUser(_ user: User) async throws { users.withLock { $0[user.id] = user } }
    func updateUser(_ user: User) async throws { users.withLock { $0[user.id] = user } }
    func user(id: String) async throws -> User? { users.withLock { $0[id] } }
    func user(named name: String) async throws -> User? { users.withLock { $0.values.first { $0.name == name } } }
    func users() async throws -> [User] { users.withLock { Array($0.values) } }
    func userCount() async throws -> Int { users.withLock { $0.count } }
    func insertToken(_ token: APIToken) async throws { tokens.withLock { $0[token.id] = token } }
    func token(id: String) async throws -> APIToken? { tokens.withLock { $0[id] } }
    func tokens(userID: String?) async throws -> [APIToken] { tokens.withLock { Array($0.values) } }
    func usableBcryptTokens(at date: Date) async throws -> [APIToken] { [] }
    func revokeToken(id: String, at date: Date) async throws -> Bool { false }
    func setTokenExpiry(id: String, expiresAt: Date?) async throws {}
    func touchToken(id: String, at date: Date) async throws {}
    func insertSession(_ session: Session) async throws { unused() }
    func session(idDigest: String) async throws -> Session? { unused() }
    func touchSession(idDigest: String, at date: Date) async throws { unused() }
    func deleteSession(idDigest: String) async throws { unused() }
    func sessions(userID: String) async throws -> [Session] { unused() }
    func deleteSessions(userID: String) async throws { unused() }
    func deleteSessions(expiredBefore date: Date) async throws -> Int { unused() }
    func appendAudit(_ event: AuditEvent) async throws { unused() }
    func auditEvents(limit: Int) async throws -> [AuditEvent] { unused() }
    func checkWritable() async throws { unused() }
    func insertPrompt(_ record: PromptRecord) async throws { unused() }
    func prompt(id: String) async throws -> PromptRecord? { unused() }
    func prompts(userID: String?, limit: Int) async throws -> [PromptRecord] { unused() }
    func prompts(createdAfter date: Date) async throws -> [PromptRecord] { unused() }
    func updatePromptStatus(id: String, status: PromptStatus, at date: Date) async throws -> Bool { unused() }
    func comfyUserID(forUser userID: String) async throws -> String? { unused() }
    func setComfyUserID(_ comfyUserID: String, forUser userID: String) async throws { unused() }
    func insertJob(_ job: Job) async throws { unused() }
    func job(id: String) async throws -> Job? { unused() }
    func job(userID: String, idempotencyKey: String) async throws -> Job? { unused() }
    func updateJob(_ job: Job, expecting expected: JobState) async throws -> Bool { unused() }
    func jobs(userID: String?, states: Set<JobState>?, limit: Int, createdBefore: Date?) async throws -> [Job] { unused() }
    func claimJob(id: String, backend: String, slots: Int, at date: Date) async throws -> Job? { unused() }
    func activeJobCounts() async throws -> [String: Int] { unused() }
    func queuedJobs() async throws -> [QueuedJob] { unused() }
    func loginFailures(keys: [String]) async throws -> [LoginFailureRecord] { unused() }
    func recordLoginFailure(policies: [String: BackoffPolicy], at date: Date) async throws -> [LoginFailureRecord] { unused() }
    func deleteLoginFailures(key: String) async throws { unused() }
    func backendControls() async throws -> [BackendControl] { unused() }
    func setBackendControl(_ control: BackendControl) async throws { unused() }
    func recordBackendStatus(_ record: BackendStatusRecord) async throws { unused() }
    func backendStatuses() async throws -> [BackendStatusRecord] { unused() }
    func jobs(inStates states: Set<JobState>) async throws -> [Job] { unused() }
    func countJobs(userID: String, states: Set<JobState>?, createdAfter: Date?) async throws -> Int { unused() }
    func gpuSeconds(userID: String?, completedAfter: Date) async throws -> [String: Double] { unused() }
    func usage(from: Date, to: Date) async throws -> [UsageSummary] { unused() }
    func expireJobs(completedBefore date: Date) async throws -> [Job] { unused() }
    func deleteJobs(expiredBefore date: Date) async throws -> Int { unused() }
    func deleteJob(id: String) async throws -> Bool { unused() }
    func insertAsset(_ asset: Asset) async throws { unused() }
    func asset(id: String) async throws -> Asset? { unused() }
    func assets(userID: String, hash: String) async throws -> [Asset] { unused() }
    func assets(jobID: String) async throws -> [Asset] { unused() }
    func deleteAsset(id: String) async throws -> Bool { unused() }
    func countAssets(hash: String) async throws -> Int { unused() }
    func userQuota(userID: String) async throws -> UserQuota? { unused() }
    func setUserQuota(_ quota: UserQuota) async throws { unused() }
    func deleteUserQuota(userID: String) async throws { unused() }
    func userQuotas() async throws -> [UserQuota] { unused() }

    private func unused() -> Never { fatalError("not used by the micro-benchmark") }
}

func measure(_ name: String, iterations: Int, _ body: () async throws -> Bool) async rethrows {
    var ok = true
    for _ in 0..<min(iterations / 10, 10_000) { ok = try await body() && ok }  // warm-up
    let clock = ContinuousClock()
    let start = clock.now
    for _ in 0..<iterations { ok = try await body() && ok }
    let elapsed = clock.now - start
    let nanoseconds = Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9
    guard ok else { fatalError("\(name): a check failed") }
    print("RESULT name=\(name) ns_per_op=\(String(format: "%.1f", nanoseconds / Double(iterations))) iterations=\(iterations)")
}

/// Runs off the main actor, so awaiting the (nonisolated) verifier and store does not hop threads per call
/// as it would from top-level code.
@concurrent func run() async throws {
    let iterations = CommandLine.arguments.dropFirst().first.flatMap { Int($0) } ?? 1_000_000
    let store = MemoryStore()
    let user = User(name: "bench", role: .user, passwordHash: nil, createdAt: Date())
    try await store.insertUser(user)
    let generated = TokenFormat.generate()
    try await store.insertToken(APIToken(id: generated.id, userID: user.id, name: "bench", verifier: generated.verifier, createdAt: Date()))
    let verifier = CredentialVerifier(store: store, hasher: PasswordHasher())
    let storedDigest = TokenFormat.digest(generated.token)

    await measure("digest_and_compare", iterations: iterations) {
        ConstantTime.equals(TokenFormat.digest(generated.token), storedDigest)
    }
    try await measure("verify_native_token", iterations: iterations) {
        if case .success = try await verifier.verify(token: generated.token) { return true }
        return false
    }
}

try await run()

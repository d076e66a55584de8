import ComfyGateCore
import Foundation
import Synchronization

/// A minimal in-memory store for the secrets tests (users and tokens only; sessions and audit are kept but not
/// queried; jobs, assets and quotas fail loudly).
final class InMemoryGatewayStore: GatewayStore, GatewayStoreOpener {
    private struct State {
        var users: [User] = []
        var tokens: [APIToken] = []
        var sessions: [Session] = []
        var audit: [AuditEvent] = []
        var prompts: [String: PromptRecord] = [:]
        var comfyUserIDs: [String: String] = [:]
    }

    private let state = Mutex(State())

    func openStore(dataDirectory: URL) async throws -> any GatewayStore { self }

    func insertUser(_ user: User) async throws {
        try state.withLock { state in
            if state.users.contains(where: { $0.name == user.name }) { throw StoreError.duplicate(user.name) }
            state.users.append(user)
        }
    }
    func updateUser(_ user: User) async throws {
        state.withLock { state in state.users = state.users.map { $0.id == user.id ? user : $0 } }
    }
    func user(id: String) async throws -> User? { state.withLock { $0.users.first { $0.id == id } } }
    func user(named name: String) async throws -> User? { state.withLock { $0.users.first { $0.name == name } } }
    func users() async throws -> [User] { state.withLock { $0.users } }
    func userCount() async throws -> Int { state.withLock { $0.users.count } }

    func insertToken(_ token: APIToken) async throws { state.withLock { $0.tokens.append(token) } }
    func token(id: String) async throws -> APIToken? { state.withLock { $0.tokens.first { $0.id == id } } }
    func tokens(userID: String?) async throws -> [APIToken] {
        state.withLock { state in state.tokens.filter { userID == nil || $0.userID == userID } }
    }
    func usableBcryptTokens(at date: Date) async throws -> [APIToken] {
        state.withLock { state in
            state.tokens.filter { token in
                if case .bcrypt = token.verifier { token.isUsable(at: date) } else { false }
            }
        }
    }
    func revokeToken(id: String, at date: Date) async throws -> Bool {
        state.withLock { state in
            guard let index = state.tokens.firstIndex(where: { $0.id == id && $0.revokedAt == nil }) else {
                return false
            }
            state.tokens[index].revokedAt = date
            return true
        }
    }
    func setTokenExpiry(id: String, expiresAt: Date?) async throws {
        state.withLock { state in
            for index in state.tokens.indices where state.tokens[index].id == id {
                state.tokens[index].expiresAt = expiresAt
            }
        }
    }
    func touchToken(id: String, at date: Date) async throws {}

    func insertSession(_ session: Session) async throws { state.withLock { $0.sessions.append(session) } }
    func session(idDigest: String) async throws -> Session? { nil }
    func touchSession(idDigest: String, at date: Date) async throws {}
    func deleteSession(idDigest: String) async throws {}
    func sessions(userID: String) async throws -> [Session] { [] }
    func deleteSessions(userID: String) async throws {}
    func deleteSessions(expiredBefore date: Date) async throws -> Int { 0 }

    func appendAudit(_ event: AuditEvent) async throws { state.withLock { $0.audit.append(event) } }
    func auditEvents(limit: Int) async throws -> [AuditEvent] { [] }

    func insertPrompt(_ record: PromptRecord) async throws {
        try state.withLock { state in
            if state.prompts[record.promptID] != nil { throw StoreError.duplicate(record.promptID) }
            state.prompts[record.promptID] = record
        }
    }
    func prompt(id: String) async throws -> PromptRecord? { state.withLock { $0.prompts[id] } }
    func prompts(userID: String?, limit: Int) async throws -> [PromptRecord] {
        state.withLock { state in
            Array(
                state.prompts.values.filter { userID == nil || $0.userID == userID }
                    .sorted { ($0.createdAt, $0.promptID) > ($1.createdAt, $1.promptID) }
                    .prefix(max(0, limit))
            )
        }
    }
    func prompts(createdAfter date: Date) async throws -> [PromptRecord] {
        state.withLock { state in
            state.prompts.values.filter { $0.createdAt > date }
                .sorted { ($0.createdAt, $0.promptID) < ($1.createdAt, $1.promptID) }
        }
    }
    func updatePromptStatus(id: String, status: PromptStatus, at date: Date) async throws -> Bool {
        state.withLock { state in
            guard state.prompts[id] != nil else { return false }
            state.prompts[id]?.status = status
            state.prompts[id]?.updatedAt = date
            return true
        }
    }

    func comfyUserID(forUser userID: String) async throws -> String? { state.withLock { $0.comfyUserIDs[userID] } }
    func setComfyUserID(_ comfyUserID: String, forUser userID: String) async throws {
        state.withLock { $0.comfyUserIDs[userID] = comfyUserID }
    }

    func checkWritable() async throws {}

    func insertJob(_ job: Job) async throws { unused() }
    func job(id: String) async throws -> Job? { unused() }
    func job(userID: String, idempotencyKey: String) async throws -> Job? { unused() }
    func updateJob(_ job: Job, expecting expected: JobState) async throws -> Bool { unused() }
    func jobs(userID: String?, states: Set<JobState>?, limit: Int, createdBefore: Date?) async throws -> [Job] {
        unused()
    }
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

    private func unused() -> Never { fatalError("not used by the secrets tests") }
}

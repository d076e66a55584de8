public import Foundation

/// Where the gateway keeps users, tokens, sessions, the audit trail, jobs, assets, quota settings, and what the
/// replicas share about failed logins and backends.
///
/// Implementations (SQLite, PostgreSQL) must pass the conformance suite in `ComfyGateTestSupport`. They are
/// safe to share between tasks and between processes using the same database (the CLI edits users while
/// `serve` runs).
public protocol GatewayStore: Sendable {
    // MARK: Users

    /// Adds a user. Throws ``StoreError/duplicate(_:)`` when the name is taken.
    func insertUser(_ user: User) async throws
    /// Replaces the stored user with the same id (name, role, password hash, disabled flag).
    func updateUser(_ user: User) async throws
    func user(id: String) async throws -> User?
    func user(named name: String) async throws -> User?
    /// All users, ordered by name.
    func users() async throws -> [User]
    func userCount() async throws -> Int

    // MARK: Tokens

    /// Adds a token. Throws ``StoreError/duplicate(_:)`` when the id is taken.
    func insertToken(_ token: APIToken) async throws
    func token(id: String) async throws -> APIToken?
    /// Tokens of one user, or of everyone when `userID` is nil, ordered by creation time.
    func tokens(userID: String?) async throws -> [APIToken]
    /// Imported bcrypt tokens that are neither revoked nor expired at `date`.
    func usableBcryptTokens(at date: Date) async throws -> [APIToken]
    /// Marks a token revoked; `false` when there is no such token or it was already revoked.
    func revokeToken(id: String, at date: Date) async throws -> Bool
    /// Sets or clears a token's expiry (rotation grace periods).
    func setTokenExpiry(id: String, expiresAt: Date?) async throws
    /// Records the last time a token was used.
    func touchToken(id: String, at date: Date) async throws

    // MARK: Sessions

    func insertSession(_ session: Session) async throws
    func session(idDigest: String) async throws -> Session?
    func touchSession(idDigest: String, at date: Date) async throws
    func deleteSession(idDigest: String) async throws
    /// A user's sessions, most recently active first (expired ones may be among them until swept).
    func sessions(userID: String) async throws -> [Session]
    /// Ends every session of a user (password change, disable).
    func deleteSessions(userID: String) async throws
    /// Removes sessions whose absolute expiry is before `date`; returns how many.
    func deleteSessions(expiredBefore date: Date) async throws -> Int

    // MARK: Audit

    func appendAudit(_ event: AuditEvent) async throws
    /// The most recent events, newest first.
    func auditEvents(limit: Int) async throws -> [AuditEvent]

    // MARK: Prompts

    /// Records who queued a prompt. Throws ``StoreError/duplicate(_:)`` when the prompt id is already recorded.
    func insertPrompt(_ record: PromptRecord) async throws
    /// The record of one prompt; ids are matched exactly.
    func prompt(id: String) async throws -> PromptRecord?
    /// At most `limit` prompts of one user, or of everyone when `userID` is nil, newest first.
    func prompts(userID: String?, limit: Int) async throws -> [PromptRecord]
    /// Prompts created strictly after `date`, oldest first: what start-up loads into the ownership index.
    func prompts(createdAfter date: Date) async throws -> [PromptRecord]
    /// Sets a prompt's status, changed at `date`; `false` when there is no such prompt.
    func updatePromptStatus(id: String, status: PromptStatus, at date: Date) async throws -> Bool

    // MARK: ComfyUI users

    /// The ComfyUI user a gateway user's requests run as, or nil when none has been assigned.
    func comfyUserID(forUser userID: String) async throws -> String?
    /// Assigns the ComfyUI user a gateway user's requests run as, replacing any earlier assignment.
    func setComfyUserID(_ comfyUserID: String, forUser userID: String) async throws

    // MARK: Jobs

    /// Adds a job. Throws ``StoreError/duplicate(_:)`` naming `job '<id>'` when the id is taken, or naming
    /// `idempotency key '<key>'` when the same user already has a job with that idempotency key.
    func insertJob(_ job: Job) async throws
    /// One job; ids are matched exactly.
    func job(id: String) async throws -> Job?
    /// The job a user submitted with an idempotency key.
    func job(userID: String, idempotencyKey: String) async throws -> Job?
    /// Replaces every field of the stored job with the same id, but only if its stored state is still
    /// `expected`; answers whether it did. Two replicas racing to move one job on: exactly one succeeds.
    /// Throws ``StoreError/duplicate(_:)`` when the new idempotency key is taken.
    func updateJob(_ job: Job, expecting expected: JobState) async throws -> Bool
    /// At most `limit` jobs, newest first, of one user or of everyone when `userID` is nil, in one of `states`
    /// or in any state when `states` is nil, created strictly before `createdBefore` when it is given (paging).
    func jobs(userID: String?, states: Set<JobState>?, limit: Int, createdBefore: Date?) async throws -> [Job]
    /// Moves a queued job to `running` on `backend` — `backend`, `dispatchedAt = date`, `attempts + 1` — when fewer than
    /// `slots` jobs are running or being cancelled on that backend, atomically across every process sharing the store;
    /// returns the job as stored then, nil when it is no longer queued or the backend has no free slot.
    func claimJob(id: String, backend: String, slots: Int, at date: Date) async throws -> Job?
    /// How many jobs are running or being cancelled on each backend that has any.
    func activeJobCounts() async throws -> [String: Int]
    /// Every queued job, oldest first, without its graph: the scheduler's input.
    func queuedJobs() async throws -> [QueuedJob]
    /// Every job in one of `states`, oldest first (what start-up reconciles with ComfyUI).
    func jobs(inStates states: Set<JobState>) async throws -> [Job]
    /// How many jobs of one user are in one of `states` (any state when nil), created strictly after
    /// `createdAfter` when it is given.
    func countJobs(userID: String, states: Set<JobState>?, createdAfter: Date?) async throws -> Int
    /// GPU seconds used by jobs completed strictly after `completedAfter`, per user id, of one user or of
    /// everyone when `userID` is nil; users without such jobs are left out.
    func gpuSeconds(userID: String?, completedAfter: Date) async throws -> [String: Double]
    /// Per user, what the jobs created in `from..<to` amounted to, ordered by user id; users without such
    /// jobs are left out.
    func usage(from: Date, to: Date) async throws -> [UsageSummary]
    /// Marks the succeeded, failed and canceled jobs completed strictly before `date` as expired and returns
    /// them, as expired, ordered by completion time (the caller removes their files).
    func expireJobs(completedBefore date: Date) async throws -> [Job]
    /// Removes expired jobs completed strictly before `date` for good; returns how many.
    func deleteJobs(expiredBefore date: Date) async throws -> Int
    /// Removes one job for good (a submission ComfyUI refused at once never became a job); false when none had the id.
    func deleteJob(id: String) async throws -> Bool

    // MARK: Assets

    /// Adds an asset. Throws ``StoreError/duplicate(_:)`` when the id is taken.
    func insertAsset(_ asset: Asset) async throws
    func asset(id: String) async throws -> Asset?
    /// One user's assets with the given content hash, oldest first (to reuse an upload).
    func assets(userID: String, hash: String) async throws -> [Asset]
    /// The assets a job produced, oldest first.
    func assets(jobID: String) async throws -> [Asset]
    /// Removes an asset; `false` when there is no such asset.
    func deleteAsset(id: String) async throws -> Bool
    /// How many assets, of any user, reference the blob with the given hash; at 0 the blob can go.
    func countAssets(hash: String) async throws -> Int

    // MARK: Quotas

    /// A user's quota settings, or nil when they have none (role defaults and weight 1 apply).
    func userQuota(userID: String) async throws -> UserQuota?
    /// Sets a user's quota settings, replacing any earlier ones.
    func setUserQuota(_ quota: UserQuota) async throws
    /// Removes a user's quota settings; nothing happens when they have none.
    func deleteUserQuota(userID: String) async throws
    /// Every user's quota settings, ordered by user id.
    func userQuotas() async throws -> [UserQuota]

    // MARK: Login failures

    /// The failures counted against the given ``LoginThrottle`` keys, of those that have any, ordered by key.
    func loginFailures(keys: [String]) async throws -> [LoginFailureRecord]
    /// Counts one failed login at `date` against each key, judged by its policy
    /// (``LoginFailureRecord/counting(failureAt:of:after:policy:)``), atomically across every process sharing the
    /// store; returns the keys' records, ordered by key. Records of other keys forgotten by then (quiet for the
    /// longest `maxLockout` of the policies after their lockout ended) are removed.
    func recordLoginFailure(policies: [String: BackoffPolicy], at date: Date) async throws -> [LoginFailureRecord]
    /// Forgets the failures counted against a key (a successful login).
    func deleteLoginFailures(key: String) async throws

    // MARK: Backends

    /// Every backend an operator drained or re-enabled, by name.
    func backendControls() async throws -> [BackendControl]
    /// Drains a backend (it finishes what runs, takes nothing new) or re-enables it, for every replica.
    func setBackendControl(_ control: BackendControl) async throws
    /// Records what one replica last saw of a backend, replacing its earlier record of it.
    func recordBackendStatus(_ record: BackendStatusRecord) async throws
    /// The latest records of every backend by every replica, ordered by name then replica.
    func backendStatuses() async throws -> [BackendStatusRecord]

    // MARK: Health

    /// Proves the store takes writes now, changing nothing; throws ``StoreError/unavailable(_:)`` naming the
    /// store and the cause (a read-only file or database, a lost connection) otherwise.
    func checkWritable() async throws
}

/// Failures a store reports in terms of the domain.
public enum StoreError: Error, Equatable, CustomStringConvertible {
    /// A unique name or id is already taken.
    case duplicate(String)
    /// The record to update does not exist.
    case notFound(String)
    /// The database could not be opened or used; the message says which and why, without secrets.
    case unavailable(String)

    public var description: String {
        switch self {
        case .duplicate(let what): "\(what) already exists"
        case .notFound(let what): "\(what) does not exist"
        case .unavailable(let why): "the store is unavailable: \(why)"
        }
    }
}

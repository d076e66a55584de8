public import ComfyGateCore
public import Foundation
public import Logging
import NIOPosix
import PostgresNIO
public import ServiceLifecycle

/// The shared store for several gateway replicas: PostgreSQL through a PostgresNIO connection pool.
///
/// Run it as a `Service` (its ``run()`` drives the pool) and call ``migrate()`` once it runs. Every value
/// reaches the server as a bound parameter. User names are unique regardless of case; lookups by name
/// ignore case too. Errors are ``StoreError`` values whose messages name the server and database but
/// never the password.
public final class PostgresStore: GatewayStore, Service {
    private let client: PostgresClient
    private let url: PostgresURL
    /// `postgres at host:port/database`, for error messages.
    private let location: String
    /// Queries and transactions log nothing: their bound values include password hashes.
    private let queryLogger = Logger(label: "comfygate.postgres.query", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Prepares a connection pool for `url` (`postgres://user:password@host:port/database?sslmode=disable`).
    ///
    /// Nothing connects until ``run()`` runs. Without `sslmode`, loopback hosts connect without TLS and
    /// other hosts require TLS with a verified certificate; `sslmode` takes libpq's values (`disable`,
    /// `prefer`, `require`, `verify-ca`, `verify-full`).
    /// - Parameters:
    ///   - url: The database URL. Percent-encode special characters in the user name and password.
    ///   - logger: Receives the pool's background messages (connections opened, lost, retried).
    /// - Throws: ``StoreError/unavailable(_:)`` when the URL is malformed.
    public init(url: String, logger: Logger) throws {
        let parsed = try PostgresURL(url)
        self.url = parsed
        self.location = parsed.location
        self.client = PostgresClient(configuration: parsed.clientConfiguration, backgroundLogger: logger)
    }

    /// Opens and closes one connection, so that an unreachable server, a refused login or a missing database is
    /// reported as such (the pool only retries and then says its circuit breaker tripped).
    /// - Throws: ``PostgresConnectionFailure`` saying what failed, never the password.
    public func checkConnection(timeout: Duration = .seconds(10)) async throws(PostgresConnectionFailure) {
        let configuration: PostgresConnection.Configuration
        do {
            configuration = try url.connectionConfiguration()
        } catch {
            throw PostgresConnectionFailure(kind: .other, description: "\(location): cannot set up TLS: \(error)")
        }
        let connecting = Task { [queryLogger] in
            try await PostgresConnection.connect(
                on: MultiThreadedEventLoopGroup.singleton.next(), configuration: configuration, id: 0, logger: queryLogger)
        }
        let deadline = Task {
            try await Task.sleep(for: timeout)
            connecting.cancel()
        }
        defer { deadline.cancel() }
        do {
            try await connecting.value.close()
        } catch let error as PSQLError {
            throw PostgresConnectionFailure(error, url: url, location: location)
        } catch {
            throw PostgresConnectionFailure(kind: .unreachable, description: "\(location): no answer within \(timeout)")
        }
    }

    /// Runs the connection pool until the task is cancelled or a graceful shutdown begins.
    public func run() async throws {
        await client.run()
    }

    /// Creates or upgrades the schema; a no-op when it is current.
    ///
    /// Safe when several replicas start at once: the migrations run in one transaction holding a
    /// transaction-scoped advisory lock, and the applied versions are recorded in `comfygate_migrations`.
    public func migrate() async throws {
        try await perform {
            try await client.withTransaction(logger: queryLogger) { connection in
                try await connection.query(
                    "SELECT pg_advisory_xact_lock(\(PostgresSchema.migrationLockKey))",
                    logger: queryLogger
                )
                try await connection.query(
                    """
                    CREATE TABLE IF NOT EXISTS comfygate_migrations (
                        version integer PRIMARY KEY,
                        applied_at timestamptz NOT NULL DEFAULT now()
                    )
                    """,
                    logger: queryLogger
                )
                var applied = Set<Int>()
                let versions = try await connection.query(
                    "SELECT version FROM comfygate_migrations",
                    logger: queryLogger
                )
                for try await version in versions.decode(Int.self) { applied.insert(version) }
                for migration in PostgresSchema.migrations where !applied.contains(migration.version) {
                    for statement in migration.statements {
                        try await connection.query(PostgresQuery(unsafeSQL: statement), logger: queryLogger)
                    }
                    try await connection.query(
                        "INSERT INTO comfygate_migrations (version) VALUES (\(migration.version))",
                        logger: queryLogger
                    )
                }
            }
        }
    }

    // MARK: Users

    private static let userColumns = "id, name, role, password_hash, is_disabled, created_at"

    public func insertUser(_ user: User) async throws {
        try await perform(duplicate: "user '\(user.name)'") {
            try await client.query(
                """
                INSERT INTO users (id, name, role, password_hash, is_disabled, created_at)
                VALUES (\(user.id), \(user.name), \(user.role.rawValue), \(user.passwordHash), \(user.isDisabled),
                        \(user.createdAt))
                """
            )
        }
    }

    public func updateUser(_ user: User) async throws {
        try await perform(duplicate: "user '\(user.name)'") {
            let updated = try await client.query(
                """
                UPDATE users SET name = \(user.name), role = \(user.role.rawValue),
                    password_hash = \(user.passwordHash), is_disabled = \(user.isDisabled)
                WHERE id = \(user.id)
                RETURNING id
                """
            ).collect()
            if updated.isEmpty { throw StoreError.notFound("user '\(user.name)'") }
        }
    }

    public func user(id: String) async throws -> User? {
        try await users("SELECT \(unescaped: Self.userColumns) FROM users WHERE id = \(id)").first
    }

    public func user(named name: String) async throws -> User? {
        try await users("SELECT \(unescaped: Self.userColumns) FROM users WHERE lower(name) = lower(\(name))").first
    }

    public func users() async throws -> [User] {
        // `COLLATE "C"` gives the same order as SQLite's NOCASE, whatever the database's locale.
        try await users("SELECT \(unescaped: Self.userColumns) FROM users ORDER BY lower(name) COLLATE \"C\", id")
    }

    public func userCount() async throws -> Int {
        try await perform {
            var count = 0
            for try await value in try await client.query("SELECT count(*) FROM users").decode(Int.self) {
                count = value
            }
            return count
        }
    }

    private func users(_ query: PostgresQuery) async throws -> [User] {
        try await perform {
            var result: [User] = []
            let rows = try await client.query(query)
            for try await (id, name, roleName, passwordHash, isDisabled, createdAt) in rows.decode(
                (String, String, String, String?, Bool, Date).self
            ) {
                guard let role = Role(rawValue: roleName) else {
                    throw StoreError.unavailable("user '\(id)' has an unknown role '\(roleName)'")
                }
                result.append(
                    User(
                        id: id,
                        name: name,
                        role: role,
                        passwordHash: passwordHash,
                        isDisabled: isDisabled,
                        createdAt: createdAt
                    )
                )
            }
            return result
        }
    }

    // MARK: Tokens

    private static let tokenColumns =
        "id, user_id, name, verifier_kind, verifier, created_at, expires_at, last_used_at, revoked_at"

    public func insertToken(_ token: APIToken) async throws {
        let (kind, verifier) = token.verifier.columns
        try await perform(duplicate: "token '\(token.id)'") {
            try await client.query(
                """
                INSERT INTO api_tokens (\(unescaped: Self.tokenColumns))
                VALUES (\(token.id), \(token.userID), \(token.name), \(kind), \(verifier), \(token.createdAt),
                        \(token.expiresAt), \(token.lastUsedAt), \(token.revokedAt))
                """
            )
        }
    }

    public func token(id: String) async throws -> APIToken? {
        try await tokens("SELECT \(unescaped: Self.tokenColumns) FROM api_tokens WHERE id = \(id)").first
    }

    public func tokens(userID: String?) async throws -> [APIToken] {
        if let userID {
            try await tokens(
                """
                SELECT \(unescaped: Self.tokenColumns) FROM api_tokens WHERE user_id = \(userID)
                ORDER BY created_at, id
                """
            )
        } else {
            try await tokens("SELECT \(unescaped: Self.tokenColumns) FROM api_tokens ORDER BY created_at, id")
        }
    }

    public func usableBcryptTokens(at date: Date) async throws -> [APIToken] {
        try await tokens(
            """
            SELECT \(unescaped: Self.tokenColumns) FROM api_tokens
            WHERE verifier_kind = 'bcrypt' AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > \(date))
            ORDER BY created_at, id
            """
        )
    }

    public func revokeToken(id: String, at date: Date) async throws -> Bool {
        try await perform {
            let revoked = try await client.query(
                "UPDATE api_tokens SET revoked_at = \(date) WHERE id = \(id) AND revoked_at IS NULL RETURNING id"
            ).collect()
            return !revoked.isEmpty
        }
    }

    public func setTokenExpiry(id: String, expiresAt: Date?) async throws {
        try await perform {
            let updated = try await client.query(
                "UPDATE api_tokens SET expires_at = \(expiresAt) WHERE id = \(id) RETURNING id"
            ).collect()
            if updated.isEmpty { throw StoreError.notFound("token '\(id)'") }
        }
    }

    public func touchToken(id: String, at date: Date) async throws {
        try await perform {
            try await client.query("UPDATE api_tokens SET last_used_at = \(date) WHERE id = \(id)")
        }
    }

    private func tokens(_ query: PostgresQuery) async throws -> [APIToken] {
        try await perform {
            var result: [APIToken] = []
            let rows = try await client.query(query)
            for try await (id, userID, name, kind, value, createdAt, expiresAt, lastUsedAt, revokedAt) in rows.decode(
                (String, String, String, String, String, Date, Date?, Date?, Date?).self
            ) {
                let verifier: APIToken.Verifier
                switch kind {
                case "sha256": verifier = .sha256(value)
                case "bcrypt": verifier = .bcrypt(value)
                default: throw StoreError.unavailable("token '\(id)' has an unknown verifier kind '\(kind)'")
                }
                result.append(
                    APIToken(
                        id: id,
                        userID: userID,
                        name: name,
                        verifier: verifier,
                        createdAt: createdAt,
                        expiresAt: expiresAt,
                        lastUsedAt: lastUsedAt,
                        revokedAt: revokedAt
                    )
                )
            }
            return result
        }
    }

    // MARK: Sessions

    public func insertSession(_ session: Session) async throws {
        try await perform(duplicate: "session") {
            try await client.query(
                """
                INSERT INTO sessions (id_digest, user_id, created_at, last_seen_at, expires_at, client_address, user_agent)
                VALUES (\(session.idDigest), \(session.userID), \(session.createdAt), \(session.lastSeenAt),
                        \(session.expiresAt), \(session.clientAddress), \(session.userAgent))
                """
            )
        }
    }

    public func session(idDigest: String) async throws -> Session? {
        try await perform {
            let rows = try await client.query(
                """
                SELECT id_digest, user_id, created_at, last_seen_at, expires_at, client_address, user_agent FROM sessions
                WHERE id_digest = \(idDigest)
                """
            )
            return try await Self.sessions(rows).first
        }
    }

    public func sessions(userID: String) async throws -> [Session] {
        try await perform {
            let rows = try await client.query(
                """
                SELECT id_digest, user_id, created_at, last_seen_at, expires_at, client_address, user_agent FROM sessions
                WHERE user_id = \(userID) ORDER BY last_seen_at DESC, id_digest
                """
            )
            return try await Self.sessions(rows)
        }
    }

    private static func sessions(_ rows: PostgresRowSequence) async throws -> [Session] {
        var sessions: [Session] = []
        for try await (digest, userID, createdAt, lastSeenAt, expiresAt, clientAddress, userAgent) in rows.decode(
            (String, String, Date, Date, Date, String?, String?).self
        ) {
            sessions.append(Session(
                idDigest: digest, userID: userID, createdAt: createdAt, lastSeenAt: lastSeenAt, expiresAt: expiresAt,
                clientAddress: clientAddress, userAgent: userAgent))
        }
        return sessions
    }

    public func touchSession(idDigest: String, at date: Date) async throws {
        try await perform {
            try await client.query("UPDATE sessions SET last_seen_at = \(date) WHERE id_digest = \(idDigest)")
        }
    }

    public func deleteSession(idDigest: String) async throws {
        try await perform {
            try await client.query("DELETE FROM sessions WHERE id_digest = \(idDigest)")
        }
    }

    public func deleteSessions(userID: String) async throws {
        try await perform {
            try await client.query("DELETE FROM sessions WHERE user_id = \(userID)")
        }
    }

    public func deleteSessions(expiredBefore date: Date) async throws -> Int {
        try await perform {
            var count = 0
            let rows = try await client.query(
                """
                WITH deleted AS (DELETE FROM sessions WHERE expires_at < \(date) RETURNING 1)
                SELECT count(*) FROM deleted
                """
            )
            for try await value in rows.decode(Int.self) { count = value }
            return count
        }
    }

    // MARK: Audit

    public func appendAudit(_ event: AuditEvent) async throws {
        try await perform {
            try await client.query(
                """
                INSERT INTO audit_events (time, action, user_name, client_address, detail)
                VALUES (\(event.time), \(event.action), \(event.userName), \(event.clientAddress), \(event.detail))
                """
            )
        }
    }

    public func auditEvents(limit: Int) async throws -> [AuditEvent] {
        try await perform {
            var result: [AuditEvent] = []
            let rows = try await client.query(
                """
                SELECT time, action, user_name, client_address, detail FROM audit_events
                ORDER BY time DESC, seq DESC LIMIT \(max(0, limit))
                """
            )
            for try await (time, action, userName, clientAddress, detail) in rows.decode(
                (Date, String, String?, String?, String).self
            ) {
                result.append(
                    AuditEvent(
                        time: time, action: action, userName: userName, clientAddress: clientAddress, detail: detail)
                )
            }
            return result
        }
    }

    // MARK: Prompts

    private static let promptColumns = "prompt_id, user_id, created_at, status, updated_at"

    public func insertPrompt(_ record: PromptRecord) async throws {
        try await perform(duplicate: "prompt '\(record.promptID)'") {
            try await client.query(
                """
                INSERT INTO prompts (\(unescaped: Self.promptColumns))
                VALUES (\(record.promptID), \(record.userID), \(record.createdAt), \(record.status.rawValue),
                        \(record.updatedAt))
                """
            )
        }
    }

    public func prompt(id: String) async throws -> PromptRecord? {
        try await prompts("SELECT \(unescaped: Self.promptColumns) FROM prompts WHERE prompt_id = \(id)").first
    }

    public func prompts(userID: String?, limit: Int) async throws -> [PromptRecord] {
        // `COLLATE "C"` breaks ties in the same order as SQLite, whatever the database's locale.
        if let userID {
            try await prompts(
                """
                SELECT \(unescaped: Self.promptColumns) FROM prompts WHERE user_id = \(userID)
                ORDER BY created_at DESC, prompt_id COLLATE "C" DESC LIMIT \(max(0, limit))
                """
            )
        } else {
            try await prompts(
                """
                SELECT \(unescaped: Self.promptColumns) FROM prompts
                ORDER BY created_at DESC, prompt_id COLLATE "C" DESC LIMIT \(max(0, limit))
                """
            )
        }
    }

    public func prompts(createdAfter date: Date) async throws -> [PromptRecord] {
        try await prompts(
            """
            SELECT \(unescaped: Self.promptColumns) FROM prompts WHERE created_at > \(date)
            ORDER BY created_at, prompt_id COLLATE "C"
            """
        )
    }

    public func updatePromptStatus(id: String, status: PromptStatus, at date: Date) async throws -> Bool {
        try await perform {
            let updated = try await client.query(
                """
                UPDATE prompts SET status = \(status.rawValue), updated_at = \(date) WHERE prompt_id = \(id)
                RETURNING prompt_id
                """
            ).collect()
            return !updated.isEmpty
        }
    }

    private func prompts(_ query: PostgresQuery) async throws -> [PromptRecord] {
        try await perform {
            var result: [PromptRecord] = []
            let rows = try await client.query(query)
            for try await (promptID, userID, createdAt, statusName, updatedAt) in rows.decode(
                (String, String, Date, String, Date).self
            ) {
                guard let status = PromptStatus(rawValue: statusName) else {
                    throw StoreError.unavailable("prompt '\(promptID)' has an unknown status '\(statusName)'")
                }
                result.append(
                    PromptRecord(
                        promptID: promptID, userID: userID, createdAt: createdAt, status: status, updatedAt: updatedAt)
                )
            }
            return result
        }
    }

    // MARK: ComfyUI users

    public func comfyUserID(forUser userID: String) async throws -> String? {
        try await perform {
            let rows = try await client.query("SELECT comfy_user_id FROM comfy_users WHERE user_id = \(userID)")
            for try await comfyUserID in rows.decode(String.self) { return comfyUserID }
            return nil
        }
    }

    public func setComfyUserID(_ comfyUserID: String, forUser userID: String) async throws {
        try await perform {
            try await client.query(
                """
                INSERT INTO comfy_users (user_id, comfy_user_id) VALUES (\(userID), \(comfyUserID))
                ON CONFLICT (user_id) DO UPDATE SET comfy_user_id = excluded.comfy_user_id
                """
            )
        }
    }

    // MARK: Jobs

    private static let jobColumns = """
        id, user_id, source, state, workflow, extra_data, client_id, idempotency_key, request_digest, metadata,
        created_at, dispatched_at, started_at, completed_at, expires_at, backend, outputs, failure, gpu_seconds,
        history_entry, retryable, attempts
        """

    public func insertJob(_ job: Job) async throws {
        let outputs = try StoredJSON.encode(job.outputs)
        let failure = try job.failure.map { try StoredJSON.encode($0) }
        try await perform {
            // Either unique constraint may refuse the row; which one decides the error.
            let inserted = try await client.query(
                """
                INSERT INTO jobs (\(unescaped: Self.jobColumns))
                VALUES (\(job.id), \(job.userID), \(job.source.rawValue), \(job.state.rawValue), \(job.workflow),
                        \(job.extraData), \(job.clientID), \(job.idempotencyKey), \(job.requestDigest), \(job.metadata),
                        \(job.createdAt), \(job.dispatchedAt), \(job.startedAt), \(job.completedAt), \(job.expiresAt),
                        \(job.backend), \(outputs), \(failure), \(job.gpuSeconds), \(job.historyEntry),
                        \(job.retryable), \(job.attempts))
                ON CONFLICT DO NOTHING
                RETURNING id
                """
            ).collect()
            if inserted.isEmpty {
                let idTaken = try await !client.query("SELECT id FROM jobs WHERE id = \(job.id)").collect().isEmpty
                throw StoreError.duplicate(
                    idTaken ? "job '\(job.id)'" : "idempotency key '\(job.idempotencyKey ?? "")'"
                )
            }
        }
    }

    public func job(id: String) async throws -> Job? {
        try await jobs("SELECT \(unescaped: Self.jobColumns) FROM jobs WHERE id = \(id)").first
    }

    public func job(userID: String, idempotencyKey: String) async throws -> Job? {
        try await jobs(
            """
            SELECT \(unescaped: Self.jobColumns) FROM jobs
            WHERE user_id = \(userID) AND idempotency_key = \(idempotencyKey)
            """
        ).first
    }

    public func updateJob(_ job: Job, expecting expected: JobState) async throws -> Bool {
        let outputs = try StoredJSON.encode(job.outputs)
        let failure = try job.failure.map { try StoredJSON.encode($0) }
        return try await perform(duplicate: "idempotency key '\(job.idempotencyKey ?? "")'") {
            let updated = try await client.query(
                """
                UPDATE jobs SET user_id = \(job.userID), source = \(job.source.rawValue), state = \(job.state.rawValue),
                    workflow = \(job.workflow), extra_data = \(job.extraData), client_id = \(job.clientID),
                    idempotency_key = \(job.idempotencyKey), request_digest = \(job.requestDigest),
                    metadata = \(job.metadata), created_at = \(job.createdAt), dispatched_at = \(job.dispatchedAt),
                    started_at = \(job.startedAt), completed_at = \(job.completedAt), expires_at = \(job.expiresAt),
                    backend = \(job.backend), outputs = \(outputs), failure = \(failure),
                    gpu_seconds = \(job.gpuSeconds), history_entry = \(job.historyEntry),
                    retryable = \(job.retryable), attempts = \(job.attempts)
                WHERE id = \(job.id) AND state = \(expected.rawValue)
                RETURNING id
                """
            ).collect()
            return !updated.isEmpty
        }
    }

    public func jobs(userID: String?, states: Set<JobState>?, limit: Int, createdBefore: Date?) async throws -> [Job] {
        let stateNames = states.map(Self.names)
        // `COLLATE "C"` breaks ties in the same order as SQLite, whatever the database's locale.
        return try await jobs(
            """
            SELECT \(unescaped: Self.jobColumns) FROM jobs
            WHERE (\(userID)::text IS NULL OR user_id = \(userID))
                AND (\(stateNames)::text[] IS NULL OR state = ANY(\(stateNames)))
                AND (\(createdBefore)::timestamptz IS NULL OR created_at < \(createdBefore))
            ORDER BY created_at DESC, id COLLATE "C" DESC LIMIT \(max(0, limit))
            """
        )
    }

    /// One transaction: an advisory lock on the backend's name serializes the claims on that backend across
    /// replicas, so the count it then reads stays true until the claim commits.
    public func claimJob(id: String, backend: String, slots: Int, at date: Date) async throws -> Job? {
        let active = Self.names(JobState.active)
        return try await perform {
            try await client.withTransaction(logger: queryLogger) { connection -> Job? in
                try await connection.query(
                    "SELECT pg_advisory_xact_lock(\(PostgresSchema.claimLockClass), hashtext(\(backend)))",
                    logger: queryLogger
                )
                var running = 0
                for try await count in try await connection.query(
                    "SELECT count(*) FROM jobs WHERE backend = \(backend) AND state = ANY(\(active))",
                    logger: queryLogger
                ).decode(Int.self) {
                    running = count
                }
                guard running < slots else { return nil }
                let claimed = try await Self.jobs(
                    connection.query(
                        """
                        UPDATE jobs SET state = \(JobState.running.rawValue), backend = \(backend), dispatched_at = \(date),
                            attempts = attempts + 1
                        WHERE id = (
                            SELECT id FROM jobs WHERE id = \(id) AND state = \(JobState.queued.rawValue)
                            FOR UPDATE SKIP LOCKED
                        )
                        RETURNING \(unescaped: Self.jobColumns)
                        """,
                        logger: queryLogger
                    )
                )
                return claimed.first
            }
        }
    }

    public func activeJobCounts() async throws -> [String: Int] {
        try await perform {
            var result: [String: Int] = [:]
            let rows = try await client.query(
                """
                SELECT backend, count(*) FROM jobs
                WHERE state = ANY(\(Self.names(JobState.active))) AND backend IS NOT NULL GROUP BY backend
                """
            )
            for try await (backend, count) in rows.decode((String, Int).self) { result[backend] = count }
            return result
        }
    }

    public func queuedJobs() async throws -> [QueuedJob] {
        try await perform {
            var result: [QueuedJob] = []
            let rows = try await client.query(
                """
                SELECT id, user_id, created_at FROM jobs WHERE state = \(JobState.queued.rawValue)
                ORDER BY created_at, id COLLATE "C"
                """
            )
            for try await (id, userID, createdAt) in rows.decode((String, String, Date).self) {
                result.append(QueuedJob(id: id, userID: userID, createdAt: createdAt))
            }
            return result
        }
    }

    public func jobs(inStates states: Set<JobState>) async throws -> [Job] {
        try await jobs(
            """
            SELECT \(unescaped: Self.jobColumns) FROM jobs WHERE state = ANY(\(Self.names(states)))
            ORDER BY created_at, id COLLATE "C"
            """
        )
    }

    public func countJobs(userID: String, states: Set<JobState>?, createdAfter: Date?) async throws -> Int {
        let stateNames = states.map(Self.names)
        return try await perform {
            var count = 0
            let rows = try await client.query(
                """
                SELECT count(*) FROM jobs
                WHERE user_id = \(userID)
                    AND (\(stateNames)::text[] IS NULL OR state = ANY(\(stateNames)))
                    AND (\(createdAfter)::timestamptz IS NULL OR created_at > \(createdAfter))
                """
            )
            for try await value in rows.decode(Int.self) { count = value }
            return count
        }
    }

    public func gpuSeconds(userID: String?, completedAfter: Date) async throws -> [String: Double] {
        try await perform {
            var result: [String: Double] = [:]
            let rows = try await client.query(
                """
                SELECT user_id, sum(gpu_seconds) FROM jobs
                WHERE completed_at > \(completedAfter) AND (\(userID)::text IS NULL OR user_id = \(userID))
                GROUP BY user_id
                """
            )
            for try await (user, seconds) in rows.decode((String, Double).self) { result[user] = seconds }
            return result
        }
    }

    public func usage(from: Date, to: Date) async throws -> [UsageSummary] {
        try await perform {
            var result: [UsageSummary] = []
            let rows = try await client.query(
                """
                SELECT user_id, count(*), count(*) FILTER (WHERE state = ANY(\(Self.names(JobState.finished)))),
                    count(dispatched_at), sum(gpu_seconds),
                    coalesce(sum(extract(epoch FROM dispatched_at) - extract(epoch FROM created_at)), 0)
                        ::double precision
                FROM jobs WHERE created_at >= \(from) AND created_at < \(to)
                GROUP BY user_id ORDER BY user_id COLLATE "C"
                """
            )
            for try await (userID, jobs, finishedJobs, dispatchedJobs, gpuSeconds, waitSeconds) in rows.decode(
                (String, Int, Int, Int, Double, Double).self
            ) {
                result.append(
                    UsageSummary(
                        userID: userID,
                        jobs: jobs,
                        finishedJobs: finishedJobs,
                        dispatchedJobs: dispatchedJobs,
                        gpuSeconds: gpuSeconds,
                        waitSeconds: waitSeconds
                    )
                )
            }
            return result
        }
    }

    public func expireJobs(completedBefore date: Date) async throws -> [Job] {
        try await jobs(
            """
            WITH expired AS (
                UPDATE jobs SET state = \(JobState.expired.rawValue)
                WHERE state = ANY(\(Self.names(JobState.finished.subtracting([.expired])))) AND completed_at < \(date)
                RETURNING \(unescaped: Self.jobColumns)
            )
            SELECT \(unescaped: Self.jobColumns) FROM expired ORDER BY completed_at, id COLLATE "C"
            """
        )
    }

    public func deleteJobs(expiredBefore date: Date) async throws -> Int {
        try await perform {
            var count = 0
            let rows = try await client.query(
                """
                WITH deleted AS (
                    DELETE FROM jobs WHERE state = \(JobState.expired.rawValue) AND completed_at < \(date) RETURNING 1
                )
                SELECT count(*) FROM deleted
                """
            )
            for try await value in rows.decode(Int.self) { count = value }
            return count
        }
    }

    /// The raw values of `states`, for `state = ANY(…)`.
    private static func names(_ states: Set<JobState>) -> [String] {
        states.map(\.rawValue).sorted()
    }

    private func jobs(_ query: PostgresQuery) async throws -> [Job] {
        try await perform { try await Self.jobs(client.query(query)) }
    }

    private static func jobs(_ rows: PostgresRowSequence) async throws -> [Job] {
        var result: [Job] = []
        for try await (
            id, userID, sourceName, stateName, workflow, extraData, clientID, idempotencyKey, requestDigest,
            metadata, createdAt, dispatchedAt, startedAt, completedAt, expiresAt, backend, outputs, failure,
            gpuSeconds, historyEntry, retryable, attempts
        ) in rows.decode(
            (
                String, String, String, String, String, String, String?, String?, String?, String?, Date, Date?,
                Date?, Date?, Date?, String?, String, String?, Double, String?, Bool, Int
            ).self
        ) {
            guard let source = JobSource(rawValue: sourceName) else {
                throw StoreError.unavailable("job '\(id)' has an unknown source '\(sourceName)'")
            }
            guard let state = JobState(rawValue: stateName) else {
                throw StoreError.unavailable("job '\(id)' has an unknown state '\(stateName)'")
            }
            result.append(
                Job(
                    id: id,
                    userID: userID,
                    source: source,
                    state: state,
                    workflow: workflow,
                    extraData: extraData,
                    clientID: clientID,
                    idempotencyKey: idempotencyKey,
                    requestDigest: requestDigest,
                    metadata: metadata,
                    createdAt: createdAt,
                    dispatchedAt: dispatchedAt,
                    startedAt: startedAt,
                    completedAt: completedAt,
                    expiresAt: expiresAt,
                    backend: backend,
                    outputs: try StoredJSON.decode([JobOutput].self, from: outputs, of: "job '\(id)'"),
                    failure: try failure.map {
                        try StoredJSON.decode(JobFailure.self, from: $0, of: "job '\(id)'")
                    },
                    gpuSeconds: gpuSeconds,
                    historyEntry: historyEntry,
                    retryable: retryable,
                    attempts: attempts
                )
            )
        }
        return result
    }

    // MARK: Assets

    private static let assetColumns =
        "id, user_id, hash, size_bytes, content_type, name, created_at, job_id, expires_at"

    public func insertAsset(_ asset: Asset) async throws {
        try await perform(duplicate: "asset '\(asset.id)'") {
            try await client.query(
                """
                INSERT INTO assets (\(unescaped: Self.assetColumns))
                VALUES (\(asset.id), \(asset.userID), \(asset.hash), \(asset.sizeBytes), \(asset.contentType),
                        \(asset.name), \(asset.createdAt), \(asset.jobID), \(asset.expiresAt))
                """
            )
        }
    }

    public func asset(id: String) async throws -> Asset? {
        try await assets("SELECT \(unescaped: Self.assetColumns) FROM assets WHERE id = \(id)").first
    }

    public func assets(userID: String, hash: String) async throws -> [Asset] {
        try await assets(
            """
            SELECT \(unescaped: Self.assetColumns) FROM assets WHERE user_id = \(userID) AND hash = \(hash)
            ORDER BY created_at, id COLLATE "C"
            """
        )
    }

    public func assets(jobID: String) async throws -> [Asset] {
        try await assets(
            """
            SELECT \(unescaped: Self.assetColumns) FROM assets WHERE job_id = \(jobID)
            ORDER BY created_at, id COLLATE "C"
            """
        )
    }

    public func deleteJob(id: String) async throws -> Bool {
        try await perform {
            let deleted = try await client.query("DELETE FROM jobs WHERE id = \(id) RETURNING id").collect()
            return !deleted.isEmpty
        }
    }

    public func deleteAsset(id: String) async throws -> Bool {
        try await perform {
            let deleted = try await client.query("DELETE FROM assets WHERE id = \(id) RETURNING id").collect()
            return !deleted.isEmpty
        }
    }

    public func countAssets(hash: String) async throws -> Int {
        try await perform {
            var count = 0
            for try await value in try await client.query("SELECT count(*) FROM assets WHERE hash = \(hash)")
                .decode(Int.self)
            {
                count = value
            }
            return count
        }
    }

    private func assets(_ query: PostgresQuery) async throws -> [Asset] {
        try await perform {
            var result: [Asset] = []
            let rows = try await client.query(query)
            for try await (id, userID, hash, sizeBytes, contentType, name, createdAt, jobID, expiresAt) in rows.decode(
                (String, String, String?, Int, String, String, Date, String?, Date?).self
            ) {
                result.append(
                    Asset(
                        id: id,
                        userID: userID,
                        hash: hash,
                        sizeBytes: sizeBytes,
                        contentType: contentType,
                        name: name,
                        createdAt: createdAt,
                        jobID: jobID,
                        expiresAt: expiresAt
                    )
                )
            }
            return result
        }
    }

    // MARK: Quotas

    private static let quotaColumns =
        "user_id, max_waiting_jobs, jobs_per_day, gpu_seconds_per_day, max_image_area, weight"

    public func userQuota(userID: String) async throws -> UserQuota? {
        try await userQuotas("SELECT \(unescaped: Self.quotaColumns) FROM user_quotas WHERE user_id = \(userID)").first
    }

    public func setUserQuota(_ quota: UserQuota) async throws {
        let limits = quota.limits
        try await perform {
            try await client.query(
                """
                INSERT INTO user_quotas (\(unescaped: Self.quotaColumns))
                VALUES (\(quota.userID), \(limits.maxWaitingJobs), \(limits.jobsPerDay), \(limits.gpuSecondsPerDay),
                        \(limits.maxImageArea), \(quota.weight))
                ON CONFLICT (user_id) DO UPDATE SET
                    max_waiting_jobs = excluded.max_waiting_jobs, jobs_per_day = excluded.jobs_per_day,
                    gpu_seconds_per_day = excluded.gpu_seconds_per_day, max_image_area = excluded.max_image_area,
                    weight = excluded.weight
                """
            )
        }
    }

    public func deleteUserQuota(userID: String) async throws {
        try await perform {
            try await client.query("DELETE FROM user_quotas WHERE user_id = \(userID)")
        }
    }

    public func userQuotas() async throws -> [UserQuota] {
        try await userQuotas("SELECT \(unescaped: Self.quotaColumns) FROM user_quotas ORDER BY user_id COLLATE \"C\"")
    }

    private func userQuotas(_ query: PostgresQuery) async throws -> [UserQuota] {
        try await perform {
            var result: [UserQuota] = []
            let rows = try await client.query(query)
            for try await (userID, maxWaitingJobs, jobsPerDay, gpuSecondsPerDay, maxImageArea, weight) in rows.decode(
                (String, Int?, Int?, Double?, Int?, Double).self
            ) {
                let limits = QuotaLimits(
                    maxWaitingJobs: maxWaitingJobs,
                    jobsPerDay: jobsPerDay,
                    gpuSecondsPerDay: gpuSecondsPerDay,
                    maxImageArea: maxImageArea
                )
                result.append(UserQuota(userID: userID, limits: limits, weight: weight))
            }
            return result
        }
    }

    // MARK: Login failures

    public func loginFailures(keys: [String]) async throws -> [LoginFailureRecord] {
        try await perform {
            try await Self.loginFailures(
                client.query(
                    """
                    SELECT key, failures, last_failure_at, locked_until FROM login_failures WHERE key = ANY(\(keys))
                    ORDER BY key COLLATE "C"
                    """
                )
            )
        }
    }

    /// One transaction: rows for new keys are inserted first, so that every key's row can be locked, in key order;
    /// other transactions wait for the lock and never see a row before it is counted.
    public func recordLoginFailure(policies: [String: BackoffPolicy], at date: Date) async throws -> [LoginFailureRecord] {
        let keys = policies.keys.sorted()
        let forgotten = LoginFailureRecord.latestForgottenLockoutEnd(at: date, policies: policies.values)
        return try await perform {
            try await client.withTransaction(logger: queryLogger) { connection -> [LoginFailureRecord] in
                try await connection.query(
                    """
                    INSERT INTO login_failures (key, failures, last_failure_at, locked_until)
                    SELECT key, 0, \(date), \(date) FROM unnest(\(keys)::text[]) AS key
                    ON CONFLICT (key) DO NOTHING
                    """,
                    logger: queryLogger
                )
                let previous = try await Self.loginFailures(
                    connection.query(
                        """
                        SELECT key, failures, last_failure_at, locked_until FROM login_failures WHERE key = ANY(\(keys))
                        ORDER BY key COLLATE "C" FOR UPDATE
                        """,
                        logger: queryLogger
                    )
                )
                var counted: [LoginFailureRecord] = []
                for (key, policy) in policies.sorted(by: { $0.key < $1.key }) {
                    let record = LoginFailureRecord.counting(
                        failureAt: date, of: key, after: previous.first { $0.key == key }, policy: policy)
                    try await connection.query(
                        """
                        UPDATE login_failures SET failures = \(record.failures), last_failure_at = \(record.lastFailureAt),
                            locked_until = \(record.lockedUntil)
                        WHERE key = \(key)
                        """,
                        logger: queryLogger
                    )
                    counted.append(record)
                }
                if let forgotten {
                    // Rows another transaction holds are left for a later sweep: this one waits for nothing more.
                    try await connection.query(
                        """
                        DELETE FROM login_failures WHERE key IN (
                            SELECT key FROM login_failures WHERE locked_until <= \(forgotten) FOR UPDATE SKIP LOCKED
                        )
                        """,
                        logger: queryLogger
                    )
                }
                return counted
            }
        }
    }

    public func deleteLoginFailures(key: String) async throws {
        try await perform {
            try await client.query("DELETE FROM login_failures WHERE key = \(key)")
        }
    }

    private static func loginFailures(_ rows: PostgresRowSequence) async throws -> [LoginFailureRecord] {
        var result: [LoginFailureRecord] = []
        for try await (key, failures, lastFailureAt, lockedUntil) in rows.decode((String, Int, Date, Date).self) {
            result.append(
                LoginFailureRecord(key: key, failures: failures, lastFailureAt: lastFailureAt, lockedUntil: lockedUntil))
        }
        return result
    }

    // MARK: Backends

    public func backendControls() async throws -> [BackendControl] {
        try await perform {
            var result: [BackendControl] = []
            let rows = try await client.query(
                "SELECT name, drained, changed_at, changed_by FROM backend_controls ORDER BY name COLLATE \"C\""
            )
            for try await (name, drained, changedAt, changedBy) in rows.decode((String, Bool, Date, String?).self) {
                result.append(BackendControl(name: name, drained: drained, changedAt: changedAt, changedBy: changedBy))
            }
            return result
        }
    }

    public func setBackendControl(_ control: BackendControl) async throws {
        try await perform {
            try await client.query(
                """
                INSERT INTO backend_controls (name, drained, changed_at, changed_by)
                VALUES (\(control.name), \(control.drained), \(control.changedAt), \(control.changedBy))
                ON CONFLICT (name) DO UPDATE SET
                    drained = excluded.drained, changed_at = excluded.changed_at, changed_by = excluded.changed_by
                """
            )
        }
    }

    public func recordBackendStatus(_ record: BackendStatusRecord) async throws {
        try await perform {
            try await client.query(
                """
                INSERT INTO backend_statuses (name, replica, status, observed_at)
                VALUES (\(record.name), \(record.replica), \(record.status), \(record.observedAt))
                ON CONFLICT (name, replica) DO UPDATE SET status = excluded.status, observed_at = excluded.observed_at
                """
            )
        }
    }

    public func backendStatuses() async throws -> [BackendStatusRecord] {
        try await perform {
            var result: [BackendStatusRecord] = []
            let rows = try await client.query(
                """
                SELECT name, replica, status, observed_at FROM backend_statuses
                ORDER BY name COLLATE "C", replica COLLATE "C"
                """
            )
            for try await (name, replica, status, observedAt) in rows.decode((String, String, String, Date).self) {
                result.append(BackendStatusRecord(name: name, replica: replica, status: status, observedAt: observedAt))
            }
            return result
        }
    }

    // MARK: Errors

    /// A write that matches no row: refused by a read-only server or transaction, a lost connection or a role
    /// without rights, like any real write.
    public func checkWritable() async throws {
        try await perform {
            try await client.query("DELETE FROM audit_events WHERE false")
        }
    }

    /// Runs `body`, turning driver errors into ``StoreError``.
    ///
    /// - Parameter duplicate: What a unique-constraint violation means, e.g. `user 'alice'`.
    @discardableResult
    private func perform<T>(duplicate: String? = nil, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            throw storeError(error, duplicate: duplicate)
        }
    }

    private func storeError(_ error: any Error, duplicate: String?) -> any Error {
        switch error {
        case is StoreError, is CancellationError:
            return error
        case let error as PostgresTransactionError:
            let cause = error.beginError ?? error.closureError ?? error.commitError ?? error.rollbackError
            return cause.map { storeError($0, duplicate: duplicate) }
                ?? StoreError.unavailable("\(location): transaction failed")
        case let error as PSQLError:
            if error.code == .server, error.serverInfo?[.sqlState] == "23505", let duplicate {
                return StoreError.duplicate(duplicate)
            }
            return StoreError.unavailable("\(location): \(Self.reason(error))")
        case is PostgresDecodingError:
            return StoreError.unavailable("\(location): a stored value has an unexpected type")
        default:
            return StoreError.unavailable("\(location): \(error)")
        }
    }

    /// What went wrong, in words that cannot contain bound values or the password.
    ///
    /// `PSQLError`'s own description is deliberately generic; its debug description may quote queries.
    private static func reason(_ error: PSQLError) -> String {
        switch error.code {
        case .server:
            let message = error.serverInfo?[.message] ?? "server error"
            let state = error.serverInfo?[.sqlState].map { " (SQLSTATE \($0))" } ?? ""
            return message + state
        case .sslUnsupported:
            return "the server does not support TLS; add ?sslmode=disable to the URL only on a trusted network"
        case .connectionError:
            return "cannot connect" + (error.underlying.map { ": \($0)" } ?? "")
        default:
            return "\(error.code)"
        }
    }
}

extension APIToken.Verifier {
    /// The `verifier_kind` and `verifier` column values.
    fileprivate var columns: (kind: String, value: String) {
        switch self {
        case .sha256(let hex): ("sha256", hex)
        case .bcrypt(let hash): ("bcrypt", hash)
        }
    }
}

/// Why a first connection to PostgreSQL failed, in the words an operator needs.
public struct PostgresConnectionFailure: Error, CustomStringConvertible {
    public enum Kind: Sendable {
        /// Nothing answers at the host and port.
        case unreachable
        /// The server refused the user name or password.
        case loginRefused
        /// The database named in the URL does not exist.
        case noDatabase
        case other
    }

    public let kind: Kind
    public let description: String

    init(kind: Kind, description: String) {
        self.kind = kind
        self.description = description
    }

    init(_ error: PSQLError, url: PostgresURL, location: String) {
        switch (error.code, error.serverInfo?[.sqlState]) {
        case (.server, "28P01"?), (.server, "28000"?):
            kind = .loginRefused
            description = "\(location): the server refused the login of user '\(url.username)' ("
                + (error.serverInfo?[.message] ?? "authentication failed") + "); check the user name and password in database_url"
        case (.server, "3D000"?):
            kind = .noDatabase
            description = "\(location): the database '\(url.database)' does not exist; create it (createdb \(url.database)) "
                + "or name another one in database_url"
        case (.connectionError, _), (.uncleanShutdown, _):
            kind = .unreachable
            let underlying = error.underlying.map { "\($0)".lowercased() } ?? ""
            let cause = [
                ("connection refused", "connection refused"), ("timed out", "timed out"), ("no route", "no route to host"),
                ("resolve", "the host name does not resolve"), ("name or service", "the host name does not resolve"),
            ].first { underlying.contains($0.0) }?.1
            description = "\(location): nothing accepts connections there" + (cause.map { " (\($0))" } ?? "")
                + "; is PostgreSQL running, and do the host and port in database_url match?"
        default:
            kind = .other
            description = "\(location): \(error.code)" + (error.serverInfo?[.message].map { ": \($0)" } ?? "")
        }
    }
}

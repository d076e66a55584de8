public import ComfyGateCore
public import Foundation
import GRDB

#if canImport(Darwin)
    import Darwin
#elseif canImport(Glibc)
    import Glibc
#endif

/// The embedded store: one SQLite file, shared safely by the server and the CLI.
///
/// Files are opened as a GRDB `DatabasePool` in WAL mode, so readers never wait for the writer; tests use
/// ``inMemory()``. Writes take SQLite's write lock up front and wait up to five seconds for another
/// process holding it. User names are unique regardless of ASCII case; lookups by name ignore case too.
public struct SQLiteStore: GatewayStore {
    private let writer: any DatabaseWriter
    /// The file path, or `:memory:`, for error messages.
    private let location: String

    /// How long a write waits for another connection or process holding the write lock.
    static let busyTimeout: TimeInterval = 5

    /// Opens (creating it with mode 0600 if needed) and migrates the database file at `path`.
    ///
    /// - Throws: ``StoreError/unavailable(_:)`` naming the path when the file cannot be created, opened or
    ///   migrated.
    public init(path: String) throws {
        let pool: DatabasePool
        do {
            try Self.createPrivateFile(atPath: path)
            pool = try DatabasePool(path: path, configuration: Self.configuration())
            try SQLiteSchema.migrate(pool)
        } catch let error as DatabaseError {
            throw StoreError.unavailable("cannot open \(path): \(Self.reason(error))")
        }
        self.init(writer: pool, location: path)
    }

    /// A fresh, migrated database that lives in memory only; for tests.
    public static func inMemory() throws -> SQLiteStore {
        let queue = try DatabaseQueue(configuration: configuration())
        try SQLiteSchema.migrate(queue)
        return SQLiteStore(writer: queue, location: ":memory:")
    }

    private init(writer: any DatabaseWriter, location: String) {
        self.writer = writer
        self.location = location
    }

    private static func configuration() -> Configuration {
        var configuration = Configuration()
        configuration.label = "ComfyGate"
        configuration.busyMode = .timeout(busyTimeout)
        return configuration
    }

    /// Creates an empty file readable by its owner only, unless the file already exists.
    ///
    /// SQLite gives the `-wal` and `-shm` files it creates the same mode as the database file, whatever
    /// the umask.
    private static func createPrivateFile(atPath path: String) throws {
        let descriptor = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
        if descriptor < 0 {
            let code = errno
            if code == EEXIST { return }
            throw StoreError.unavailable("cannot open \(path): \(String(cString: strerror(code)))")
        }
        defer { close(descriptor) }
        // The umask may have removed bits from 0600; set the mode exactly.
        if fchmod(descriptor, 0o600) != 0 {
            throw StoreError.unavailable("cannot open \(path): \(String(cString: strerror(errno)))")
        }
    }

    private static func reason(_ error: DatabaseError) -> String {
        error.message ?? error.resultCode.description
    }

    // MARK: Health

    /// Takes the write lock in an empty `IMMEDIATE` transaction: a read-only file or directory fails here.
    public func checkWritable() async throws {
        try await write { _ in }
    }

    // MARK: Access

    /// Runs `body` in an `IMMEDIATE` transaction and maps SQLite errors to ``StoreError``.
    ///
    /// - Parameter duplicate: What a unique-constraint violation means, e.g. `user 'alice'`.
    private func write<T: Sendable>(
        duplicate: String? = nil,
        _ body: @escaping @Sendable (Database) throws -> T
    ) async throws -> T {
        do {
            return try await writer.writeWithoutTransaction { db in
                var result: T?
                try db.inTransaction(.immediate) {
                    result = try body(db)
                    return .commit
                }
                guard let result else { preconditionFailure("committed transaction without a result") }
                return result
            }
        } catch let error as DatabaseError {
            if let duplicate,
                error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE
                    || error.extendedResultCode == .SQLITE_CONSTRAINT_PRIMARYKEY
            {
                throw StoreError.duplicate(duplicate)
            }
            throw StoreError.unavailable("\(location): \(Self.reason(error))")
        }
    }

    private func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await writer.read(body)
        } catch let error as DatabaseError {
            throw StoreError.unavailable("\(location): \(Self.reason(error))")
        }
    }

    // MARK: Users

    public func insertUser(_ user: User) async throws {
        try await write(duplicate: "user '\(user.name)'") { db in
            try db.execute(
                sql: """
                    INSERT INTO users (id, name, role, password_hash, is_disabled, created_at)
                    VALUES (?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    user.id, user.name, user.role.rawValue, user.passwordHash, user.isDisabled,
                    user.createdAt.timeIntervalSince1970,
                ]
            )
        }
    }

    public func updateUser(_ user: User) async throws {
        try await write(duplicate: "user '\(user.name)'") { db in
            try db.execute(
                sql: "UPDATE users SET name = ?, role = ?, password_hash = ?, is_disabled = ? WHERE id = ?",
                arguments: [user.name, user.role.rawValue, user.passwordHash, user.isDisabled, user.id]
            )
            if db.changesCount == 0 { throw StoreError.notFound("user '\(user.name)'") }
        }
    }

    public func user(id: String) async throws -> User? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM users WHERE id = ?", arguments: [id]).map(User.init(row:))
        }
    }

    public func user(named name: String) async throws -> User? {
        try await read { db in
            // The column's NOCASE collation makes this comparison ignore ASCII case.
            try Row.fetchOne(db, sql: "SELECT * FROM users WHERE name = ?", arguments: [name]).map(User.init(row:))
        }
    }

    public func users() async throws -> [User] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM users ORDER BY name, id").map(User.init(row:))
        }
    }

    public func userCount() async throws -> Int {
        try await read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM users") ?? 0 }
    }

    // MARK: Tokens

    public func insertToken(_ token: APIToken) async throws {
        let (kind, verifier) = token.verifier.columns
        try await write(duplicate: "token '\(token.id)'") { db in
            try db.execute(
                sql: """
                    INSERT INTO api_tokens
                        (id, user_id, name, verifier_kind, verifier, created_at, expires_at, last_used_at, revoked_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    token.id, token.userID, token.name, kind, verifier, token.createdAt.timeIntervalSince1970,
                    token.expiresAt?.timeIntervalSince1970, token.lastUsedAt?.timeIntervalSince1970,
                    token.revokedAt?.timeIntervalSince1970,
                ]
            )
        }
    }

    public func token(id: String) async throws -> APIToken? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM api_tokens WHERE id = ?", arguments: [id])
                .map(APIToken.init(row:))
        }
    }

    public func tokens(userID: String?) async throws -> [APIToken] {
        try await read { db in
            let rows =
                if let userID {
                    try Row.fetchAll(
                        db,
                        sql: "SELECT * FROM api_tokens WHERE user_id = ? ORDER BY created_at, id",
                        arguments: [userID]
                    )
                } else {
                    try Row.fetchAll(db, sql: "SELECT * FROM api_tokens ORDER BY created_at, id")
                }
            return try rows.map(APIToken.init(row:))
        }
    }

    public func usableBcryptTokens(at date: Date) async throws -> [APIToken] {
        try await read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM api_tokens
                    WHERE verifier_kind = 'bcrypt' AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)
                    ORDER BY created_at, id
                    """,
                arguments: [date.timeIntervalSince1970]
            ).map(APIToken.init(row:))
        }
    }

    public func revokeToken(id: String, at date: Date) async throws -> Bool {
        try await write { db in
            try db.execute(
                sql: "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                arguments: [date.timeIntervalSince1970, id]
            )
            return db.changesCount > 0
        }
    }

    public func setTokenExpiry(id: String, expiresAt: Date?) async throws {
        try await write { db in
            try db.execute(
                sql: "UPDATE api_tokens SET expires_at = ? WHERE id = ?",
                arguments: [expiresAt?.timeIntervalSince1970, id]
            )
            if db.changesCount == 0 { throw StoreError.notFound("token '\(id)'") }
        }
    }

    public func touchToken(id: String, at date: Date) async throws {
        try await write { db in
            try db.execute(
                sql: "UPDATE api_tokens SET last_used_at = ? WHERE id = ?",
                arguments: [date.timeIntervalSince1970, id]
            )
        }
    }

    // MARK: Sessions

    public func insertSession(_ session: Session) async throws {
        try await write(duplicate: "session") { db in
            try db.execute(
                sql: """
                    INSERT INTO sessions (id_digest, user_id, created_at, last_seen_at, expires_at, client_address, user_agent)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    session.idDigest, session.userID, session.createdAt.timeIntervalSince1970,
                    session.lastSeenAt.timeIntervalSince1970, session.expiresAt.timeIntervalSince1970, session.clientAddress,
                    session.userAgent,
                ]
            )
        }
    }

    public func session(idDigest: String) async throws -> Session? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM sessions WHERE id_digest = ?", arguments: [idDigest])
                .map(Session.init(row:))
        }
    }

    public func touchSession(idDigest: String, at date: Date) async throws {
        try await write { db in
            try db.execute(
                sql: "UPDATE sessions SET last_seen_at = ? WHERE id_digest = ?",
                arguments: [date.timeIntervalSince1970, idDigest]
            )
        }
    }

    public func deleteSession(idDigest: String) async throws {
        try await write { db in
            try db.execute(sql: "DELETE FROM sessions WHERE id_digest = ?", arguments: [idDigest])
        }
    }

    public func sessions(userID: String) async throws -> [Session] {
        try await read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM sessions WHERE user_id = ? ORDER BY last_seen_at DESC, id_digest", arguments: [userID]
            ).map(Session.init(row:))
        }
    }

    public func deleteSessions(userID: String) async throws {
        try await write { db in
            try db.execute(sql: "DELETE FROM sessions WHERE user_id = ?", arguments: [userID])
        }
    }

    public func deleteSessions(expiredBefore date: Date) async throws -> Int {
        try await write { db in
            try db.execute(
                sql: "DELETE FROM sessions WHERE expires_at < ?",
                arguments: [date.timeIntervalSince1970]
            )
            return db.changesCount
        }
    }

    // MARK: Audit

    public func appendAudit(_ event: AuditEvent) async throws {
        try await write { db in
            try db.execute(
                sql: """
                    INSERT INTO audit_events (time, action, user_name, client_address, detail)
                    VALUES (?, ?, ?, ?, ?)
                    """,
                arguments: [
                    event.time.timeIntervalSince1970, event.action, event.userName, event.clientAddress,
                    event.detail,
                ]
            )
        }
    }

    public func auditEvents(limit: Int) async throws -> [AuditEvent] {
        try await read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT * FROM audit_events ORDER BY time DESC, seq DESC LIMIT ?",
                // SQLite treats a negative limit as "no limit".
                arguments: [max(0, limit)]
            ).map(AuditEvent.init(row:))
        }
    }

    // MARK: Prompts

    public func insertPrompt(_ record: PromptRecord) async throws {
        try await write(duplicate: "prompt '\(record.promptID)'") { db in
            try db.execute(
                sql: """
                    INSERT INTO prompts (prompt_id, user_id, created_at, status, updated_at)
                    VALUES (?, ?, ?, ?, ?)
                    """,
                arguments: [
                    record.promptID, record.userID, record.createdAt.timeIntervalSince1970, record.status.rawValue,
                    record.updatedAt.timeIntervalSince1970,
                ]
            )
        }
    }

    public func prompt(id: String) async throws -> PromptRecord? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM prompts WHERE prompt_id = ?", arguments: [id])
                .map(PromptRecord.init(row:))
        }
    }

    public func prompts(userID: String?, limit: Int) async throws -> [PromptRecord] {
        try await read { db in
            // SQLite treats a negative limit as "no limit".
            let limit = max(0, limit)
            let rows =
                if let userID {
                    try Row.fetchAll(
                        db,
                        sql: "SELECT * FROM prompts WHERE user_id = ? ORDER BY created_at DESC, prompt_id DESC LIMIT ?",
                        arguments: [userID, limit]
                    )
                } else {
                    try Row.fetchAll(
                        db,
                        sql: "SELECT * FROM prompts ORDER BY created_at DESC, prompt_id DESC LIMIT ?",
                        arguments: [limit]
                    )
                }
            return try rows.map(PromptRecord.init(row:))
        }
    }

    public func prompts(createdAfter date: Date) async throws -> [PromptRecord] {
        try await read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT * FROM prompts WHERE created_at > ? ORDER BY created_at, prompt_id",
                arguments: [date.timeIntervalSince1970]
            ).map(PromptRecord.init(row:))
        }
    }

    public func updatePromptStatus(id: String, status: PromptStatus, at date: Date) async throws -> Bool {
        try await write { db in
            try db.execute(
                sql: "UPDATE prompts SET status = ?, updated_at = ? WHERE prompt_id = ?",
                arguments: [status.rawValue, date.timeIntervalSince1970, id]
            )
            return db.changesCount > 0
        }
    }

    // MARK: ComfyUI users

    public func comfyUserID(forUser userID: String) async throws -> String? {
        try await read { db in
            try String.fetchOne(db, sql: "SELECT comfy_user_id FROM comfy_users WHERE user_id = ?", arguments: [userID])
        }
    }

    public func setComfyUserID(_ comfyUserID: String, forUser userID: String) async throws {
        try await write { db in
            try db.execute(
                sql: """
                    INSERT INTO comfy_users (user_id, comfy_user_id) VALUES (?, ?)
                    ON CONFLICT (user_id) DO UPDATE SET comfy_user_id = excluded.comfy_user_id
                    """,
                arguments: [userID, comfyUserID]
            )
        }
    }

    // MARK: Jobs

    /// The columns of `jobs`, in the order of `Job.columnValues()`; `id` comes first.
    private static let jobColumns = [
        "id", "user_id", "source", "state", "workflow", "extra_data", "client_id", "idempotency_key",
        "request_digest", "metadata", "created_at", "dispatched_at", "started_at", "completed_at", "expires_at",
        "backend", "outputs", "failure", "gpu_seconds", "history_entry", "retryable", "attempts",
    ]

    public func insertJob(_ job: Job) async throws {
        let values = try job.columnValues()
        try await write { db in
            // Either unique constraint may refuse the row; which one decides the error.
            try db.execute(
                sql: """
                    INSERT INTO jobs (\(Self.jobColumns.joined(separator: ", ")))
                    VALUES (\(Self.placeholders(values.count)))
                    ON CONFLICT DO NOTHING
                    """,
                arguments: StatementArguments(values)
            )
            if db.changesCount == 0 {
                let idTaken = try Bool.fetchOne(
                    db, sql: "SELECT EXISTS (SELECT 1 FROM jobs WHERE id = ?)", arguments: [job.id]
                )
                throw StoreError.duplicate(
                    idTaken == true ? "job '\(job.id)'" : "idempotency key '\(job.idempotencyKey ?? "")'"
                )
            }
        }
    }

    public func job(id: String) async throws -> Job? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM jobs WHERE id = ?", arguments: [id]).map(Job.init(row:))
        }
    }

    public func job(userID: String, idempotencyKey: String) async throws -> Job? {
        try await read { db in
            try Row.fetchOne(
                db,
                sql: "SELECT * FROM jobs WHERE user_id = ? AND idempotency_key = ?",
                arguments: [userID, idempotencyKey]
            ).map(Job.init(row:))
        }
    }

    public func updateJob(_ job: Job, expecting expected: JobState) async throws -> Bool {
        let values = try job.columnValues()
        return try await write(duplicate: "idempotency key '\(job.idempotencyKey ?? "")'") { db in
            try db.execute(
                sql: """
                    UPDATE jobs SET \(Self.jobColumns.dropFirst().map { "\($0) = ?" }.joined(separator: ", "))
                    WHERE id = ? AND state = ?
                    """,
                arguments: StatementArguments(values.dropFirst()) + [job.id, expected.rawValue]
            )
            return db.changesCount > 0
        }
    }

    public func jobs(userID: String?, states: Set<JobState>?, limit: Int, createdBefore: Date?) async throws -> [Job] {
        try await read { db in
            let filter = Self.jobFilter(userID: userID, states: states, createdBefore: createdBefore)
            return try Row.fetchAll(
                db,
                sql: "SELECT * FROM jobs \(filter.sql) ORDER BY created_at DESC, id DESC LIMIT ?",
                // SQLite treats a negative limit as "no limit".
                arguments: filter.arguments + [max(0, limit)]
            ).map(Job.init(row:))
        }
    }

    /// Counts and updates in one `IMMEDIATE` transaction: SQLite's write lock serializes claims of every process.
    public func claimJob(id: String, backend: String, slots: Int, at date: Date) async throws -> Job? {
        try await write { db in
            let active = Self.jobFilter(states: JobState.active)
            let running =
                try Int.fetchOne(
                    db, sql: "SELECT COUNT(*) FROM jobs \(active.sql) AND backend = ?", arguments: active.arguments + [backend]
                ) ?? 0
            guard running < slots else { return nil }
            try db.execute(
                sql: """
                    UPDATE jobs SET state = ?, backend = ?, dispatched_at = ?, attempts = attempts + 1
                    WHERE id = ? AND state = ?
                    """,
                arguments: [
                    JobState.running.rawValue, backend, date.timeIntervalSince1970, id, JobState.queued.rawValue,
                ]
            )
            guard db.changesCount > 0 else { return nil }
            return try Row.fetchOne(db, sql: "SELECT * FROM jobs WHERE id = ?", arguments: [id]).map(Job.init(row:))
        }
    }

    public func activeJobCounts() async throws -> [String: Int] {
        try await read { db in
            let active = Self.jobFilter(states: JobState.active)
            let rows = try Row.fetchAll(
                db,
                sql: "SELECT backend, COUNT(*) AS jobs FROM jobs \(active.sql) AND backend IS NOT NULL GROUP BY backend",
                arguments: active.arguments
            )
            return Dictionary(uniqueKeysWithValues: rows.map { ($0["backend"], $0["jobs"]) })
        }
    }

    public func queuedJobs() async throws -> [QueuedJob] {
        try await read { db in
            try Row.fetchAll(
                db, sql: "SELECT id, user_id, created_at FROM jobs WHERE state = ? ORDER BY created_at, id",
                arguments: [JobState.queued.rawValue]
            ).map { row in
                QueuedJob(id: row["id"], userID: row["user_id"], createdAt: Date(timeIntervalSince1970: row["created_at"]))
            }
        }
    }

    public func jobs(inStates states: Set<JobState>) async throws -> [Job] {
        try await read { db in
            let filter = Self.jobFilter(states: states)
            return try Row.fetchAll(
                db, sql: "SELECT * FROM jobs \(filter.sql) ORDER BY created_at, id", arguments: filter.arguments
            ).map(Job.init(row:))
        }
    }

    public func countJobs(userID: String, states: Set<JobState>?, createdAfter: Date?) async throws -> Int {
        try await read { db in
            let filter = Self.jobFilter(userID: userID, states: states, createdAfter: createdAfter)
            return try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM jobs \(filter.sql)", arguments: filter.arguments)
                ?? 0
        }
    }

    public func gpuSeconds(userID: String?, completedAfter: Date) async throws -> [String: Double] {
        try await read { db in
            let rows =
                if let userID {
                    try Row.fetchAll(
                        db,
                        sql: """
                            SELECT user_id, TOTAL(gpu_seconds) AS gpu_seconds FROM jobs
                            WHERE user_id = ? AND completed_at > ? GROUP BY user_id
                            """,
                        arguments: [userID, completedAfter.timeIntervalSince1970]
                    )
                } else {
                    try Row.fetchAll(
                        db,
                        sql: """
                            SELECT user_id, TOTAL(gpu_seconds) AS gpu_seconds FROM jobs
                            WHERE completed_at > ? GROUP BY user_id
                            """,
                        arguments: [completedAfter.timeIntervalSince1970]
                    )
                }
            return Dictionary(uniqueKeysWithValues: rows.map { ($0["user_id"], $0["gpu_seconds"]) })
        }
    }

    public func usage(from: Date, to: Date) async throws -> [UsageSummary] {
        try await read { db in
            let finished = JobState.finished.map(\.rawValue).sorted()
            return try Row.fetchAll(
                db,
                sql: """
                    SELECT user_id, COUNT(*) AS jobs,
                        SUM(state IN (\(Self.placeholders(finished.count)))) AS finished_jobs,
                        COUNT(dispatched_at) AS dispatched_jobs, TOTAL(gpu_seconds) AS gpu_seconds, TOTAL(dispatched_at - created_at) AS wait_seconds
                    FROM jobs WHERE created_at >= ? AND created_at < ?
                    GROUP BY user_id ORDER BY user_id
                    """,
                arguments: StatementArguments(finished) + [from.timeIntervalSince1970, to.timeIntervalSince1970]
            ).map { row in
                UsageSummary(
                    userID: row["user_id"],
                    jobs: row["jobs"],
                    finishedJobs: row["finished_jobs"],
                    dispatchedJobs: row["dispatched_jobs"],
                    gpuSeconds: row["gpu_seconds"],
                    waitSeconds: row["wait_seconds"]
                )
            }
        }
    }

    public func expireJobs(completedBefore date: Date) async throws -> [Job] {
        try await write { db in
            let filter = Self.jobFilter(states: JobState.finished.subtracting([.expired]), completedBefore: date)
            let expired = try Row.fetchAll(
                db, sql: "SELECT * FROM jobs \(filter.sql) ORDER BY completed_at, id", arguments: filter.arguments
            ).map { row in
                var job = try Job(row: row)
                job.state = .expired
                return job
            }
            try db.execute(
                sql: "UPDATE jobs SET state = ? \(filter.sql)",
                arguments: [JobState.expired.rawValue] + filter.arguments
            )
            return expired
        }
    }

    public func deleteJobs(expiredBefore date: Date) async throws -> Int {
        try await write { db in
            try db.execute(
                sql: "DELETE FROM jobs WHERE state = ? AND completed_at < ?",
                arguments: [JobState.expired.rawValue, date.timeIntervalSince1970]
            )
            return db.changesCount
        }
    }

    /// `count` comma-separated `?` placeholders.
    private static func placeholders(_ count: Int) -> String {
        Array(repeating: "?", count: count).joined(separator: ", ")
    }

    /// A `WHERE` clause (empty when nothing is given) matching the jobs of one user, in one of `states`, created
    /// strictly between `createdAfter` and `createdBefore` and completed strictly before `completedBefore`,
    /// each where given; with its arguments in order.
    private static func jobFilter(
        userID: String? = nil,
        states: Set<JobState>?,
        createdAfter: Date? = nil,
        createdBefore: Date? = nil,
        completedBefore: Date? = nil
    ) -> (sql: String, arguments: StatementArguments) {
        var conditions: [String] = []
        var arguments = StatementArguments()
        if let userID {
            conditions.append("user_id = ?")
            arguments += [userID]
        }
        if let states {
            // SQLite accepts an empty list, which matches nothing.
            conditions.append("state IN (\(placeholders(states.count)))")
            arguments += StatementArguments(states.map(\.rawValue).sorted())
        }
        if let createdAfter {
            conditions.append("created_at > ?")
            arguments += [createdAfter.timeIntervalSince1970]
        }
        if let createdBefore {
            conditions.append("created_at < ?")
            arguments += [createdBefore.timeIntervalSince1970]
        }
        if let completedBefore {
            conditions.append("completed_at < ?")
            arguments += [completedBefore.timeIntervalSince1970]
        }
        return (conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND "), arguments)
    }

    // MARK: Assets

    public func insertAsset(_ asset: Asset) async throws {
        try await write(duplicate: "asset '\(asset.id)'") { db in
            try db.execute(
                sql: """
                    INSERT INTO assets
                        (id, user_id, hash, size_bytes, content_type, name, created_at, job_id, expires_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    asset.id, asset.userID, asset.hash, asset.sizeBytes, asset.contentType, asset.name,
                    asset.createdAt.timeIntervalSince1970, asset.jobID, asset.expiresAt?.timeIntervalSince1970,
                ]
            )
        }
    }

    public func asset(id: String) async throws -> Asset? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM assets WHERE id = ?", arguments: [id]).map(Asset.init(row:))
        }
    }

    public func assets(userID: String, hash: String) async throws -> [Asset] {
        try await read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT * FROM assets WHERE user_id = ? AND hash = ? ORDER BY created_at, id",
                arguments: [userID, hash]
            ).map(Asset.init(row:))
        }
    }

    public func assets(jobID: String) async throws -> [Asset] {
        try await read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM assets WHERE job_id = ? ORDER BY created_at, id", arguments: [jobID]
            ).map(Asset.init(row:))
        }
    }

    public func deleteJob(id: String) async throws -> Bool {
        try await write { db in
            try db.execute(sql: "DELETE FROM jobs WHERE id = ?", arguments: [id])
            return db.changesCount > 0
        }
    }

    public func deleteAsset(id: String) async throws -> Bool {
        try await write { db in
            try db.execute(sql: "DELETE FROM assets WHERE id = ?", arguments: [id])
            return db.changesCount > 0
        }
    }

    public func countAssets(hash: String) async throws -> Int {
        try await read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM assets WHERE hash = ?", arguments: [hash]) ?? 0
        }
    }

    // MARK: Quotas

    public func userQuota(userID: String) async throws -> UserQuota? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM user_quotas WHERE user_id = ?", arguments: [userID])
                .map(UserQuota.init(row:))
        }
    }

    public func setUserQuota(_ quota: UserQuota) async throws {
        try await write { db in
            try db.execute(
                sql: """
                    INSERT INTO user_quotas
                        (user_id, max_waiting_jobs, jobs_per_day, gpu_seconds_per_day, max_image_area, weight)
                    VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT (user_id) DO UPDATE SET
                        max_waiting_jobs = excluded.max_waiting_jobs, jobs_per_day = excluded.jobs_per_day,
                        gpu_seconds_per_day = excluded.gpu_seconds_per_day, max_image_area = excluded.max_image_area,
                        weight = excluded.weight
                    """,
                arguments: [
                    quota.userID, quota.limits.maxWaitingJobs, quota.limits.jobsPerDay, quota.limits.gpuSecondsPerDay,
                    quota.limits.maxImageArea, quota.weight,
                ]
            )
        }
    }

    public func deleteUserQuota(userID: String) async throws {
        try await write { db in
            try db.execute(sql: "DELETE FROM user_quotas WHERE user_id = ?", arguments: [userID])
        }
    }

    public func userQuotas() async throws -> [UserQuota] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM user_quotas ORDER BY user_id").map(UserQuota.init(row:))
        }
    }

    // MARK: Login failures

    public func loginFailures(keys: [String]) async throws -> [LoginFailureRecord] {
        try await read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT * FROM login_failures WHERE key IN (\(Self.placeholders(keys.count))) ORDER BY key",
                arguments: StatementArguments(keys)
            ).map(LoginFailureRecord.init(row:))
        }
    }

    /// Reads, counts and writes in one `IMMEDIATE` transaction: SQLite's write lock serializes the processes.
    public func recordLoginFailure(policies: [String: BackoffPolicy], at date: Date) async throws -> [LoginFailureRecord] {
        try await write { db in
            var counted: [LoginFailureRecord] = []
            for (key, policy) in policies.sorted(by: { $0.key < $1.key }) {
                let previous = try Row.fetchOne(db, sql: "SELECT * FROM login_failures WHERE key = ?", arguments: [key])
                    .map(LoginFailureRecord.init(row:))
                let record = LoginFailureRecord.counting(failureAt: date, of: key, after: previous, policy: policy)
                try db.execute(
                    sql: """
                        INSERT INTO login_failures (key, failures, last_failure_at, locked_until) VALUES (?, ?, ?, ?)
                        ON CONFLICT (key) DO UPDATE SET failures = excluded.failures,
                            last_failure_at = excluded.last_failure_at, locked_until = excluded.locked_until
                        """,
                    arguments: [
                        key, record.failures, record.lastFailureAt.timeIntervalSince1970,
                        record.lockedUntil.timeIntervalSince1970,
                    ]
                )
                counted.append(record)
            }
            if let forgotten = LoginFailureRecord.latestForgottenLockoutEnd(at: date, policies: policies.values) {
                try db.execute(
                    sql: "DELETE FROM login_failures WHERE locked_until <= ?",
                    arguments: [forgotten.timeIntervalSince1970]
                )
            }
            return counted
        }
    }

    public func deleteLoginFailures(key: String) async throws {
        try await write { db in
            try db.execute(sql: "DELETE FROM login_failures WHERE key = ?", arguments: [key])
        }
    }

    // MARK: Backends

    public func backendControls() async throws -> [BackendControl] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM backend_controls ORDER BY name").map(BackendControl.init(row:))
        }
    }

    public func setBackendControl(_ control: BackendControl) async throws {
        try await write { db in
            try db.execute(
                sql: """
                    INSERT INTO backend_controls (name, drained, changed_at, changed_by) VALUES (?, ?, ?, ?)
                    ON CONFLICT (name) DO UPDATE SET
                        drained = excluded.drained, changed_at = excluded.changed_at, changed_by = excluded.changed_by
                    """,
                arguments: [control.name, control.drained, control.changedAt.timeIntervalSince1970, control.changedBy]
            )
        }
    }

    public func recordBackendStatus(_ record: BackendStatusRecord) async throws {
        try await write { db in
            try db.execute(
                sql: """
                    INSERT INTO backend_statuses (name, replica, status, observed_at) VALUES (?, ?, ?, ?)
                    ON CONFLICT (name, replica) DO UPDATE SET status = excluded.status, observed_at = excluded.observed_at
                    """,
                arguments: [record.name, record.replica, record.status, record.observedAt.timeIntervalSince1970]
            )
        }
    }

    public func backendStatuses() async throws -> [BackendStatusRecord] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM backend_statuses ORDER BY name, replica")
                .map(BackendStatusRecord.init(row:))
        }
    }
}

// MARK: - Row decoding

extension APIToken.Verifier {
    /// The `verifier_kind` and `verifier` column values.
    fileprivate var columns: (kind: String, value: String) {
        switch self {
        case .sha256(let hex): ("sha256", hex)
        case .bcrypt(let hash): ("bcrypt", hash)
        }
    }
}

extension Date {
    fileprivate init?(column value: Double?) {
        guard let value else { return nil }
        self.init(timeIntervalSince1970: value)
    }
}

extension User {
    fileprivate init(row: Row) throws {
        let id: String = row["id"]
        let roleName: String = row["role"]
        guard let role = Role(rawValue: roleName) else {
            throw StoreError.unavailable("user '\(id)' has an unknown role '\(roleName)'")
        }
        self.init(
            id: id,
            name: row["name"],
            role: role,
            passwordHash: row["password_hash"],
            isDisabled: row["is_disabled"],
            createdAt: Date(timeIntervalSince1970: row["created_at"])
        )
    }
}

extension APIToken {
    fileprivate init(row: Row) throws {
        let id: String = row["id"]
        let kind: String = row["verifier_kind"]
        let value: String = row["verifier"]
        let verifier: Verifier
        switch kind {
        case "sha256": verifier = .sha256(value)
        case "bcrypt": verifier = .bcrypt(value)
        default: throw StoreError.unavailable("token '\(id)' has an unknown verifier kind '\(kind)'")
        }
        self.init(
            id: id,
            userID: row["user_id"],
            name: row["name"],
            verifier: verifier,
            createdAt: Date(timeIntervalSince1970: row["created_at"]),
            expiresAt: Date(column: row["expires_at"]),
            lastUsedAt: Date(column: row["last_used_at"]),
            revokedAt: Date(column: row["revoked_at"])
        )
    }
}

extension Session {
    fileprivate init(row: Row) {
        self.init(
            idDigest: row["id_digest"],
            userID: row["user_id"],
            createdAt: Date(timeIntervalSince1970: row["created_at"]),
            lastSeenAt: Date(timeIntervalSince1970: row["last_seen_at"]),
            expiresAt: Date(timeIntervalSince1970: row["expires_at"]),
            clientAddress: row["client_address"],
            userAgent: row["user_agent"]
        )
    }
}

extension AuditEvent {
    fileprivate init(row: Row) {
        self.init(
            time: Date(timeIntervalSince1970: row["time"]),
            action: row["action"],
            userName: row["user_name"],
            clientAddress: row["client_address"],
            detail: row["detail"]
        )
    }
}

extension PromptRecord {
    fileprivate init(row: Row) throws {
        let promptID: String = row["prompt_id"]
        let statusName: String = row["status"]
        guard let status = PromptStatus(rawValue: statusName) else {
            throw StoreError.unavailable("prompt '\(promptID)' has an unknown status '\(statusName)'")
        }
        self.init(
            promptID: promptID,
            userID: row["user_id"],
            createdAt: Date(timeIntervalSince1970: row["created_at"]),
            status: status,
            updatedAt: Date(timeIntervalSince1970: row["updated_at"])
        )
    }
}

extension Job {
    /// The values of the columns in `SQLiteStore.jobColumns`, in that order.
    fileprivate func columnValues() throws -> [DatabaseValue] {
        let values: [(any DatabaseValueConvertible)?] = [
            id, userID, source.rawValue, state.rawValue, workflow, extraData, clientID, idempotencyKey,
            requestDigest, metadata, createdAt.timeIntervalSince1970, dispatchedAt?.timeIntervalSince1970,
            startedAt?.timeIntervalSince1970, completedAt?.timeIntervalSince1970, expiresAt?.timeIntervalSince1970,
            backend, try StoredJSON.encode(outputs), try failure.map { try StoredJSON.encode($0) }, gpuSeconds,
            historyEntry, retryable, attempts,
        ]
        return values.map { $0?.databaseValue ?? .null }
    }

    fileprivate init(row: Row) throws {
        let id: String = row["id"]
        let sourceName: String = row["source"]
        let stateName: String = row["state"]
        guard let source = JobSource(rawValue: sourceName) else {
            throw StoreError.unavailable("job '\(id)' has an unknown source '\(sourceName)'")
        }
        guard let state = JobState(rawValue: stateName) else {
            throw StoreError.unavailable("job '\(id)' has an unknown state '\(stateName)'")
        }
        let failure: String? = row["failure"]
        self.init(
            id: id,
            userID: row["user_id"],
            source: source,
            state: state,
            workflow: row["workflow"],
            extraData: row["extra_data"],
            clientID: row["client_id"],
            idempotencyKey: row["idempotency_key"],
            requestDigest: row["request_digest"],
            metadata: row["metadata"],
            createdAt: Date(timeIntervalSince1970: row["created_at"]),
            dispatchedAt: Date(column: row["dispatched_at"]),
            startedAt: Date(column: row["started_at"]),
            completedAt: Date(column: row["completed_at"]),
            expiresAt: Date(column: row["expires_at"]),
            backend: row["backend"],
            outputs: try StoredJSON.decode([JobOutput].self, from: row["outputs"], of: "job '\(id)'"),
            failure: try failure.map { try StoredJSON.decode(JobFailure.self, from: $0, of: "job '\(id)'") },
            gpuSeconds: row["gpu_seconds"],
            historyEntry: row["history_entry"],
            retryable: row["retryable"],
            attempts: row["attempts"]
        )
    }
}

extension Asset {
    fileprivate init(row: Row) {
        self.init(
            id: row["id"],
            userID: row["user_id"],
            hash: row["hash"],
            sizeBytes: row["size_bytes"],
            contentType: row["content_type"],
            name: row["name"],
            createdAt: Date(timeIntervalSince1970: row["created_at"]),
            jobID: row["job_id"],
            expiresAt: Date(column: row["expires_at"])
        )
    }
}

extension LoginFailureRecord {
    fileprivate init(row: Row) {
        self.init(
            key: row["key"],
            failures: row["failures"],
            lastFailureAt: Date(timeIntervalSince1970: row["last_failure_at"]),
            lockedUntil: Date(timeIntervalSince1970: row["locked_until"])
        )
    }
}

extension BackendControl {
    fileprivate init(row: Row) {
        self.init(
            name: row["name"],
            drained: row["drained"],
            changedAt: Date(timeIntervalSince1970: row["changed_at"]),
            changedBy: row["changed_by"]
        )
    }
}

extension BackendStatusRecord {
    fileprivate init(row: Row) {
        self.init(
            name: row["name"],
            replica: row["replica"],
            status: row["status"],
            observedAt: Date(timeIntervalSince1970: row["observed_at"])
        )
    }
}

extension UserQuota {
    fileprivate init(row: Row) {
        self.init(
            userID: row["user_id"],
            limits: QuotaLimits(
                maxWaitingJobs: row["max_waiting_jobs"],
                jobsPerDay: row["jobs_per_day"],
                gpuSecondsPerDay: row["gpu_seconds_per_day"],
                maxImageArea: row["max_image_area"]
            ),
            weight: row["weight"]
        )
    }
}

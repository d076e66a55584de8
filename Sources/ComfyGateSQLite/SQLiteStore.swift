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
                    INSERT INTO sessions (id_digest, user_id, created_at, last_seen_at, expires_at)
                    VALUES (?, ?, ?, ?, ?)
                    """,
                arguments: [
                    session.idDigest, session.userID, session.createdAt.timeIntervalSince1970,
                    session.lastSeenAt.timeIntervalSince1970, session.expiresAt.timeIntervalSince1970,
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
            expiresAt: Date(timeIntervalSince1970: row["expires_at"])
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

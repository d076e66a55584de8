public import Foundation

/// Where the gateway keeps users, tokens, sessions and the audit trail.
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

public import Foundation

/// User and token administration, shared by the command line and the gateway's first start.
public struct AccountService: Sendable {
    public let store: any GatewayStore
    public let hasher: PasswordHasher
    private let now: @Sendable () -> Date

    public init(store: any GatewayStore, hasher: PasswordHasher = PasswordHasher(), now: @escaping @Sendable () -> Date = { Date() }) {
        self.store = store
        self.hasher = hasher
        self.now = now
    }

    /// Credentials made on first start; shown once and never stored in clear.
    public struct InitialAdmin: Sendable {
        public let userName: String
        public let password: String
        public let token: String
    }

    /// On an empty store, creates user `admin` (role admin) with a random password and one API token.
    /// Returns nil when users already exist (or another replica created them first).
    public func bootstrapIfEmpty() async throws -> InitialAdmin? {
        guard try await store.userCount() == 0 else { return nil }
        let password = TokenFormat.randomBase62(count: 24)
        do {
            _ = try await addUser(name: "admin", role: .admin, password: password)
        } catch StoreError.duplicate {
            return nil
        }
        let token = try await createToken(userName: "admin", name: "initial admin token", expiresIn: nil)
        return InitialAdmin(userName: "admin", password: password, token: token.token)
    }

    /// Adds a user; `password` nil makes a token-only user.
    public func addUser(name: String, role: Role, password: String?) async throws -> User {
        try User.validate(name: name)
        var hash: String?
        if let password { hash = try await hashPassword(password) }
        let user = User(name: name, role: role, passwordHash: hash, createdAt: now())
        try await store.insertUser(user)
        try await audit("user.created", user: name, detail: "role \(role)")
        return user
    }

    /// Sets a new password and ends the user's sessions.
    public func setPassword(userName: String, password: String) async throws {
        var user = try await existingUser(userName)
        user.passwordHash = try await hashPassword(password)
        try await store.updateUser(user)
        try await store.deleteSessions(userID: user.id)
        try await audit("user.password_changed", user: userName)
    }

    /// Gives a user another role; their sessions and tokens act with it from their next request.
    public func setRole(userName: String, role: Role) async throws {
        var user = try await existingUser(userName)
        guard user.role != role else { return }
        let previous = user.role
        user.role = role
        try await store.updateUser(user)
        try await audit("user.role_changed", user: userName, detail: "\(previous) → \(role)")
    }

    /// Disables (or re-enables) a user; disabling ends their sessions and stops their tokens.
    public func setDisabled(userName: String, _ disabled: Bool) async throws {
        var user = try await existingUser(userName)
        user.isDisabled = disabled
        try await store.updateUser(user)
        if disabled { try await store.deleteSessions(userID: user.id) }
        try await audit(disabled ? "user.disabled" : "user.enabled", user: userName)
    }

    /// A new native token for a user. The returned `token` is the only copy of the secret.
    public func createToken(userName: String, name: String?, expiresIn: TimeInterval?) async throws -> (record: APIToken, token: String) {
        let user = try await existingUser(userName)
        let label = name ?? "token"
        try APIToken.validate(name: label)
        let generated = TokenFormat.generate()
        let date = now()
        let record = APIToken(
            id: generated.id, userID: user.id, name: label, verifier: generated.verifier, createdAt: date,
            expiresAt: expiresIn.map { date.addingTimeInterval($0) }
        )
        try await store.insertToken(record)
        try await audit("token.created", user: userName, detail: "id \(record.id)")
        return (record, generated.token)
    }

    /// Registers an existing deployment's bcrypt hash as a token of `userName`: the raw secret it was made
    /// from is then accepted like any token.
    public func importBcryptToken(userName: String, hash text: String, name: String?, expiresIn: TimeInterval? = nil) async throws -> APIToken {
        let user = try await existingUser(userName)
        let hash = try BcryptHash(parsing: text.trimmingCharacters(in: .whitespacesAndNewlines))
        guard hash.cost <= hasher.maxCost else { throw PasswordError.costAboveLimit(hash.cost, limit: hasher.maxCost) }
        let label = name ?? "imported"
        try APIToken.validate(name: label)
        let date = now()
        let record = APIToken(
            id: TokenFormat.randomID(), userID: user.id, name: label, verifier: .bcrypt(hash.string), createdAt: date,
            expiresAt: expiresIn.map { date.addingTimeInterval($0) }
        )
        try await store.insertToken(record)
        try await audit("token.imported", user: userName, detail: "id \(record.id), \(hash)")
        return record
    }

    /// Revokes a token by id; throws ``StoreError/notFound(_:)`` for an unknown or already revoked id.
    public func revokeToken(id: String) async throws {
        guard let token = try await store.token(id: id) else { throw StoreError.notFound("token '\(id)'") }
        guard try await store.revokeToken(id: id, at: now()) else { throw StoreError.notFound("active token '\(id)'") }
        let owner = try await store.user(id: token.userID)
        try await audit("token.revoked", user: owner?.name, detail: "id \(id)")
    }

    /// Tokens with their owners' names, for listing.
    public func listTokens(userName: String?) async throws -> [(token: APIToken, owner: String)] {
        let users = try await store.users()
        let names = Dictionary(uniqueKeysWithValues: users.map { ($0.id, $0.name) })
        var userID: String?
        if let userName { userID = try await existingUser(userName).id }
        return try await store.tokens(userID: userID).map { ($0, names[$0.userID] ?? "?") }
    }

    /// A user and their quota settings (overrides of their role's limits, and weight); weight 1 and no overrides
    /// when they have none.
    public func quota(userName: String) async throws -> (user: User, quota: UserQuota) {
        let user = try await existingUser(userName)
        return (user, try await store.userQuota(userID: user.id) ?? UserQuota(userID: user.id))
    }

    /// Changes a user's quota settings and records the change in the audit trail; settings equal to the defaults
    /// (no overrides, weight 1) are removed rather than stored.
    public func updateQuota(userName: String, _ change: (inout UserQuota) -> Void) async throws -> UserQuota {
        var (user, quota) = try await quota(userName: userName)
        change(&quota)
        if quota == UserQuota(userID: user.id) {
            try await store.deleteUserQuota(userID: user.id)
        } else {
            try await store.setUserQuota(quota)
        }
        let limits = quota.limits
        let detail = [
            ("max_waiting_jobs", limits.maxWaitingJobs.map(String.init)), ("jobs_per_day", limits.jobsPerDay.map(String.init)),
            ("gpu_seconds_per_day", limits.gpuSecondsPerDay.map { String($0) }), ("max_image_area", limits.maxImageArea.map(String.init)),
        ].map { "\($0.0)=\($0.1 ?? "role")" }.joined(separator: " ") + " weight=\(quota.weight)"
        try await audit("user.quota", user: userName, detail: detail)
        return quota
    }

    private func existingUser(_ name: String) async throws -> User {
        guard let user = try await store.user(named: name) else { throw StoreError.notFound("user '\(name)'") }
        return user
    }

    private func hashPassword(_ password: String) async throws -> String {
        guard password.count >= 8 else { throw AccountError.passwordTooShort }
        return try await hasher.hash(password)
    }

    private func audit(_ action: String, user: String?, detail: String = "") async throws {
        try await store.appendAudit(AuditEvent(time: now(), action: action, userName: user, clientAddress: nil, detail: detail))
    }
}

/// Administration errors a user can cause.
public enum AccountError: Error, Equatable, CustomStringConvertible {
    case passwordTooShort

    public var description: String {
        switch self {
        case .passwordTooShort: "passwords need at least 8 characters"
        }
    }
}

public import Foundation

/// A person or script allowed through the gateway.
public struct User: Sendable, Codable, Equatable {
    /// Stable identifier (a UUID string), never reused.
    public var id: String
    /// Unique login name.
    public var name: String
    public var role: Role
    /// bcrypt hash of the password, or `nil` for users that log in with tokens only.
    public var passwordHash: String?
    /// A disabled user can neither log in nor use tokens; existing sessions stop working.
    public var isDisabled: Bool
    public var createdAt: Date

    public init(
        id: String = UUID().uuidString.lowercased(),
        name: String,
        role: Role,
        passwordHash: String?,
        isDisabled: Bool = false,
        createdAt: Date
    ) {
        self.id = id
        self.name = name
        self.role = role
        self.passwordHash = passwordHash
        self.isDisabled = isDisabled
        self.createdAt = createdAt
    }

    /// Checks a user name: 1 to 64 characters of letters, digits, `.`, `_`, `-` and `@`.
    public static func validate(name: String) throws(IdentityError) {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-@")
        guard (1...64).contains(name.count), name.allSatisfy(allowed.contains) else {
            throw .invalidUserName(name)
        }
    }
}

/// The identity a request acts as once authenticated.
public struct Identity: Sendable, Equatable {
    public var userID: String
    public var userName: String
    public var role: Role
    /// How the request proved who it is.
    public var credential: CredentialKind

    public init(userID: String, userName: String, role: Role, credential: CredentialKind) {
        self.userID = userID
        self.userName = userName
        self.role = role
        self.credential = credential
    }

    public init(user: User, credential: CredentialKind) {
        self.init(userID: user.id, userName: user.name, role: user.role, credential: credential)
    }
}

/// The kind of credential a request presented.
public enum CredentialKind: Sendable, Equatable {
    /// A ComfyGate API token, with its public id.
    case token(id: String)
    /// A raw token checked against an imported bcrypt hash, with the token record's id.
    case importedToken(id: String)
    /// A browser session cookie.
    case session
    /// The Prometheus scraper's token (`metrics_token_file`): no user, `/metrics` only.
    case scrapeToken
}

/// Errors about users, tokens and their names.
public enum IdentityError: Error, Equatable, CustomStringConvertible {
    case invalidUserName(String)
    case invalidTokenLabel(String)

    public var description: String {
        switch self {
        case .invalidUserName(let name):
            "invalid user name '\(name)': use 1 to 64 letters, digits, '.', '_', '-' or '@'"
        case .invalidTokenLabel(let label):
            "invalid token name '\(label)': use 1 to 64 printable characters"
        }
    }
}

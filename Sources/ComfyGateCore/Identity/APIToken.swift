public import Foundation

/// A stored API token. The secret itself is never stored: only a digest of it (native tokens) or the bcrypt
/// hash an existing deployment already had (imported tokens).
public struct APIToken: Sendable, Codable, Equatable {
    /// How the presented secret is checked.
    public enum Verifier: Sendable, Codable, Equatable {
        /// SHA-256 of the whole token string, hex-encoded; compared in constant time.
        case sha256(String)
        /// A bcrypt hash imported from an existing deployment (`$2a$`, `$2b$` or `$2y$`).
        case bcrypt(String)
    }

    /// Public identifier: the id part of a native token, a random id for imported ones.
    public var id: String
    public var userID: String
    /// A label chosen by the owner, e.g. `laptop` or `ci`.
    public var name: String
    public var verifier: Verifier
    public var createdAt: Date
    public var expiresAt: Date?
    public var lastUsedAt: Date?
    public var revokedAt: Date?

    public init(
        id: String,
        userID: String,
        name: String,
        verifier: Verifier,
        createdAt: Date,
        expiresAt: Date? = nil,
        lastUsedAt: Date? = nil,
        revokedAt: Date? = nil
    ) {
        self.id = id
        self.userID = userID
        self.name = name
        self.verifier = verifier
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.lastUsedAt = lastUsedAt
        self.revokedAt = revokedAt
    }

    /// Whether the token may be used at `date`: neither revoked nor expired.
    public func isUsable(at date: Date) -> Bool {
        if revokedAt != nil { return false }
        if let expiresAt, expiresAt <= date { return false }
        return true
    }

    /// `active`, `expired` or `revoked`, as shown by `tokens list`.
    /// `native` or `bcrypt`, as the command line and the pages list it.
    public var kindName: String {
        if case .bcrypt = verifier { return "bcrypt" }
        return "native"
    }

    public func state(at date: Date) -> String {
        if revokedAt != nil { return "revoked" }
        if let expiresAt, expiresAt <= date { return "expired" }
        return "active"
    }

    /// Checks a token label: 1 to 64 printable characters.
    public static func validate(name: String) throws(IdentityError) {
        guard (1...64).contains(name.count),
            name.unicodeScalars.allSatisfy({ !$0.properties.generalCategory.isControl })
        else { throw .invalidTokenLabel(name) }
    }
}

extension Unicode.GeneralCategory {
    fileprivate var isControl: Bool {
        switch self {
        case .control, .format, .lineSeparator, .paragraphSeparator: true
        default: false
        }
    }
}

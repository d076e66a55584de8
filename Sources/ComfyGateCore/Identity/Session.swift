public import Foundation

/// A server-side browser session. The cookie carries a random id; only its SHA-256 digest is stored.
public struct Session: Sendable, Codable, Equatable {
    /// Hex SHA-256 of the session id in the cookie.
    public var idDigest: String
    public var userID: String
    public var createdAt: Date
    public var lastSeenAt: Date
    /// The absolute end of the session, whatever its activity.
    public var expiresAt: Date
    /// Where the browser signed in from, for the account page.
    public var clientAddress: String?
    /// The browser's `User-Agent` at sign-in, cut to 200 characters, for the account page.
    public var userAgent: String?

    public init(
        idDigest: String, userID: String, createdAt: Date, lastSeenAt: Date, expiresAt: Date, clientAddress: String? = nil,
        userAgent: String? = nil
    ) {
        self.idDigest = idDigest
        self.userID = userID
        self.createdAt = createdAt
        self.lastSeenAt = lastSeenAt
        self.expiresAt = expiresAt
        self.clientAddress = clientAddress
        self.userAgent = userAgent.map { String($0.prefix(200)) }
    }
}

/// One line of the audit trail: who did what, from where, and whether it worked.
public struct AuditEvent: Sendable, Codable, Equatable {
    public var time: Date
    /// What happened, e.g. `login.failed`, `token.created`, `user.disabled`.
    public var action: String
    /// The user concerned, when known.
    public var userName: String?
    /// The client address, for events caused by a request.
    public var clientAddress: String?
    /// Free text without secrets.
    public var detail: String

    public init(time: Date, action: String, userName: String? = nil, clientAddress: String? = nil, detail: String = "") {
        self.time = time
        self.action = action
        self.userName = userName
        self.clientAddress = clientAddress
        self.detail = detail
    }
}

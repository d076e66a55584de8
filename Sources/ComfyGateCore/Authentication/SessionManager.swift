public import Foundation

/// Browser sessions kept server-side: a random id in the cookie, its digest in the store, an idle timeout
/// renewed by activity and an absolute timeout that activity never extends.
public struct SessionManager: Sendable {
    public let store: any GatewayStore
    public let idleTimeout: TimeInterval
    public let absoluteTimeout: TimeInterval
    private let now: @Sendable () -> Date

    public init(
        store: any GatewayStore,
        idleTimeout: TimeInterval,
        absoluteTimeout: TimeInterval,
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.store = store
        self.idleTimeout = idleTimeout
        self.absoluteTimeout = absoluteTimeout
        self.now = now
    }

    /// Opens a session for `user`; returns the value to put in the cookie (shown once, never stored).
    public func open(for user: User) async throws -> String {
        let cookieValue = TokenFormat.randomBase62(count: 43)
        let date = now()
        try await store.insertSession(
            Session(
                idDigest: TokenFormat.digest(cookieValue),
                userID: user.id,
                createdAt: date,
                lastSeenAt: date,
                expiresAt: date.addingTimeInterval(absoluteTimeout)
            )
        )
        return cookieValue
    }

    /// The identity behind a cookie value, renewing its idle timer; nil when unknown, idle, expired or the user
    /// is disabled (the session is then deleted).
    public func resolve(cookieValue: String) async throws -> Identity? {
        guard cookieValue.utf8.count == 43 else { return nil }
        let digest = TokenFormat.digest(cookieValue)
        guard let session = try await store.session(idDigest: digest) else { return nil }
        let date = now()
        guard session.expiresAt > date, date.timeIntervalSince(session.lastSeenAt) < idleTimeout,
            let user = try await store.user(id: session.userID), !user.isDisabled
        else {
            try await store.deleteSession(idDigest: digest)
            return nil
        }
        // Renew at most every few seconds so a page load's burst of requests costs one write.
        if date.timeIntervalSince(session.lastSeenAt) > min(30, idleTimeout / 10) {
            try await store.touchSession(idDigest: digest, at: date)
        }
        return Identity(user: user, credential: .session)
    }

    /// Ends the session behind a cookie value.
    public func close(cookieValue: String) async throws {
        try await store.deleteSession(idDigest: TokenFormat.digest(cookieValue))
    }
}

public import Foundation

/// Browser sessions kept server-side: a random id in the cookie, its digest in the store, an idle timeout
/// renewed by activity and an absolute timeout that activity never extends.
public struct SessionManager: Sendable {
    public let store: any GatewayStore
    /// `store` when it is a cache, for lookups that must not wait.
    private let cache: CachedGatewayStore?
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
        self.cache = store as? CachedGatewayStore
        self.idleTimeout = idleTimeout
        self.absoluteTimeout = absoluteTimeout
        self.now = now
    }

    /// Opens a session for `user`; returns the value to put in the cookie (shown once, never stored).
    /// - Parameters:
    ///   - clientAddress: where the browser signs in from, shown on the account page.
    ///   - userAgent: the browser's `User-Agent`, shown on the account page.
    public func open(for user: User, clientAddress: String? = nil, userAgent: String? = nil) async throws -> String {
        let cookieValue = TokenFormat.randomBase62(count: 43)
        let date = now()
        try await store.insertSession(
            Session(
                idDigest: TokenFormat.digest(cookieValue),
                userID: user.id,
                createdAt: date,
                lastSeenAt: date,
                expiresAt: date.addingTimeInterval(absoluteTimeout),
                clientAddress: clientAddress,
                userAgent: userAgent
            )
        )
        return cookieValue
    }

    /// A user's sessions that are still valid, most recently active first.
    public func sessions(userID: String) async throws -> [Session] {
        let date = now()
        return try await store.sessions(userID: userID).filter {
            $0.expiresAt > date && date.timeIntervalSince($0.lastSeenAt) < idleTimeout
        }
    }

    /// Ends every session of `userID` but the one behind `cookieValue`; returns how many ended.
    @discardableResult
    public func closeOthers(userID: String, keeping cookieValue: String) async throws -> Int {
        let kept = TokenFormat.digest(cookieValue)
        let others = try await store.sessions(userID: userID).filter { $0.idDigest != kept }
        for session in others { try await store.deleteSession(idDigest: session.idDigest) }
        return others.count
    }

    /// The anti-forgery token of the session behind `cookieValue`: derived from the cookie, which a page of another
    /// site can neither read nor guess, so a form carrying it comes from a page the gateway served to that session.
    public static func formToken(cookieValue: String) -> String {
        String(TokenFormat.digest("comfygate-form:" + cookieValue).prefix(40))
    }

    /// Whether `presented` is the anti-forgery token of the session behind `cookieValue` (constant time).
    public static func formTokenMatches(_ presented: String, cookieValue: String) -> Bool {
        ConstantTime.equals(presented, formToken(cookieValue: cookieValue))
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
        if date.timeIntervalSince(session.lastSeenAt) > renewalInterval {
            try await store.touchSession(idDigest: digest, at: date)
        }
        return Identity(user: user, credential: .session)
    }

    /// The identity behind a cookie value when the session and user are cached, valid and no renewal is due;
    /// nil means "ask ``resolve(cookieValue:)``", never "refused". It never waits, so it can run on an event loop.
    public func cachedIdentity(cookieValue: String) -> Identity? {
        guard cookieValue.utf8.count == 43, let cache,
            let session = cache.cachedSession(idDigest: TokenFormat.digest(cookieValue))
        else { return nil }
        let date = now()
        guard session.expiresAt > date, date.timeIntervalSince(session.lastSeenAt) <= renewalInterval,
            let user = cache.cachedUser(id: session.userID), !user.isDisabled
        else { return nil }
        return Identity(user: user, credential: .session)
    }

    /// How often activity renews a session: at most every few seconds, so a page load's burst of requests costs
    /// one write.
    private var renewalInterval: TimeInterval { min(30, idleTimeout / 10) }

    /// Ends the session behind a cookie value.
    public func close(cookieValue: String) async throws {
        try await store.deleteSession(idDigest: TokenFormat.digest(cookieValue))
    }
}

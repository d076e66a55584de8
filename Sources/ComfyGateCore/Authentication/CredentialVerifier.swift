public import Foundation
public import Logging
import Synchronization

/// Turns a presented API token into an identity.
///
/// Native tokens (`cgt_…`) are found by their public id and checked by SHA-256 digest in constant time.
/// Any other value is checked with bcrypt against the imported hashes, at most once per distinct value per
/// `cacheLifetime`: results are cached under the SHA-256 of the value (never the value itself), concurrent
/// checks of the same value share one computation, and bcrypt work is bounded by the ``PasswordHasher``.
/// Values that match no token are counted against the client's address by a ``TokenGuessThrottle``; an
/// address over its budget is refused before any store or bcrypt work.
public final class CredentialVerifier: Sendable {
    /// Why a presented credential was refused. Never shown to clients: all but `busy` and `throttled` get the
    /// same 401.
    public enum Refusal: Error, Equatable {
        case unknown
        case revoked
        case expired
        case userDisabled
        case busy
        /// Too many values from the client's address matched no token; retry after the given number of seconds.
        case throttled(retryAfter: TimeInterval)
    }

    private struct CachedCheck {
        /// The matching token id, or nil for a value that matched nothing.
        var tokenID: String?
        /// The set of imported hashes the check was made against.
        var importedSet: String
        var expiresAt: Date
    }

    private struct State {
        var cache: [String: CachedCheck] = [:]
        var inFlight: [String: [CheckedContinuation<String?, Never>]] = [:]
        var lastTouched: [String: Date] = [:]
    }

    private let store: any GatewayStore
    /// `store` when it is a cache, for lookups that must not wait.
    private let cache: CachedGatewayStore?
    private let hasher: PasswordHasher
    private let guessThrottle: TokenGuessThrottle
    private let now: @Sendable () -> Date
    private let cacheLifetime: TimeInterval
    private let maxCacheEntries: Int
    private let state = Mutex(State())
    private let logger: Logger

    /// - Parameters:
    ///   - hasher: where imported tokens are checked; give password logins another one, so that token guesses
    ///     never take their turns.
    ///   - guessThrottle: counts values that matched no token, per client address.
    ///   - cacheLifetime: how long a bcrypt result (positive or negative) is reused.
    ///   - now: the clock, replaceable in tests.
    public init(
        store: any GatewayStore,
        hasher: PasswordHasher,
        guessThrottle: TokenGuessThrottle = TokenGuessThrottle(),
        cacheLifetime: TimeInterval = 300,
        maxCacheEntries: Int = 10_000,
        logger: Logger = Logger(label: "comfygate.auth"),
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.store = store
        self.cache = store as? CachedGatewayStore
        self.hasher = hasher
        self.guessThrottle = guessThrottle
        self.cacheLifetime = cacheLifetime
        self.maxCacheEntries = maxCacheEntries
        self.logger = logger
        self.now = now
    }

    /// The identity a presented token stands for.
    /// - Parameter clientAddress: who presented it, for ``TokenGuessThrottle``; nil for a caller that serves no
    ///   client (a tool), whose checks are not throttled.
    public func verify(token presented: String, from clientAddress: String? = nil) async throws -> Result<Identity, Refusal> {
        let date = now()
        if let clientAddress, let wait = guessThrottle.lockoutRemaining(address: clientAddress, at: date) {
            return .failure(.throttled(retryAfter: wait))
        }
        let record: APIToken
        if let id = TokenFormat.id(ofPresented: presented) {
            guard let stored = try await store.token(id: id), Self.matchesNative(presented, stored) else {
                countFailure(from: clientAddress, at: date)
                return .failure(.unknown)
            }
            record = stored
        } else {
            switch try await verifyImported(presented, from: clientAddress, at: date) {
            case .success(let stored): record = stored
            case .failure(let refusal): return .failure(refusal)
            }
        }
        if record.revokedAt != nil { return .failure(.revoked) }
        if let expiresAt = record.expiresAt, expiresAt <= date { return .failure(.expired) }
        guard let user = try await store.user(id: record.userID), !user.isDisabled else {
            return .failure(.userDisabled)
        }
        try await touchIfStale(record.id, at: date)
        let kind: CredentialKind =
            if case .bcrypt = record.verifier { .importedToken(id: record.id) } else { .token(id: record.id) }
        return .success(Identity(user: user, credential: kind))
    }

    /// The identity behind a native token when everything needed is cached and nothing is due to be written;
    /// nil means "ask ``verify(token:)``", never "refused". It never waits, so it can run on an event loop.
    public func cachedIdentity(token presented: String) -> Identity? {
        guard let cache, let id = TokenFormat.id(ofPresented: presented),
            let record = cache.cachedToken(id: id), Self.matchesNative(presented, record)
        else { return nil }
        let date = now()
        guard record.isUsable(at: date), let user = cache.cachedUser(id: record.userID), !user.isDisabled else { return nil }
        let touched = state.withLock { $0.lastTouched[id].map { date.timeIntervalSince($0) < Self.touchInterval } ?? false }
        guard touched else { return nil }
        return Identity(user: user, credential: .token(id: record.id))
    }

    /// Whether a native token's stored digest is the presented value's, compared in constant time.
    private static func matchesNative(_ presented: String, _ record: APIToken) -> Bool {
        guard case .sha256(let digest) = record.verifier else { return false }
        return ConstantTime.equals(TokenFormat.digest(presented), digest)
    }

    /// Checks a value against the imported hashes. A value already found wrong (cached, or being checked) is
    /// not counted against the client again: presenting it once more tests no new guess.
    private func verifyImported(_ presented: String, from clientAddress: String?, at date: Date) async throws -> Result<APIToken, Refusal> {
        guard (try? PasswordHasher.checkSecret(presented)) != nil, !presented.isEmpty else {
            countFailure(from: clientAddress, at: date)
            return .failure(.unknown)
        }
        let candidates = try await store.usableBcryptTokens(at: date)
        guard !candidates.isEmpty else {
            countFailure(from: clientAddress, at: date)
            return .failure(.unknown)
        }
        let importedSet = candidates.map { "\($0.id):\($0.verifier)" }.joined(separator: ",")
        let key = TokenFormat.digest(presented)

        enum Step { case cached(String?), join, compute, throttled(TimeInterval) }
        let step: Step = state.withLock { state in
            if let hit = state.cache[key], hit.expiresAt > date, hit.importedSet == importedSet || hit.tokenID != nil {
                return .cached(hit.tokenID)
            }
            if state.inFlight[key] != nil { return .join }
            if let clientAddress, let wait = guessThrottle.startCheck(address: clientAddress, at: date) { return .throttled(wait) }
            state.inFlight[key] = []
            return .compute
        }
        let matchedID: String?
        switch step {
        case .throttled(let wait):
            return .failure(.throttled(retryAfter: wait))
        case .cached(let id):
            matchedID = id
        case .join:
            matchedID = await withCheckedContinuation { continuation in
                let finished: CachedCheck? = state.withLock { state in
                    if state.inFlight[key] != nil {
                        state.inFlight[key]!.append(continuation)
                        return nil
                    }
                    return state.cache[key] ?? CachedCheck(tokenID: nil, importedSet: "", expiresAt: date)
                }
                if let finished { continuation.resume(returning: finished.tokenID) }
            }
        case .compute:
            var found: String?
            var busy = false
            for candidate in candidates {
                guard case .bcrypt(let text) = candidate.verifier, let hash = try? BcryptHash(parsing: text) else { continue }
                do {
                    if try await hasher.verify(presented, against: hash) {
                        found = candidate.id
                        break
                    }
                } catch .busy {
                    busy = true
                    break
                } catch {
                    logger.debug("imported token check skipped", metadata: ["token.id": "\(candidate.id)", "why": "\(error)"])
                }
            }
            let waiters = state.withLock { state in
                if !busy {
                    if state.cache.count >= maxCacheEntries { state.cache.removeAll(keepingCapacity: true) }
                    state.cache[key] = CachedCheck(
                        tokenID: found,
                        importedSet: importedSet,
                        expiresAt: date.addingTimeInterval(cacheLifetime)
                    )
                }
                return state.inFlight.removeValue(forKey: key) ?? []
            }
            for waiter in waiters { waiter.resume(returning: found) }
            if let clientAddress {
                let lockout = guessThrottle.finishCheck(address: clientAddress, matched: busy ? nil : found != nil, at: date)
                logLockout(lockout, of: clientAddress)
            }
            if busy { return .failure(.busy) }
            matchedID = found
        }
        guard let matchedID, let record = try await store.token(id: matchedID) else { return .failure(.unknown) }
        return .success(record)
    }

    /// Counts a value that matched no token, found without bcrypt, against the client's address.
    private func countFailure(from clientAddress: String?, at date: Date) {
        guard let clientAddress else { return }
        logLockout(guessThrottle.recordFailure(address: clientAddress, at: date), of: clientAddress)
    }

    private func logLockout(_ lockout: TimeInterval?, of clientAddress: String) {
        guard let lockout else { return }
        logger.warning("token guesses throttled", metadata: ["client": "\(clientAddress)", "lockout_s": "\(Int(lockout))"])
    }

    /// How often `lastUsedAt` is written per token: a busy client does not turn reads into writes.
    private static let touchInterval: TimeInterval = 60

    /// Writes `lastUsedAt` at most once per ``touchInterval`` per token.
    private func touchIfStale(_ id: String, at date: Date) async throws {
        let stale = state.withLock { state in
            if let last = state.lastTouched[id], date.timeIntervalSince(last) < Self.touchInterval { return false }
            state.lastTouched[id] = date
            return true
        }
        if stale { try await store.touchToken(id: id, at: date) }
    }
}

public import Foundation

/// Checks a user name and password, with the same answer and about the same work for unknown users and wrong
/// passwords, and with throttling per account and per client address.
public struct PasswordLogin: Sendable {
    public enum Outcome: Sendable, Equatable {
        case success(User)
        /// Unknown user, wrong password, disabled user or no password set: deliberately one case.
        case refused
        /// Too many recent failures; retry after the given number of seconds.
        case throttled(retryAfter: TimeInterval)
        /// The bcrypt queue is full.
        case busy
    }

    public let store: any GatewayStore
    public let hasher: PasswordHasher
    public let throttle: LoginThrottle
    private let now: @Sendable () -> Date
    /// A hash of a random value, checked for unknown users so they cost the same time as real ones.
    private let decoyHash: BcryptHash

    public init(
        store: any GatewayStore,
        hasher: PasswordHasher,
        throttle: LoginThrottle,
        decoyHash: BcryptHash,
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.store = store
        self.hasher = hasher
        self.throttle = throttle
        self.decoyHash = decoyHash
        self.now = now
    }

    public func attempt(userName: String, password: String, clientAddress: String) async throws -> Outcome {
        let date = now()
        if let wait = throttle.startAttempt(account: userName, address: clientAddress, at: date) {
            return .throttled(retryAfter: wait)
        }
        var succeeded: Bool?
        defer { throttle.finishAttempt(account: userName, address: clientAddress, succeeded: succeeded, at: date) }
        let user = try await store.user(named: userName)
        let hash = user?.passwordHash.flatMap { try? BcryptHash(parsing: $0) }
        let matches: Bool
        do {
            matches = try await hasher.verify(password, against: hash ?? decoyHash)
        } catch .busy {
            return .busy
        } catch {
            matches = false
        }
        if matches, let user, hash != nil, !user.isDisabled {
            succeeded = true
            return .success(user)
        }
        succeeded = false
        return .refused
    }
}

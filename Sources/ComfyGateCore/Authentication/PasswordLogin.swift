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
        if let wait = try await throttle.startSharedAttempt(account: userName, address: clientAddress, at: date) {
            return .throttled(retryAfter: wait)
        }
        let outcome: Outcome
        do {
            outcome = try await check(userName: userName, password: password)
        } catch {
            try await throttle.finishSharedAttempt(account: userName, address: clientAddress, succeeded: nil, at: date)
            throw error
        }
        let succeeded: Bool? =
            switch outcome {
            case .success: true
            case .refused: false
            case .throttled, .busy: nil
            }
        try await throttle.finishSharedAttempt(account: userName, address: clientAddress, succeeded: succeeded, at: date)
        return outcome
    }

    /// Checks the password, at the same cost whether or not the user exists: success, refused or busy.
    private func check(userName: String, password: String) async throws -> Outcome {
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
        if matches, let user, hash != nil, !user.isDisabled { return .success(user) }
        return .refused
    }
}

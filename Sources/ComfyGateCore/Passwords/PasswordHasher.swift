import HummingbirdBcrypt
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// bcrypt hashing and verification, each on a thread of its own (never on an event loop or Swift concurrency's
/// threads) with at most `maxConcurrent` computations at once and at most `maxWaiting` callers waiting for a turn.
///
/// Work that must not wait behind other bcrypt work gets a hasher of its own: the gateway checks password
/// logins on one and imported tokens on another, at a lower priority, so that a flood of token guesses can
/// neither take the logins' turns nor their share of the cores.
public final class PasswordHasher: Sendable {
    /// bcrypt reads at most 72 bytes; longer secrets are refused rather than silently truncated.
    public static let maxSecretBytes = 72
    /// The default cost for new hashes.
    public static let defaultCost = 12

    /// The highest cost accepted when verifying or importing a hash: each step doubles the work.
    public let maxCost: Int
    private let background: Bool
    private let limiter: AsyncLimiter
    private let verifications = Atomic<Int>(0)

    /// - Parameter background: run each computation at nice 10 (on Linux), so that normal-priority threads —
    ///   another hasher's, the event loops — get the cores first when there are not enough for everyone.
    public init(maxConcurrent: Int = 2, maxWaiting: Int = 64, maxCost: Int = 14, background: Bool = false) {
        self.maxCost = maxCost
        self.background = background
        self.limiter = AsyncLimiter(limit: maxConcurrent, maxWaiting: maxWaiting)
    }

    /// How many verifications were started since this hasher was made (for metrics and tests).
    public var verificationCount: Int { verifications.load(ordering: .relaxed) }

    /// Hashes a secret as `$2b$` with the given cost.
    public func hash(_ secret: String, cost: Int = PasswordHasher.defaultCost) async throws(PasswordError) -> String {
        try Self.checkSecret(secret)
        guard (4...31).contains(cost) else { throw .costOutOfRange(cost) }
        return try await run { Bcrypt.hash(secret, cost: UInt8(cost)) }
    }

    /// Whether `secret` matches `hash`. Refuses secrets bcrypt cannot represent and hashes above `maxCost`.
    public func verify(_ secret: String, against hash: BcryptHash) async throws(PasswordError) -> Bool {
        try Self.checkSecret(secret)
        guard hash.cost <= maxCost else { throw .costAboveLimit(hash.cost, limit: maxCost) }
        let normalized = hash.normalized
        verifications.add(1, ordering: .relaxed)
        return try await run { Bcrypt.verify(secret, hash: normalized) }
    }

    /// Throws when a secret is longer than bcrypt's 72 bytes or contains a NUL byte.
    public static func checkSecret(_ secret: String) throws(PasswordError) {
        if secret.utf8.count > maxSecretBytes { throw .secretTooLong(secret.utf8.count) }
        if secret.utf8.contains(0) { throw .secretContainsNUL }
    }

    private func run<T: Sendable>(_ work: @escaping @Sendable () -> T) async throws(PasswordError) -> T {
        guard await limiter.acquire() else { throw .busy }
        defer { limiter.release() }
        let background = background
        return await DedicatedThread.run(name: background ? "comfygate-bcrypt-bg" : "comfygate-bcrypt") {
            if background { Self.lowerCurrentThreadPriority() }
            return work()
        }
    }

    /// The nice value of background computations: CFS then gives a normal thread about ten times their share.
    static let backgroundNice: Int32 = 10

    /// Lowers the priority of the calling thread only (on Linux a nice value belongs to a thread; each
    /// computation has a new thread, so nothing else inherits it). Elsewhere the thread keeps its priority.
    private static func lowerCurrentThreadPriority() {
        #if os(Linux)
            _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, backgroundNice)
        #endif
    }
}

/// Why a password or token could not be hashed or checked.
public enum PasswordError: Error, Equatable, CustomStringConvertible {
    case secretTooLong(Int)
    case secretContainsNUL
    case costOutOfRange(Int)
    case costAboveLimit(Int, limit: Int)
    /// Too many bcrypt computations are already waiting.
    case busy

    public var description: String {
        switch self {
        case .secretTooLong(let count):
            "the secret is \(count) bytes long; bcrypt uses only the first 72, so it is refused"
        case .secretContainsNUL: "the secret contains a NUL byte, which bcrypt cannot hash"
        case .costOutOfRange(let cost): "bcrypt cost \(cost) is out of range (4 to 31)"
        case .costAboveLimit(let cost, let limit):
            "bcrypt cost \(cost) is above the configured limit of \(limit)"
        case .busy: "too many password checks are in progress; try again shortly"
        }
    }
}

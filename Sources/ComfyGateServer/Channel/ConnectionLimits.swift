public import ComfyGateCore
import Logging
public import NIOCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The limits every client connection lives under: how many may be open at once, and how long a client may
/// take to send a request head, to send more of a body the gateway is ready to read, and to start its next
/// request on a kept-alive connection.
public struct ConnectionLimits: Sendable, Equatable {
    public var maxConnections: Int
    public var requestHeadTimeout: TimeAmount
    public var requestBodyTimeout: TimeAmount
    public var keepAliveTimeout: TimeAmount

    /// The configured limits; without `max_connections`, the cap follows from the process's file-descriptor limit.
    public init(configuration: GatewayConfiguration, fileDescriptorLimit: Int = FileDescriptorLimit.current) {
        self.maxConnections = configuration.maxConnections ?? Self.defaultMaxConnections(fileDescriptorLimit: fileDescriptorLimit)
        self.requestHeadTimeout = .milliseconds(Int64(configuration.requestHeadTimeout * 1000))
        self.requestBodyTimeout = .milliseconds(Int64(configuration.requestBodyTimeout * 1000))
        self.keepAliveTimeout = .milliseconds(Int64(configuration.keepAliveTimeout * 1000))
    }

    /// Descriptors kept free for everything but client connections: the store, logs, the runtime's own.
    static let reservedDescriptors = 64
    /// The default cap never goes above this, however high the descriptor limit.
    static let defaultCeiling = 16_384

    /// Half of the descriptors left after the reserve — each client connection may hold one to ComfyUI too —
    /// at least 8 and at most ``defaultCeiling``.
    public static func defaultMaxConnections(fileDescriptorLimit: Int) -> Int {
        min(defaultCeiling, max(8, (fileDescriptorLimit - reservedDescriptors) / 2))
    }

    /// The shortest of the timeouts: the timer of an idle connection wakes at least this often.
    var shortestTimeout: TimeAmount {
        min(requestHeadTimeout, min(requestBodyTimeout, keepAliveTimeout))
    }
}

/// The process's limit on open file descriptors (`RLIMIT_NOFILE`).
public enum FileDescriptorLimit {
    /// The soft limit now in force.
    public static var current: Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        return clamped(limit.rlim_cur)
    }

    /// Raises the soft limit to the hard limit. Returns the limit before and after (equal when it was already
    /// as high as allowed, or the raise was refused).
    public static func raiseToHardLimit() -> (before: Int, after: Int) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return (current, current) }
        let before = clamped(limit.rlim_cur)
        guard limit.rlim_cur < limit.rlim_max else { return (before, before) }
        var raised = limit
        raised.rlim_cur = limit.rlim_max
        guard setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 else { return (before, before) }
        return (before, current)
    }

    /// A limit as a count (unlimited reads as `Int32.max`).
    private static func clamped(_ value: rlim_t) -> Int {
        value > rlim_t(Int32.max) ? Int(Int32.max) : Int(value)
    }
}

/// Counts open client connections against the cap, and says so in the log (at most once a minute) while
/// connections are being refused.
final class OpenConnections: Sendable {
    let limit: Int
    private let count = Atomic<Int>(0)
    private let refusedSinceReport = Atomic<Int>(0)
    private let lastReport = Mutex<ContinuousClock.Instant?>(nil)
    private let logger: Logger

    init(limit: Int, logger: Logger) {
        self.limit = limit
        self.logger = logger
    }

    /// Takes a place for a new connection; false at the cap.
    func open() -> Bool {
        var current = count.load(ordering: .relaxed)
        while current < limit {
            let (exchanged, original) = count.compareExchange(
                expected: current, desired: current + 1, successOrdering: .acquiringAndReleasing, failureOrdering: .relaxed
            )
            if exchanged { return true }
            current = original
        }
        noteRefusal()
        return false
    }

    /// Gives the place back when the connection has closed.
    func close() {
        count.subtract(1, ordering: .acquiringAndReleasing)
    }

    /// Connections open now.
    var openCount: Int { count.load(ordering: .relaxed) }

    private func noteRefusal() {
        let refused = refusedSinceReport.wrappingAdd(1, ordering: .relaxed).newValue
        let now = ContinuousClock.now
        let due = lastReport.withLock { last in
            guard last.map({ last in now - last >= .seconds(60) }) ?? true else { return false }
            last = now
            return true
        }
        guard due else { return }
        refusedSinceReport.store(0, ordering: .relaxed)
        logger.warning(
            "connection cap reached: new connections are closed until others end",
            metadata: ["max_connections": "\(limit)", "refused": "\(refused)"]
        )
    }
}

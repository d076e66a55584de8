import ComfyGatePolicy
import CoreMetrics
import Prometheus
import Synchronization

/// The gateway's metrics, exposed at `GET /metrics` in Prometheus' text format.
///
/// Each gateway keeps its own Prometheus registry and makes its metrics through swift-metrics with a factory bound to
/// it, never through the process-wide `MetricsSystem`: one process can run several gateways (the tests do), and
/// each counts only its own requests. Metrics with labels are made once per label values and kept, so counting a
/// request takes a dictionary look-up and an atomic add, and allocates nothing.
///
/// The job queue reports through ``queueDepths(_:)``, ``jobWaited(user:seconds:)``, ``jobDispatched(backend:)``,
/// ``dispatchFailed(backend:reason:)`` and ``gpuSeconds(user:seconds:)``; the upstream watch through
/// ``backendHealth(name:up:)``.
public final class GatewayMetrics: Sendable {
    /// Which of the gateway's request paths answered a request.
    enum Via: String, CaseIterable, Sendable {
        /// The event-loop fast path (``FastProxyHandler``).
        case fast
        /// The application's router and middleware.
        case router
        /// A websocket handshake (``WebSocketUpgrader``).
        case websocket
    }

    /// The registry the metrics live in, this gateway's own; `GET /metrics` writes it out.
    private let registry: PrometheusCollectorRegistry

    private let durations: [Via: CoreMetrics.Timer]
    private let requests: Family<RequestKey, CoreMetrics.Counter>
    private let authenticationFailures: [AuthenticationFailure: CoreMetrics.Counter]
    private let openWebSockets: CoreMetrics.Meter
    private let queueDepth: Family<String, CoreMetrics.Gauge>
    /// The users whose queue depth was last reported above 0: set back to 0 when they leave the queue.
    private let queuedUsers = Mutex<Set<String>>([])
    private let waits: Family<String, CoreMetrics.Recorder>
    private let dispatches: Family<String, CoreMetrics.Counter>
    private let dispatchFailures: Family<BackendFailure, CoreMetrics.Counter>
    private let backendUp: Family<String, CoreMetrics.Gauge>
    private let gpu: Family<String, CoreMetrics.FloatingPointCounter>

    static let requestsName = "comfygate_http_requests_total"
    static let durationName = "comfygate_http_request_duration_seconds"
    static let waitName = "comfygate_job_wait_seconds"

    public init() {
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets[Self.durationName] = [
            .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
            .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
            .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30),
        ]
        factory.valueHistogramBuckets[Self.waitName] = [0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600]
        let made = factory
        durations = Dictionary(uniqueKeysWithValues: Via.allCases.map { via in
            (via, CoreMetrics.Timer(label: Self.durationName, dimensions: [("via", via.rawValue)], factory: made))
        })
        requests = Family { key in
            CoreMetrics.Counter(
                label: Self.requestsName, dimensions: [("route", key.route.rawValue), ("status", String(key.status))], factory: made)
        }
        authenticationFailures = Dictionary(uniqueKeysWithValues: AuthenticationFailure.allCases.map { kind in
            (kind, CoreMetrics.Counter(label: "comfygate_auth_failures_total", dimensions: [("kind", kind.rawValue)], factory: made))
        })
        openWebSockets = CoreMetrics.Meter(label: "comfygate_websockets_open", factory: made)
        queueDepth = Family { CoreMetrics.Gauge(label: "comfygate_job_queue_depth", dimensions: [("user", $0)], factory: made) }
        waits = Family { CoreMetrics.Recorder(label: Self.waitName, dimensions: [("user", $0)], aggregate: true, factory: made) }
        dispatches = Family { CoreMetrics.Counter(label: "comfygate_backend_dispatches_total", dimensions: [("backend", $0)], factory: made) }
        dispatchFailures = Family { key in
            CoreMetrics.Counter(
                label: "comfygate_backend_dispatch_failures_total", dimensions: [("backend", key.backend), ("reason", key.reason)],
                factory: made)
        }
        backendUp = Family { CoreMetrics.Gauge(label: "comfygate_backend_up", dimensions: [("backend", $0)], factory: made) }
        gpu = Family { CoreMetrics.FloatingPointCounter(label: "comfygate_gpu_seconds_total", dimensions: [("user", $0)], factory: made) }
    }

    /// The metrics in Prometheus' text exposition format (version 0.0.4).
    public func exposition() -> [UInt8] {
        registry.emitToBuffer()
    }

    // MARK: Requests

    /// A request answered: counted by route class and status, its duration (from its head's arrival to its
    /// answer's end, or to the handshake's decision) by request path.
    func requestAnswered(route: RouteClass, status: Int, via: Via, nanoseconds: Int64) {
        requests[RequestKey(route: route, status: status)].increment()
        durations[via]?.recordNanoseconds(nanoseconds)
    }

    /// A request refused for its credential, or a sign-in refused.
    func authenticationFailed(_ kind: AuthenticationFailure) {
        authenticationFailures[kind]?.increment()
    }

    func webSocketOpened() { openWebSockets.increment() }

    func webSocketClosed() { openWebSockets.decrement() }

    // MARK: Jobs and backends

    /// The jobs waiting in the gateway, per user (a user not listed has none).
    public func queueDepths(_ byUser: [String: Int]) {
        let left = queuedUsers.withLock { users in
            defer { users = Set(byUser.keys) }
            return users.subtracting(byUser.keys)
        }
        for user in left { queueDepth[user].record(0) }
        for (user, count) in byUser { queueDepth[user].record(count) }
    }

    /// A job handed to a backend after waiting `seconds` in the gateway.
    public func jobWaited(user: String, seconds: Double) {
        waits[user].record(seconds)
    }

    /// A job a backend accepted.
    public func jobDispatched(backend: String) {
        dispatches[backend].increment()
    }

    /// A job a backend did not take: `reason` is a short fixed word (`refused`, `unreachable`).
    public func dispatchFailed(backend: String, reason: String) {
        dispatchFailures[BackendFailure(backend: backend, reason: reason)].increment()
    }

    /// Whether a backend answers.
    public func backendHealth(name: String, up: Bool) {
        backendUp[name].record(up ? 1 : 0)
    }

    /// GPU time a finished job of `user` took.
    public func gpuSeconds(user: String, seconds: Double) {
        gpu[user].increment(by: seconds)
    }

    // MARK: Labelled metrics

    private struct RequestKey: Hashable, Sendable {
        let route: RouteClass
        let status: Int
    }

    private struct BackendFailure: Hashable, Sendable {
        let backend: String
        let reason: String
    }

    /// The metrics of one name, one per label values, each made on first use and kept.
    private final class Family<Key: Hashable & Sendable, Metric: Sendable>: Sendable {
        private let made = Mutex<[Key: Metric]>([:])
        private let make: @Sendable (Key) -> Metric

        init(_ make: @escaping @Sendable (Key) -> Metric) {
            self.make = make
        }

        subscript(key: Key) -> Metric {
            made.withLock { made in
                if let metric = made[key] { return metric }
                let metric = make(key)
                made[key] = metric
                return metric
            }
        }
    }
}

/// Why a credential or sign-in was refused, as `comfygate_auth_failures_total` counts it.
enum AuthenticationFailure: String, CaseIterable, Sendable {
    /// No credential where one is needed.
    case missing
    /// An `Authorization` header the gateway cannot read.
    case malformed
    /// A token that matches none.
    case unknownToken = "unknown_token"
    case revokedToken = "revoked_token"
    case expiredToken = "expired_token"
    /// A credential of a disabled user.
    case disabledUser = "disabled_user"
    /// A session cookie of no open session: unknown, signed out, or past its idle or absolute timeout.
    case invalidSession = "invalid_session"
    /// Too many unknown tokens from the client's address.
    case throttled
    /// The token checks' bcrypt queue was full.
    case busy
    /// A sign-in with a wrong user name or password.
    case badPassword = "bad_password"
    /// A sign-in refused after too many failed ones.
    case loginThrottled = "login_throttled"
}

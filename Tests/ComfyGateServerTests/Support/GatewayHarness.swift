import AsyncHTTPClient
import ComfyGateCore
@testable import ComfyGateServer
import ComfyGateSQLite
import ComfyGateTestSupport
import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// A running gateway on `127.0.0.1:<ephemeral>` in front of a ComfyUI stand-in, with a fresh SQLite store.
struct GatewayHarness: Sendable {
    let port: Int
    let standIn: ComfyUIStandIn
    /// The store as the gateway sees it (cached): writes through it take effect at once.
    let store: any GatewayStore
    /// The database under the cache, as another process (the CLI) would write to it.
    let databaseStore: SQLiteStore
    let accounts: AccountService
    let clock: TestClock
    /// The gateway's metrics (nil with `metrics = false`), readable after it stopped.
    let metrics: GatewayMetrics?
    /// Starts the gateway's graceful shutdown, as SIGTERM does.
    let shutdown: @Sendable () async -> Void

    /// The requests ComfyUI received, less the gateway's own question at start whether ComfyUI runs with
    /// `--multi-user` (`GET /users`), its job queue's own requests and its watch whether ComfyUI answers: the
    /// requests the test caused.
    var comfyUIRequests: [ComfyUIStandIn.RecordedRequest] {
        standIn.recordedRequests.filter {
            !($0.method == "GET" && $0.path == "/users")
                && !["comfygate-jobs", "comfygate-watch"].contains($0.headerValues("User-Agent").first ?? "")
        }
    }

    /// The websockets ComfyUI accepted, less the job queue's own: those the test's clients caused.
    var comfyUIWebSockets: [ComfyUIStandIn.RecordedWebSocket] {
        standIn.recordedWebSockets.filter { socket in
            !socket.handshakeHeaders.contains { $0.name.lowercased() == "user-agent" && $0.value == "comfygate-jobs" }
        }
    }

    var baseURL: String { "http://127.0.0.1:\(port)" }
    var webSocketURL: String { "ws://127.0.0.1:\(port)" }

    /// Creates a user with a password (bcrypt cost 4 to keep tests quick) and one native token.
    func makeUser(_ name: String, role: Role = .user, password: String = "correct-horse-battery") async throws -> (user: User, token: String) {
        let hash = try await accounts.hasher.hash(password, cost: 4)
        let user = User(name: name, role: role, passwordHash: hash, createdAt: clock.now())
        try await store.insertUser(user)
        let token = try await accounts.createToken(userName: name, name: "test", expiresIn: nil)
        return (user, token.token)
    }
}

/// A clock tests move by hand, so timeouts are tested without sleeping.
final class TestClock: Sendable {
    private let current = Mutex(Date())

    func now() -> Date { current.withLock { $0 } }

    func advance(by seconds: TimeInterval) { current.withLock { $0 = $0.addingTimeInterval(seconds) } }
}

/// Runs `body` with a gateway in front of a stand-in. The gateway is shut down gracefully afterwards.
/// - Parameters:
///   - wrapStore: what the gateway gets instead of the SQLite store (a store that fails, say).
///   - logger: the gateway's logger (by default it logs only critical events).
func withGateway<T: Sendable>(
    standIn options: ComfyUIStandIn.Options = .init(),
    upstream: String? = nil,
    configure: @Sendable (inout GatewayConfiguration) -> Void = { _ in },
    wrapStore: @Sendable (SQLiteStore) -> any GatewayStore = { $0 },
    logger: Logger? = nil,
    _ body: @Sendable (GatewayHarness) async throws -> T
) async throws -> T {
    try await withComfyUIStandIn(options) { standIn in
        try await withGateway(
            in: standIn, store: try SQLiteStore.inMemory(), upstream: upstream, configure: configure,
            wrapStore: wrapStore, logger: logger, body)
    }
}

/// Runs `body` with a gateway over `store` in front of a stand-in that outlives it: what a restart of the
/// gateway needs (a second call with the same stand-in and a store on the same file).
/// - Parameter webSocketBackends: the backends client websockets are connected to (nil: the upstream alone).
func withGateway<T: Sendable>(
    in standIn: ComfyUIStandIn,
    store: SQLiteStore,
    upstream: String? = nil,
    configure: @Sendable (inout GatewayConfiguration) -> Void = { _ in },
    wrapStore: @Sendable (SQLiteStore) -> any GatewayStore = { $0 },
    logger: Logger? = nil,
    webSocketBackends: WebSocketBackends? = nil,
    _ body: @Sendable (GatewayHarness) async throws -> T
) async throws -> T {
    let clock = TestClock()
    var configuration = GatewayConfiguration(
        listenHost: "127.0.0.1",
        listenPort: 0,
        upstream: URL(string: upstream ?? standIn.baseURL)!
    )
    configuration.upstreamTimeout = 10
    let dataDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("comfygate-test-" + UUID().uuidString)
    configuration.dataDirectory = dataDirectory.path
    defer { try? FileManager.default.removeItem(at: dataDirectory) }
    configure(&configuration)
    var components = Gateway.Components(configuration: configuration, store: wrapStore(store), now: { clock.now() })
    components.webSocketBackends = webSocketBackends
    let logger = logger ?? {
        var logger = Logger(label: "gateway-test")
        logger.logLevel = .critical
        return logger
    }()
    let (ports, continuation) = AsyncStream<Int>.makeStream()
    let application = try await Gateway.buildApplication(
        components: components,
        logger: logger,
        onServerRunning: { channel in
            continuation.yield(channel.localAddress?.port ?? 0)
            continuation.finish()
        }
    )
    let serviceGroup = ServiceGroup(configuration: .init(services: [application], gracefulShutdownSignals: [], logger: logger))
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await serviceGroup.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next(), port > 0 else {
            await serviceGroup.triggerGracefulShutdown()
            throw HarnessError.gatewayDidNotStart
        }
        let harness = GatewayHarness(
            port: port, standIn: standIn, store: components.store, databaseStore: store,
            accounts: AccountService(store: components.store, hasher: components.hasher, now: { clock.now() }), clock: clock,
            metrics: components.metrics,
            shutdown: { await serviceGroup.triggerGracefulShutdown() }
        )
        do {
            let result = try await body(harness)
            await serviceGroup.triggerGracefulShutdown()
            try await group.waitForAll()
            return result
        } catch {
            await serviceGroup.triggerGracefulShutdown()
            try? await group.waitForAll()
            throw error
        }
    }
}

enum HarnessError: Error {
    case gatewayDidNotStart
}

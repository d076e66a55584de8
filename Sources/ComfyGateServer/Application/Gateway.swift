import ComfyGateAssets
public import ComfyGateCore
public import ComfyGatePolicy
public import Foundation
public import Hummingbird
import HummingbirdCore
public import Logging
public import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle

/// Builds the gateway application: routes, authentication, proxy and websocket relay over one store, in front of
/// one or more ComfyUI backends.
public enum Gateway {
    /// The parts the gateway is made of, shared by the HTTP routes and the websocket upgrade.
    public struct Components: Sendable {
        public let configuration: GatewayConfiguration
        /// The store, behind a ``CachedGatewayStore``: writes through it take effect at once, writes by other
        /// processes within a second.
        public let store: any GatewayStore
        /// bcrypt for imported tokens (and hashing by administration), at a lower thread priority.
        public let hasher: PasswordHasher
        /// bcrypt for password logins, apart from ``hasher``: token guesses never take a login's turn.
        public let loginHasher: PasswordHasher
        public let verifier: CredentialVerifier
        public let sessions: SessionManager
        /// Who may do what, with the prompt and file owners it decides from.
        public let policy: AccessPolicy
        /// This gateway's metrics, in a registry of its own; nil when `metrics = false`.
        public let metrics: GatewayMetrics?
        let now: @Sendable () -> Date
        /// The backends client websockets are connected to, and who is given the open websockets to join backends
        /// to later (nil: the configured upstream alone).
        var webSocketBackends: WebSocketBackends?

        /// - Parameters:
        ///   - now: the clock, replaceable in tests.
        public init(
            configuration: GatewayConfiguration,
            store: any GatewayStore,
            now: @escaping @Sendable () -> Date = { Date() }
        ) {
            self.configuration = configuration
            let store = CachedGatewayStore(store)
            self.store = store
            self.metrics = configuration.metrics ? GatewayMetrics() : nil
            self.policy = AccessPolicy(rules: configuration.policy, servesMetrics: configuration.metrics)
            self.now = now
            self.hasher = PasswordHasher(maxConcurrent: configuration.bcryptConcurrency, background: true)
            self.loginHasher = PasswordHasher(maxConcurrent: configuration.bcryptConcurrency)
            self.verifier = CredentialVerifier(
                store: store, hasher: hasher, cacheLifetime: configuration.tokenCacheLifetime, now: now
            )
            self.sessions = SessionManager(
                store: store, idleTimeout: configuration.sessionIdleTimeout,
                absoluteTimeout: configuration.sessionAbsoluteTimeout, now: now
            )
        }
    }

    /// Builds the application. The backends' transports are shut down with it.
    /// - Parameters:
    ///   - components: the store, transport and services the gateway uses.
    ///   - onServerRunning: called with the bound channel once the gateway listens (tests read the port here).
    public static func buildApplication(
        components: Components,
        logger: Logger,
        onServerRunning: (@Sendable (any Channel) async -> Void)? = nil
    ) async throws -> some ApplicationProtocol {
        let configuration = components.configuration
        let cookie = SessionCookie(secure: configuration.usesSecureCookies, maxAge: Int(configuration.sessionAbsoluteTimeout))
        let clientAddress = ClientAddressResolver(trustedProxies: Set(configuration.trustedProxies))
        let originPolicy = OriginPolicy(publicOrigin: configuration.publicURL.map(Self.origin(of:)))
        let pool = BackendPool(configuration: configuration) { url in
            UpstreamRequestHeaders(
                upstreamAuthority: Self.authority(of: url), upstreamOrigin: Self.origin(of: url), sessionCookieName: cookie.name,
                clientAddress: clientAddress, publicScheme: configuration.publicURL?.scheme)
        }
        let fileLocations = FileLocations(isShared: pool.isShared)
        let backendRouter = BackendRouter(pool: pool, fileLocations: fileLocations)
        let authenticator = RequestAuthenticator(
            verifier: components.verifier, sessions: components.sessions, cookie: cookie, clientAddress: clientAddress,
            scrapeToken: configuration.metricsToken, metrics: components.metrics, logger: logger
        )
        let observer = RequestObserver(
            metrics: components.metrics, accessLog: configuration.accessLog ? logger : nil, clientAddress: clientAddress)
        let decoyHash = try BcryptHash(
            parsing: PasswordHasher.defaultCost == 12
                ? Self.decoyHashCost12 : try await components.loginHasher.hash(TokenFormat.randomID(), cost: PasswordHasher.defaultCost)
        )

        // ComfyUI's own users (saved workflows, settings) live on the first backend.
        let comfyUIUsers = ComfyUIUsers(transport: pool.members[0].transport, store: components.store, logger: logger)
        let openWebSockets = OpenWebSockets(authenticator: authenticator, metrics: components.metrics, logger: logger)
        let isolation = Isolation(policy: components.policy, store: components.store, logger: logger, now: components.now)
        try await isolation.loadOwners()
        let dataDirectory = URL(fileURLWithPath: configuration.dataDirectory)
        try FileManager.default.createDirectory(at: dataDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let placement = InputPlacement(blobs: try BlobStore(root: dataDirectory.appendingPathComponent("assets")))
        let listenerClientID = "comfygate-jobs-" + UUID().uuidString.lowercased()
        let jobs = JobQueue(
            store: components.store, pool: pool, placement: placement, fileLocations: fileLocations,
            dispatchLease: configuration.databaseURL == nil ? 0 : configuration.jobs.dispatchLease,
            settings: configuration.jobs, roleQuotas: configuration.quotas, ownership: components.policy.ownership,
            counts: isolation.waitingJobs, notices: JobNotices(sockets: openWebSockets), events: JobEvents(),
            listenerClientID: listenerClientID, logger: logger, now: components.now, metrics: components.metrics
        )
        try await jobs.load()
        let assets = AssetLibrary(placement: placement, store: components.store, maxUploadBytes: AssetLibrary.defaultMaxUploadBytes)

        let renderer = try PageRenderer(siteName: configuration.siteName)
        let router = Router(context: GatewayRequestContext.self)
        let storeHealth = StoreHealth(logger: logger)
        router.add(middleware: RequestObserverMiddleware(observer: observer))
        router.add(middleware: FailureAnswerMiddleware(storeHealth: storeHealth))
        HealthController(pool: pool, store: components.store, storeHealth: storeHealth).addRoutes(to: router)
        LoginController(
            renderer: renderer,
            login: PasswordLogin(store: components.store, hasher: components.loginHasher, throttle: LoginThrottle(store: components.store), decoyHash: decoyHash),
            sessions: components.sessions, cookie: cookie, originPolicy: originPolicy, store: components.store,
            clientAddress: clientAddress, metrics: components.metrics, logger: logger
        ).addRoutes(to: router)
        router.add(middleware: AuthenticationMiddleware(
            authenticator: authenticator, originPolicy: originPolicy, policy: components.policy, metrics: components.metrics))
        router.add(middleware: WebPages(
            renderer: renderer, store: components.store, accounts: AccountService(store: components.store, hasher: components.loginHasher),
            sessions: components.sessions, cookie: cookie, loginHasher: components.loginHasher, jobs: jobs, pool: pool,
            configuration: configuration, clientAddress: clientAddress
        ))
        router.add(middleware: V2Door(
            store: components.store, jobs: jobs, library: assets, isolation: isolation, pool: pool,
            publicScheme: configuration.publicURL?.scheme, now: components.now
        ))
        router.add(middleware: UpstreamProxy(
            router: backendRouter, placement: placement, isolation: isolation, comfyUIUsers: comfyUIUsers, jobs: jobs))

        let webSocket = WebSocketUpgrader.Dependencies(
            authenticator: authenticator,
            originPolicy: originPolicy,
            policy: components.policy,
            isolation: isolation,
            openWebSockets: openWebSockets,
            upstreamHeaders: pool.members[0].headers,
            upstreams: try webSocketUpstreams(components: components, pool: pool, openWebSockets: openWebSockets),
            observer: observer,
            logger: logger
        )
        let fastPath = FastProxyHandler.Dependencies(
            authenticator: authenticator, originPolicy: originPolicy, router: backendRouter, policy: components.policy,
            comfyUIUsers: comfyUIUsers, observer: observer, logger: logger)
        let limits = ConnectionLimits(configuration: configuration)
        let openConnections = OpenConnections(limit: limits.maxConnections, logger: logger)
        logger.info("client connections", metadata: [
            "max_connections": "\(limits.maxConnections)", "request_head_timeout": "\(configuration.requestHeadTimeout)s",
            "request_body_timeout": "\(configuration.requestBodyTimeout)s", "keep_alive_timeout": "\(configuration.keepAliveTimeout)s",
        ])
        let server = HTTPServerBuilder { responder in
            GatewayChannel(
                responder: responder, webSocket: webSocket, fastPath: fastPath, limits: limits, openConnections: openConnections
            )
        }
        return Application(
            router: router,
            server: server,
            configuration: .init(
                address: .hostname(configuration.listenHost, port: configuration.listenPort),
                serverName: nil,
                backlog: 1024,
                reuseAddress: true
            ),
            services: [
                UpstreamTransportService(transports: pool.transports), openWebSockets, comfyUIUsers,
                BackendWatch(pool: pool, store: components.store, replica: Self.replicaName, metrics: components.metrics, logger: logger) {
                    backend, state in
                    switch state {
                    case .down: await jobs.backendWentDown(backend)
                    case .up: await jobs.backendCameUp(backend)
                    case .unknown: break
                    }
                },
                JobQueueService(queue: jobs, pool: pool, clientID: listenerClientID, logger: logger),
            ],
            onServerRunning: onServerRunning ?? { _ in },
            logger: logger
        )
    }

    /// A bcrypt hash, at the default cost, of 32 random bytes nobody kept: checked for unknown users so they take
    /// as long as real ones. A match against it never signs anyone in, so it can be a constant; computing one at
    /// start cost about 0.3 s of cold start.
    static let decoyHashCost12 = "$2b$12$2bpKfMF9UjdLRwBrR81Ne.ku87SuZLaY3p7iF9S64aq16Xd8NqEki"

    /// How this gateway names itself in the store's records of what each replica sees: host, process and a random
    /// part (a restarted process is a new replica).
    static let replicaName = "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)-"
        + UUID().uuidString.prefix(8).lowercased()

    static func authority(of url: URL) -> String {
        let host = url.host ?? "127.0.0.1"
        let bracketed = host.contains(":") ? "[\(host)]" : host
        return url.port.map { "\(bracketed):\($0)" } ?? bracketed
    }

    /// The backends a new client websocket is connected to: the pool's primary, then every other backend whose breaker
    /// is closed and that is not drained (unless the components name others: then they are given the open websockets,
    /// to join backends to them later). A backend that comes back is joined to the sockets already open.
    private static func webSocketUpstreams(
        components: Components, pool: BackendPool, openWebSockets: OpenWebSockets
    ) throws -> @Sendable () -> [UpstreamWebSocketConnector] {
        if let backends = components.webSocketBackends {
            backends.opened(openWebSockets)
            return backends.upstreams
        }
        var connectors: [String: UpstreamWebSocketConnector] = [:]
        for backend in pool.members {
            connectors[backend.name] = try webSocketConnector(for: backend.url, configuration: components.configuration)
        }
        pool.onReturn { [connectors] backend in
            if let connector = connectors[backend.name] { openWebSockets.attach(connector) }
        }
        return { [connectors] in
            let primary = pool.primary
            return ([primary] + pool.members.filter { $0 !== primary && $0.isAvailable }).compactMap { connectors[$0.name] }
        }
    }

    /// Opens client websockets' connections to the ComfyUI backend at `url`, with the configured timeouts and limits.
    /// - Parameter tlsConfiguration: for an https backend (by default the system's trust roots, verified).
    static func webSocketConnector(
        for url: URL, configuration: GatewayConfiguration, tlsConfiguration: TLSConfiguration = .makeClientConfiguration()
    ) throws -> UpstreamWebSocketConnector {
        try UpstreamWebSocketConnector(
            backend: url, connectTimeout: configuration.upstreamConnectTimeout, maxFrameSize: configuration.maxWebSocketFrame,
            closeTimeout: .seconds(10), tlsConfiguration: tlsConfiguration
        )
    }

    /// ComfyUI's websocket, `ws://host:port/prefix/ws` (`wss` behind https).
    static func eventsURL(of url: URL) -> String {
        var prefix = url.path
        while prefix.hasSuffix("/") { prefix.removeLast() }
        return (url.scheme?.lowercased() == "https" ? "wss" : "ws") + "://\(authority(of: url))\(prefix)/ws"
    }

    static func origin(of url: URL) -> String {
        "\(url.scheme ?? "http")://\(authority(of: url))"
    }
}

/// Closes the backends' connections when the application stops.
struct UpstreamTransportService: Service {
    let transports: [any UpstreamTransport]

    func run() async throws {
        try? await gracefulShutdown()
        for transport in transports { await transport.shutdown() }
    }
}

/// Which ComfyUI backends client websockets are connected to, when not the configured upstream alone.
struct WebSocketBackends: Sendable {
    /// The backends for a new client websocket, primary first.
    let upstreams: @Sendable () -> [UpstreamWebSocketConnector]
    /// Given the gateway's open websockets once it is built, to join backends that come back to them.
    let opened: @Sendable (OpenWebSockets) -> Void
}

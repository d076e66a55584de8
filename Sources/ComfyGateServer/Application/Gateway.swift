import ComfyGateAssets
public import ComfyGateCore
public import ComfyGatePolicy
public import Foundation
public import Hummingbird
import HummingbirdCore
public import Logging
public import NIOCore
import NIOPosix
import ServiceLifecycle

/// Builds the gateway application: routes, authentication, proxy and websocket relay over one store.
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
        public let transport: any UpstreamTransport
        /// Who may do what, with the prompt and file owners it decides from.
        public let policy: AccessPolicy
        /// This gateway's metrics, in a registry of its own; nil when `metrics = false`.
        public let metrics: GatewayMetrics?
        let now: @Sendable () -> Date

        /// - Parameters:
        ///   - transport: how ComfyUI is reached; by default ``Gateway/makeTransport(for:)``.
        ///   - now: the clock, replaceable in tests.
        public init(
            configuration: GatewayConfiguration,
            store: any GatewayStore,
            transport: (any UpstreamTransport)? = nil,
            now: @escaping @Sendable () -> Date = { Date() }
        ) {
            self.configuration = configuration
            let store = CachedGatewayStore(store)
            self.store = store
            self.transport = transport ?? Gateway.makeTransport(for: configuration)
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

    /// The transport for the configured upstream: pooled SwiftNIO connections for http, AsyncHTTPClient for https.
    public static func makeTransport(for configuration: GatewayConfiguration) -> any UpstreamTransport {
        if configuration.upstream.scheme?.lowercased() == "https" {
            return HTTPClientTransport(
                upstream: configuration.upstream, connectTimeout: configuration.upstreamConnectTimeout,
                readTimeout: configuration.upstreamTimeout
            )
        }
        return PooledUpstreamTransport(
            upstream: configuration.upstream, connectTimeout: configuration.upstreamConnectTimeout,
            readTimeout: configuration.upstreamTimeout
        )
    }

    /// Builds the application. The transport is shut down with it.
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
        let upstreamAuthority = Self.authority(of: configuration.upstream)
        let upstreamHeaders = UpstreamRequestHeaders(
            upstreamAuthority: upstreamAuthority,
            upstreamOrigin: Self.origin(of: configuration.upstream),
            sessionCookieName: cookie.name,
            clientAddress: clientAddress,
            publicScheme: configuration.publicURL?.scheme
        )
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

        let comfyUIUsers = ComfyUIUsers(transport: components.transport, store: components.store, logger: logger)
        let openWebSockets = OpenWebSockets(authenticator: authenticator, metrics: components.metrics, logger: logger)
        let isolation = Isolation(policy: components.policy, store: components.store, logger: logger, now: components.now)
        try await isolation.loadOwners()
        let backend = ComfyUIBackend(transport: components.transport, name: configuration.upstream.absoluteString)
        let listenerClientID = "comfygate-jobs-" + UUID().uuidString.lowercased()
        let jobs = JobQueue(
            store: components.store, backend: backend,
            settings: configuration.jobs, roleQuotas: configuration.quotas, ownership: components.policy.ownership,
            counts: isolation.waitingJobs, notices: JobNotices(sockets: openWebSockets), events: JobEvents(),
            listenerClientID: listenerClientID, logger: logger, now: components.now, metrics: components.metrics
        )
        try await jobs.load()
        let dataDirectory = URL(fileURLWithPath: configuration.dataDirectory)
        try FileManager.default.createDirectory(at: dataDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let assets = AssetLibrary(
            blobs: try BlobStore(root: dataDirectory.appendingPathComponent("assets")),
            store: components.store, backend: backend, maxUploadBytes: AssetLibrary.defaultMaxUploadBytes
        )

        let renderer = try PageRenderer(siteName: configuration.siteName)
        let router = Router(context: GatewayRequestContext.self)
        let storeHealth = StoreHealth(logger: logger)
        router.add(middleware: RequestObserverMiddleware(observer: observer))
        router.add(middleware: FailureAnswerMiddleware(storeHealth: storeHealth))
        HealthController(
            transport: components.transport,
            upstreamDescription: configuration.upstream.absoluteString,
            store: components.store,
            storeHealth: storeHealth
        ).addRoutes(to: router)
        LoginController(
            renderer: renderer,
            login: PasswordLogin(store: components.store, hasher: components.loginHasher, throttle: LoginThrottle(), decoyHash: decoyHash),
            sessions: components.sessions, cookie: cookie, originPolicy: originPolicy, store: components.store,
            clientAddress: clientAddress, metrics: components.metrics, logger: logger
        ).addRoutes(to: router)
        router.add(middleware: AuthenticationMiddleware(
            authenticator: authenticator, originPolicy: originPolicy, policy: components.policy, metrics: components.metrics))
        router.add(middleware: WebPages(
            renderer: renderer, store: components.store, accounts: AccountService(store: components.store, hasher: components.loginHasher),
            sessions: components.sessions, cookie: cookie, loginHasher: components.loginHasher, jobs: jobs, backend: backend,
            configuration: configuration, clientAddress: clientAddress
        ))
        router.add(middleware: V2Door(
            store: components.store, jobs: jobs, library: assets, isolation: isolation, backend: backend,
            publicScheme: configuration.publicURL?.scheme, now: components.now
        ))
        router.add(middleware: UpstreamProxy(transport: components.transport, headers: upstreamHeaders, isolation: isolation, comfyUIUsers: comfyUIUsers, jobs: jobs))

        let webSocket = WebSocketUpgrader.Dependencies(
            authenticator: authenticator,
            originPolicy: originPolicy,
            policy: components.policy,
            isolation: isolation,
            openWebSockets: openWebSockets,
            upstreamHeaders: upstreamHeaders,
            connector: UpstreamWebSocketConnector(
                host: configuration.upstream.host ?? "127.0.0.1",
                authority: upstreamAuthority,
                port: configuration.upstream.port ?? (configuration.upstream.scheme == "https" ? 443 : 80),
                connectTimeout: configuration.upstreamConnectTimeout,
                maxFrameSize: configuration.maxWebSocketFrame,
                closeTimeout: .seconds(10)
            ),
            observer: observer,
            logger: logger
        )
        let fastPath = (components.transport as? PooledUpstreamTransport).map { transport in
            FastProxyHandler.Dependencies(
                authenticator: authenticator, originPolicy: originPolicy, upstreamHeaders: upstreamHeaders, transport: transport,
                policy: components.policy, comfyUIUsers: comfyUIUsers, observer: observer, logger: logger
            )
        }
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
                UpstreamTransportService(transport: components.transport), openWebSockets, comfyUIUsers,
                UpstreamWatch(
                    transport: components.transport, upstreamDescription: configuration.upstream.absoluteString,
                    metrics: components.metrics, logger: logger),
                JobQueueService(
                    queue: jobs, eventsURL: Self.eventsURL(of: configuration.upstream), clientID: listenerClientID, logger: logger),
            ],
            onServerRunning: onServerRunning ?? { _ in },
            logger: logger
        )
    }

    /// A bcrypt hash, at the default cost, of 32 random bytes nobody kept: checked for unknown users so they take
    /// as long as real ones. A match against it never signs anyone in, so it can be a constant; computing one at
    /// start cost about 0.3 s of cold start.
    static let decoyHashCost12 = "$2b$12$2bpKfMF9UjdLRwBrR81Ne.ku87SuZLaY3p7iF9S64aq16Xd8NqEki"

    static func authority(of url: URL) -> String {
        let host = url.host ?? "127.0.0.1"
        let bracketed = host.contains(":") ? "[\(host)]" : host
        return url.port.map { "\(bracketed):\($0)" } ?? bracketed
    }

    /// ComfyUI's websocket, `ws://host:port/ws` (`wss` behind https).
    static func eventsURL(of url: URL) -> String {
        (url.scheme?.lowercased() == "https" ? "wss" : "ws") + "://\(authority(of: url))/ws"
    }

    static func origin(of url: URL) -> String {
        "\(url.scheme ?? "http")://\(authority(of: url))"
    }
}

/// Closes the upstream connections when the application stops.
struct UpstreamTransportService: Service {
    let transport: any UpstreamTransport

    func run() async throws {
        try? await gracefulShutdown()
        await transport.shutdown()
    }
}

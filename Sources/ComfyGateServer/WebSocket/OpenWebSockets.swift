import HTTPTypes
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// The relayed websockets and the credentials they were opened with. Every second the credentials are checked
/// again, so revoking a token, ending a session or disabling a user ends that caller's open websockets within
/// about a second (writes by another process reach the gateway's cache within a second more).
final class OpenWebSockets: Service, Sendable {
    /// What a websocket was opened with.
    struct Entry: Sendable {
        let userID: String
        let userName: String
        let headers: HTTPFields
        let query: String?
        let peer: String?
        /// What the client asked ComfyUI for: what a backend that joins later is asked for too.
        let upstreamRequest: UpstreamWebSocketConnector.Request
        let relay: NIOLoopBound<WebSocketRelay>
    }

    private let authenticator: RequestAuthenticator
    /// Counts the open websockets.
    private let metrics: GatewayMetrics?
    private let logger: Logger
    private let entries = Mutex<[Int: Entry]>([:])
    private let nextID = Atomic<Int>(0)

    init(authenticator: RequestAuthenticator, metrics: GatewayMetrics?, logger: Logger) {
        self.authenticator = authenticator
        self.metrics = metrics
        self.logger = logger
    }

    /// Adds a websocket; it is forgotten when its connection closes.
    func add(_ entry: Entry, closeFuture: EventLoopFuture<Void>) {
        let id = nextID.wrappingAdd(1, ordering: .relaxed).newValue
        entries.withLock { $0[id] = entry }
        metrics?.webSocketOpened()
        closeFuture.whenComplete { [self] _ in
            _ = entries.withLock { $0.removeValue(forKey: id) }
            metrics?.webSocketClosed()
        }
    }

    var count: Int { entries.withLock { $0.count } }

    /// Sends a text message of the gateway's own to every open websocket of a user.
    func send(_ message: [UInt8], toUser userID: String) {
        for entry in entries.withLock({ $0.values.filter { $0.userID == userID } }) {
            entry.relay.eventLoop.execute { entry.relay.value.deliverGatewayMessage(message) }
        }
    }

    /// Joins a backend to every open websocket that is not connected to it yet (one that came back after they
    /// opened): from then on they carry its events too. Sockets it cannot be joined to go on without it.
    func attach(_ connector: UpstreamWebSocketConnector) {
        for entry in entries.withLock({ Array($0.values) }) {
            connector.join(entry.relay, request: entry.upstreamRequest, logger: logger)
        }
    }

    /// Checks the credentials every second; at shutdown, ends every relay with `1001 going away`.
    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                await self.checkCredentials()
            }
        }
        for entry in entries.withLock({ $0.values }) {
            entry.relay.eventLoop.execute { entry.relay.value.goAway() }
        }
    }

    /// Ends the websockets whose credential is no longer accepted.
    func checkCredentials() async {
        for (id, entry) in entries.withLock({ $0 }) {
            if authenticator.cachedIdentity(headers: entry.headers, query: entry.query) != nil { continue }
            let outcome = try? await authenticator.authenticate(headers: entry.headers, query: entry.query, peer: entry.peer)
            switch outcome {
            case .authenticated, .busy, .throttled, nil:
                continue
            case .anonymous, .refused:
                logger.info("websocket closed: its credential is no longer valid", metadata: ["user": "\(entry.userName)"])
                entries.withLock { _ = $0.removeValue(forKey: id) }
                entry.relay.eventLoop.execute { entry.relay.value.endForPolicy() }
            }
        }
    }
}

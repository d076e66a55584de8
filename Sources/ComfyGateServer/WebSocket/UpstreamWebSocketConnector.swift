import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket

/// Opens websockets to one ComfyUI backend: for a client that is being upgraded (reusing the client's
/// `Sec-WebSocket-Key`, so ComfyUI's `Sec-WebSocket-Accept` is also valid for the client), or as a tributary of a
/// client socket that is already open.
///
/// The backend is a URL as in the configuration: `http` or `https` (TLS with SNI and the certificate verified),
/// host, port (80 or 443 when absent), and a path prefix put before every request path (`http://host/comfy`
/// behind a reverse proxy that serves ComfyUI under `/comfy`).
struct UpstreamWebSocketConnector: Sendable, CustomStringConvertible {
    /// An upstream websocket, ready for frames.
    struct Connection: Sendable {
        let channel: any Channel
        /// ComfyUI's half of the relay, waiting to be paired with the client's.
        let relay: NIOLoopBound<WebSocketRelay>
        /// Headers of ComfyUI's 101 answer.
        let responseHeaders: HTTPHeaders
    }

    /// What a client socket asked ComfyUI for, kept to open its tributaries with.
    struct Request: Sendable {
        /// The path and query as the gateway forwards them (the client's `clientId` in its user's namespace).
        let pathAndQuery: String
        /// The client's handshake headers, cleaned for ComfyUI.
        let headers: HTTPFields
    }

    enum Failure: Error {
        /// ComfyUI answered the handshake without switching protocols.
        case refused
        /// No connection could be made (TCP or TLS); the cause, shortened.
        case unreachable(String)
    }

    /// `ws://host:port/prefix` (`wss://…` for an https backend): names the backend in messages and tells
    /// backends apart on a client socket.
    let description: String

    private let host: String
    /// `host:port` sent as `Host`.
    private let authority: String
    /// `http(s)://host:port`, sent as `Origin` when the client sent one (ComfyUI compares it with `Host`).
    private let origin: String
    private let port: Int
    /// The backend URL's path without its trailing slash, put before every request's path.
    private let pathPrefix: String
    /// TLS for an https backend; nil for http.
    private let tls: NIOSSLContext?
    private let connectTimeout: TimeInterval
    let maxFrameSize: Int
    /// How long a closing websocket may take to finish its close handshake.
    let closeTimeout: TimeAmount

    /// - Parameters:
    ///   - backend: ComfyUI's base URL (`http` or `https`, host, port, path prefix).
    ///   - tlsConfiguration: for an https backend: by default certificates are verified against the system's
    ///     trust roots; tests pass one that trusts their own certificate authority.
    init(
        backend: URL, connectTimeout: TimeInterval, maxFrameSize: Int, closeTimeout: TimeAmount,
        tlsConfiguration: TLSConfiguration = .makeClientConfiguration()
    ) throws {
        let secure = backend.scheme?.lowercased() == "https"
        var path = backend.path
        while path.hasSuffix("/") { path.removeLast() }
        host = backend.host ?? "127.0.0.1"
        port = backend.port ?? (secure ? 443 : 80)
        authority = Gateway.authority(of: backend)
        origin = Gateway.origin(of: backend)
        pathPrefix = path
        tls = secure ? try NIOSSLContext(configuration: tlsConfiguration) : nil
        description = (secure ? "wss://" : "ws://") + authority + path
        self.connectTimeout = connectTimeout
        self.maxFrameSize = maxFrameSize
        self.closeTimeout = closeTimeout
    }

    /// Connects and performs the handshake for `request` with a client's key.
    func connect(_ request: Request, key: String, on eventLoop: any EventLoop) async throws -> Connection {
        var requestHeaders = HTTPHeaders()
        requestHeaders.add(name: "Host", value: authority)
        for field in request.headers {
            requestHeaders.add(name: field.name.rawName, value: field.name == .origin ? origin : field.value)
        }
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: pathPrefix + request.pathAndQuery, headers: requestHeaders)
        let maxFrameSize = self.maxFrameSize
        let closeTimeout = self.closeTimeout
        let backend = description
        let tls = self.tls
        // SNI names a host, never an address: for an address the certificate is checked against the address.
        let serverHostname = host.isIPAddress ? nil : host
        let upgradeResult: EventLoopFuture<UpgradeResult>
        do {
            upgradeResult = try await ClientBootstrap(group: eventLoop)
                .connectTimeout(.milliseconds(Int64(connectTimeout * 1000)))
                .channelOption(.socketOption(.so_reuseaddr), value: 1)
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                // Previews are frames of hundreds of KiB: read them in few large reads, not many 64 KiB ones.
                .channelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 4096, maximum: 1 << 20))
                .connect(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tls {
                            try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverHostname))
                        }
                        let upgrader = NIOTypedWebSocketClientUpgrader<UpgradeResult>(
                            requestKey: key,
                            maxFrameSize: maxFrameSize,
                            enableAutomaticErrorHandling: true,
                            upgradePipelineHandler: { channel, response in
                                channel.eventLoop.makeCompletedFuture {
                                    let relay = WebSocketRelay(masksWrites: true, closeTimeout: closeTimeout, backend: backend)
                                    try channel.pipeline.syncOperations.addHandler(relay)
                                    return .upgraded(Connection(
                                        channel: channel, relay: NIOLoopBound(relay, eventLoop: channel.eventLoop),
                                        responseHeaders: response.headers
                                    ))
                                }
                            }
                        )
                        var configuration = NIOUpgradableHTTPClientPipelineConfiguration(
                            upgradeConfiguration: NIOTypedHTTPClientUpgradeConfiguration(
                                upgradeRequestHead: head,
                                upgraders: [upgrader],
                                notUpgradingCompletionHandler: { channel in
                                    channel.close(promise: nil)
                                    return channel.eventLoop.makeSucceededFuture(.refused)
                                }
                            )
                        )
                        configuration.leftOverBytesStrategy = .forwardBytes
                        return try channel.pipeline.syncOperations.configureUpgradableHTTPClientPipeline(configuration: configuration)
                    }
                }
        } catch {
            let text = "\(error)"
            throw Failure.unreachable(text.contains("connectionRefused") || text.contains("Connection refused") ? "connection refused" : String(text.prefix(200)))
        }
        let result: UpgradeResult
        do {
            result = try await upgradeResult.get()
        } catch let error where error is NIOSSLError || error is NIOSSLExtraError {
            throw Failure.unreachable(String("TLS handshake failed: \(error)".prefix(300)))
        } catch {
            throw Failure.refused
        }
        switch result {
        case .upgraded(let connection): return connection
        case .refused: throw Failure.refused
        }
    }

    private enum UpgradeResult: Sendable {
        case upgraded(Connection)
        case refused
    }

    /// Connects to this backend for an open client socket and attaches the connection to it as a tributary,
    /// unless the socket is connected to this backend already. A backend that cannot be reached or refuses is
    /// skipped (logged at debug): the client socket goes on without it.
    func join(_ client: NIOLoopBound<WebSocketRelay>, request: Request, logger: Logger) {
        let backend = description
        Task {
            do {
                guard try await client.eventLoop.submit({ !client.value.isJoined(to: backend) }).get() else { return }
                let connection = try await connect(request, key: Self.randomKey(), on: client.eventLoop)
                client.eventLoop.execute { client.value.attach(tributary: connection.relay.value) }
            } catch {
                logger.debug("a backend's websocket could not join a client's", metadata: ["upstream": "\(backend)", "error": "\(error)"])
            }
        }
    }

    /// A fresh `Sec-WebSocket-Key` (16 random bytes, base64): a tributary's handshake answers nobody.
    private static func randomKey() -> String {
        Data((0..<16).map { _ in UInt8.random(in: .min ... .max) }).base64EncodedString()
    }
}

extension String {
    /// Whether this is an IPv4 or IPv6 address rather than a host name.
    fileprivate var isIPAddress: Bool {
        (try? SocketAddress(ipAddress: self, port: 0)) != nil
    }
}

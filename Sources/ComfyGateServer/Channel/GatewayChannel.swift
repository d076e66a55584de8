import ComfyGateCore
import Foundation
import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import NIOWebSocket
import ServiceLifecycle

/// The server's per-connection pipeline: HTTP/1.1 for ordinary requests (with `Expect: 100-continue`
/// answered), and a websocket upgrade that joins both ends with a ``WebSocketRelay``. Every connection counts
/// against ``OpenConnections`` (at the cap, a new one is closed at once, unread) and lives under the
/// ``ClientTimeoutHandler``'s timeouts; requests that are not valid HTTP get a 400 from the
/// ``RequestProgressHandler``.
struct GatewayChannel: ServerChildChannel, HTTPChannelHandler {
    enum UpgradeResult: Sendable {
        case http(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>)
        /// A websocket handshake the gateway refused: the answer is written and the connection closed.
        case refusedUpgrade(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>, WebSocketUpgrader.Refusal)
        /// A relayed websocket: both channels, and the client's half of the relay between them.
        case webSocket(client: any Channel, upstream: any Channel, relay: NIOLoopBound<WebSocketRelay>, identity: Identity)
    }

    struct Value: ServerChildChannelValue {
        let result: EventLoopFuture<UpgradeResult>
        let channel: any Channel
    }

    let responder: HTTPChannelHandler.Responder
    let webSocket: WebSocketUpgrader.Dependencies
    /// What the SwiftNIO fast path needs; nil when ComfyUI is reached another way (https).
    let fastPath: FastProxyHandler.Dependencies?
    let limits: ConnectionLimits
    let openConnections: OpenConnections

    /// A connection closed at once because the cap was reached.
    struct OverConnectionCap: Error {}

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        guard openConnections.open() else {
            // Refused cheaply: no handler, nothing read.
            channel.close(promise: nil)
            return channel.eventLoop.makeSucceededFuture(Value(result: channel.eventLoop.makeFailedFuture(OverConnectionCap()), channel: channel))
        }
        let openConnections = openConnections
        channel.closeFuture.whenComplete { _ in openConnections.close() }
        return channel.eventLoop.makeCompletedFuture {
            let timeouts = ClientTimeoutHandler(limits: limits, logger: logger)
            try channel.pipeline.syncOperations.addHandler(timeouts)
            let upgrader = WebSocketUpgrader(dependencies: webSocket)
            var configuration = NIOUpgradableHTTPServerPipelineConfiguration<UpgradeResult>(
                upgradeConfiguration: NIOTypedHTTPServerUpgradeConfiguration(
                    upgraders: [upgrader],
                    notUpgradingCompletionHandler: { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
                            try channel.pipeline.syncOperations.addHandler(ExpectContinueHandler())
                            try channel.pipeline.syncOperations.addHandler(HTTPConnectionStateHandler(logger: logger))
                            if let fastPath {
                                try channel.pipeline.syncOperations.addHandler(FastProxyHandler(dependencies: fastPath))
                            }
                            try channel.pipeline.syncOperations.addHandler(LateWebSocketUpgradeHandler(dependencies: webSocket))
                            let asyncChannel = try NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>(
                                wrappingChannelSynchronously: channel,
                                configuration: .init(isOutboundHalfClosureEnabled: true)
                            )
                            if let refusal = upgrader.refusal { return .refusedUpgrade(asyncChannel, refusal) }
                            return .http(asyncChannel)
                        }
                    }
                )
            )
            configuration.enablePipelining = false
            configuration.enableErrorHandling = false
            configuration.enableResponseHeaderValidation = false
            let result = try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(configuration: configuration)
            try channel.pipeline.syncOperations.addHandler(RequestProgressHandler(timeouts: timeouts, logger: logger))
            return Value(result: result, channel: channel)
        }
    }

    func handle(value: Value, logger: Logger) async {
        do {
            switch try await value.result.get() {
            case .http(let channel):
                await handleHTTP(asyncChannel: channel, logger: logger)
            case .refusedUpgrade(let channel, let refusal):
                try await Self.write(refusal, to: channel)
            case .webSocket(let client, let upstream, let relay, let identity):
                logger.debug("websocket relay started", metadata: ["user": "\(identity.userName)"])
                // The relay runs in the two pipelines; this task only waits for both ends and relays a shutdown.
                await withGracefulShutdownHandler {
                    try? await client.closeFuture.get()
                    try? await upstream.closeFuture.get()
                } onGracefulShutdown: {
                    relay.eventLoop.execute { relay.value.goAway() }
                }
            }
        } catch is OverConnectionCap {
            return
        } catch {
            logger.debug("connection ended before a request was handled", metadata: ["error": "\(error)"])
            value.channel.close(promise: nil)
        }
    }

    /// Answers a refused handshake with its JSON body and closes the connection.
    private static func write(_ refusal: WebSocketUpgrader.Refusal, to channel: NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>) async throws {
        let body = (try? JSONSerialization.data(withJSONObject: refusal.body, options: [.sortedKeys])) ?? Data()
        var headers = refusal.headers
        headers[.contentType] = "application/json"
        headers[.contentLength] = String(body.count)
        headers[.connection] = "close"
        try await channel.executeThenClose { _, outbound in
            try await outbound.write(contentsOf: [
                .head(HTTPResponse(status: refusal.status, headerFields: headers)),
                .body(ByteBuffer(bytes: body)),
                .end(nil),
            ])
        }
    }
}

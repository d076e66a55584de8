import ComfyGateCore
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import NIOWebSocket

/// The server's per-connection pipeline: HTTP/1.1 for ordinary requests (with `Expect: 100-continue`
/// answered), and a websocket upgrade that hands both ends to ``WebSocketRelay``.
struct GatewayChannel: ServerChildChannel, HTTPChannelHandler {
    enum UpgradeResult: Sendable {
        case http(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>)
        case webSocket(
            client: NIOAsyncChannel<WebSocketFrame, WebSocketFrame>,
            upstream: NIOAsyncChannel<WebSocketFrame, WebSocketFrame>,
            identity: Identity
        )
    }

    struct Value: ServerChildChannelValue {
        let result: EventLoopFuture<UpgradeResult>
        let channel: any Channel
    }

    let responder: HTTPChannelHandler.Responder
    let webSocket: WebSocketUpgrader.Dependencies
    let idleTimeout: Duration?
    let webSocketCloseTimeout: Duration

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            let upgrader = WebSocketUpgrader(dependencies: webSocket)
            var configuration = NIOUpgradableHTTPServerPipelineConfiguration<UpgradeResult>(
                upgradeConfiguration: NIOTypedHTTPServerUpgradeConfiguration(
                    upgraders: [upgrader],
                    notUpgradingCompletionHandler: { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
                            try channel.pipeline.syncOperations.addHandler(ExpectContinueHandler())
                            try channel.pipeline.syncOperations.addHandler(
                                HTTPConnectionStateHandler(idleTimeout: idleTimeout, logger: logger)
                            )
                            return .http(
                                try NIOAsyncChannel(
                                    wrappingChannelSynchronously: channel,
                                    configuration: .init(isOutboundHalfClosureEnabled: true)
                                )
                            )
                        }
                    }
                )
            )
            configuration.enablePipelining = false
            configuration.enableErrorHandling = false
            configuration.enableResponseHeaderValidation = false
            let result = try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(configuration: configuration)
            return Value(result: result, channel: channel)
        }
    }

    func handle(value: Value, logger: Logger) async {
        do {
            switch try await value.result.get() {
            case .http(let channel):
                await handleHTTP(asyncChannel: channel, logger: logger)
            case .webSocket(let client, let upstream, let identity):
                var logger = logger
                logger[metadataKey: "user"] = "\(identity.userName)"
                logger.debug("websocket relay started")
                await WebSocketRelay.run(client: client, upstream: upstream, closeTimeout: webSocketCloseTimeout, logger: logger)
            }
        } catch {
            logger.debug("connection ended before a request was handled", metadata: ["error": "\(error)"])
        }
    }
}

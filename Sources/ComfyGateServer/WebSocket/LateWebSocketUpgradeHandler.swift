import Foundation
import HTTPTypes
import HummingbirdCore
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// Upgrades a websocket handshake that arrives on a kept-alive connection after other requests (aiohttp clients
/// reuse pooled connections), which SwiftNIO's upgrade handler — gone after a connection's first request — would
/// leave to the application as an ordinary request.
///
/// It sits after the fast path, so earlier requests on the connection have been answered when a handshake
/// reaches it. The handshake is decided by the same ``WebSocketUpgrader`` as a first-request one; on success the
/// HTTP handlers leave the pipeline and the relay takes their place, otherwise the refusal is answered and the
/// connection closed.
final class LateWebSocketUpgradeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundOut = HTTPResponsePart

    private let dependencies: WebSocketUpgrader.Dependencies
    /// A handshake is being decided: nothing more is read from the connection until it is.
    private var upgrading = false

    init(dependencies: WebSocketUpgrader.Dependencies) {
        self.dependencies = dependencies
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // The handshake's end part (a handshake has no body) arrives while it is decided.
        guard !upgrading else { return }
        guard case .head(let request) = unwrapInboundIn(data), request.headerFields[.upgrade]?.lowercased() == "websocket" else {
            context.fireChannelRead(data)
            return
        }
        upgrading = true
        let upgrader = WebSocketUpgrader(dependencies: dependencies)
        guard let head = try? HTTPRequestHead(request) else {
            return refuse(WebSocketUpgrader.Refusal(status: .badRequest, body: ["error": "not a websocket handshake"]), context: context)
        }
        upgrader.buildUpgradeResponse(channel: context.channel, upgradeRequest: head, initialResponseHeaders: [:])
            .assumeIsolated().whenComplete { [self] result in
                switch result {
                case .success(let headers):
                    accept(headers, upgrader: upgrader, context: context)
                case .failure:
                    refuse(upgrader.refusal ?? WebSocketUpgrader.Refusal(status: .internalServerError, body: ["error": "websocket handshake failed"]),
                        context: context)
                }
            }
    }

    private func accept(_ headers: HTTPHeaders, upgrader: WebSocketUpgrader, context: ChannelHandlerContext) {
        var fields = HTTPFields()
        for header in headers { if let name = HTTPField.Name(header.name) { fields.append(HTTPField(name: name, value: header.value)) } }
        fields[.upgrade] = "websocket"
        fields[.connection] = "upgrade"
        context.writeAndFlush(wrapOutboundOut(.head(HTTPResponse(status: .switchingProtocols, headerFields: fields))), promise: nil)
        do {
            let pipeline = context.pipeline.syncOperations
            let timeouts = try pipeline.handler(type: ClientTimeoutHandler.self)
            for handler in try Self.httpHandlers(in: pipeline) { pipeline.removeHandler(handler, promise: nil) }
            pipeline.removeHandler(context: context, promise: nil)
            _ = try upgrader.installRelay(on: context.channel, after: timeouts)
        } catch {
            context.close(promise: nil)
        }
    }

    /// The handlers of an HTTP/1.1 connection, from the codec to the fast path.
    private static func httpHandlers(in pipeline: ChannelPipeline.SynchronousOperations) throws -> [any RemovableChannelHandler] {
        var handlers: [any RemovableChannelHandler] = [
            try pipeline.handler(type: HTTPResponseEncoder.self),
            try pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self),
            try pipeline.handler(type: RequestProgressHandler.self),
            try pipeline.handler(type: HTTP1ToHTTPServerCodec.self),
            try pipeline.handler(type: ExpectContinueHandler.self),
            try pipeline.handler(type: HTTPConnectionStateHandler.self),
        ]
        if let fastPath = try? pipeline.handler(type: FastProxyHandler.self) { handlers.append(fastPath) }
        return handlers
    }

    /// Answers a refused handshake with its JSON body and closes the connection, as on a first request.
    private func refuse(_ refusal: WebSocketUpgrader.Refusal, context: ChannelHandlerContext) {
        let body = (try? JSONSerialization.data(withJSONObject: refusal.body, options: [.sortedKeys])) ?? Data()
        var headers = refusal.headers
        headers[.contentType] = "application/json"
        headers[.contentLength] = String(body.count)
        headers[.connection] = "close"
        context.write(wrapOutboundOut(.head(HTTPResponse(status: refusal.status, headerFields: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(ByteBuffer(bytes: body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }
}

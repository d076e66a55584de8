import ComfyGateRequestParsing
import Logging
import NIOCore
import NIOHTTP1

/// Follows each request and answer on a plain HTTP connection, right after the HTTP/1.1 parser: tells the
/// ``ClientTimeoutHandler`` where the request stands, and answers what cannot be a valid request — a request
/// target with bytes no client may send raw, or a message the parser rejects (a malformed head, a chunk size
/// that overflows) — with `400` and a closed connection, before anything reaches the application or ComfyUI.
/// A websocket upgrade removes it.
final class RequestProgressHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let timeouts: ClientTimeoutHandler
    private let logger: Logger
    /// A final answer's head is out and its end is not.
    private var answering = false
    /// The connection is being closed after a refusal: nothing more is read or passed on.
    private var refused = false

    init(timeouts: ClientTimeoutHandler, logger: Logger) {
        self.timeouts = timeouts
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refused else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            guard RequestTarget.isAcceptable(head.uri) else {
                return refuse(context, reason: "the request target is not a path (or absolute URL) of printable ASCII")
            }
            timeouts.requestHeadReceived()
        case .body:
            break
        case .end:
            timeouts.requestEnded()
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head) where !(100..<200).contains(head.status.code):
            answering = true
        case .end:
            answering = false
            timeouts.answerCompleted()
        default:
            break
        }
        context.write(data, promise: promise)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard !refused else { return context.fireErrorCaught(error) }
        if error is HTTPParserError {
            refuse(context, reason: "the request is not valid HTTP/1.1")
        }
        // Passed on, so a body being read fails instead of ending as if complete.
        context.fireErrorCaught(error)
    }

    /// Answers 400 (when no answer is under way) and closes the connection.
    private func refuse(_ context: ChannelHandlerContext, reason: String) {
        refused = true
        timeouts.stopTiming()
        logger.debug("bad request: connection closed", metadata: ["reason": "\(reason)"])
        if !answering {
            let body = GatewayResponse.jsonBody(["error": reason])
            let headers: HTTPHeaders = [
                "Content-Type": "application/json", "Content-Length": String(body.readableBytes), "Connection": "close",
            ]
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .badRequest, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
        context.close(promise: nil)
    }
}

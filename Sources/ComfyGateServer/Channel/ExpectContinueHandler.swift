import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// `Expect: 100-continue`, answered only once the request may go on: the application sends ``Proceed`` (through
/// ``GatewayRequestContext/proceedIfExpected(_:)``) after authentication, and only then does the client get
/// `100 Continue` and send its body. A request answered without it — a 401, a 403 — gets `Connection: close`
/// and the connection is closed after the answer, its body never read. Other expectations are dropped.
final class ExpectContinueHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// Sent by the application when the current request may have its body.
    struct Proceed: Sendable {}

    /// The client waits for `100 Continue` before sending the body of the current request.
    private var awaitingContinue = false
    /// The request's end has been read.
    private var requestEnded = true
    /// The answer went out without `100 Continue` before the body was read: close after it.
    private var closeAfterAnswer = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(var head):
            requestEnded = false
            awaitingContinue = false
            guard let expectation = head.headerFields[.expect] else { break }
            if expectation.lowercased() == "100-continue" {
                awaitingContinue = true
            } else {
                head.headerFields[.expect] = nil
                return context.fireChannelRead(wrapInboundOut(.head(head)))
            }
        case .body:
            break
        case .end:
            requestEnded = true
            awaitingContinue = false
        }
        context.fireChannelRead(data)
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard event is Proceed else { return context.triggerUserOutboundEvent(event, promise: promise) }
        if awaitingContinue {
            awaitingContinue = false
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponse(status: .continue))), promise: nil)
        }
        promise?.succeed()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var head) where awaitingContinue && head.status.kind != .informational && !requestEnded:
            // RFC 9110 §10.1.1: a final answer before the body means the body will not be read.
            awaitingContinue = false
            closeAfterAnswer = true
            head.headerFields[.connection] = "close"
            context.write(wrapOutboundOut(.head(head)), promise: promise)
        case .end where closeAfterAnswer:
            closeAfterAnswer = false
            context.writeAndFlush(data, promise: promise)
            context.close(promise: nil)
        default:
            context.write(data, promise: promise)
        }
    }
}

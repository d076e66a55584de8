import NIOCore
import NIOHTTP1
#if canImport(Glibc)
import Glibc
#endif

/// A response body still arriving from ComfyUI, read as the client takes it.
typealias UpstreamBody = NIOThrowingAsyncSequenceProducer<
    ByteBuffer, any Error, NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark, UpstreamBodyDemand
>

/// ComfyUI's answer once its head is in.
enum UpstreamAnswer: Sendable {
    /// The whole body arrived with the head (small answers): it is written to the client in one go.
    case complete(HTTPResponseHead, ByteBuffer?)
    /// The body is still arriving.
    case streaming(HTTPResponseHead, UpstreamBody)
}

/// Takes ComfyUI's answer part by part on the connection's event loop (the gateway's SwiftNIO fast path).
protocol UpstreamAnswerSink: AnyObject {
    func upstreamHead(_ head: HTTPResponseHead)
    func upstreamBody(_ part: ByteBuffer)
    /// The answer is complete; the connection goes back to its pool.
    func upstreamEnd()
    /// The end of a read batch: time to flush.
    func upstreamReadComplete()
    /// The exchange failed; `answered` tells whether the head had already been passed on.
    func upstreamFailed(_ error: any Error, answered: Bool)
}

/// Why an exchange with ComfyUI ended without a complete answer.
enum UpstreamExchangeError: Error {
    /// The connection closed before any byte of the answer: on a reused connection, ComfyUI closed it while idle.
    case closedBeforeAnswer
    /// ComfyUI sent nothing for the read timeout.
    case readTimeout
    /// The connection broke in the middle of the answer.
    case closedDuringAnswer
}

/// One keep-alive HTTP/1.1 connection to ComfyUI, carrying one exchange at a time.
///
/// Everything happens on the channel's event loop. Small answers are gathered within one read batch and handed
/// over whole; longer ones stream through an ``UpstreamBody`` whose demand drives the socket reads, so a slow
/// client slows ComfyUI down instead of filling memory. When an answer ends on a reusable connection,
/// `onReusable` gives the connection back to its pool.
final class UpstreamConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    private enum State {
        case idle
        case awaitingHead(EventLoopPromise<UpstreamAnswer>)
        /// The head is in; body bytes are gathered until the read batch ends.
        case gathering(EventLoopPromise<UpstreamAnswer>, HTTPResponseHead, ByteBuffer?)
        case streaming(UpstreamBody.Source)
        /// Parts go straight to a sink; `answered` once the head has.
        case direct(any UpstreamAnswerSink, answered: Bool)
        case closed
    }

    /// Answers up to this size that arrive within one read batch are handed over whole.
    static let gatherLimit = 64 * 1024

    private var state = State.idle
    /// Numbers exchanges, so demand from a finished answer's body never acts on the next one.
    private var exchange = 0
    private var context: ChannelHandlerContext?
    private var requestEnded = true
    private var reusable = true
    private var readsPaused = false
    private var readHeld = false
    private var timer: Scheduled<Void>?
    /// When ComfyUI last sent something (or the exchange began): the read timeout counts from here.
    private var lastActivity = NIODeadline.now()
    private let readTimeout: TimeAmount
    /// Called on the event loop when an answer has ended and the connection can carry another.
    var onReusable: () -> Void = {}
    private let onClosed: () -> Void

    /// - Parameter onClosed: called on the event loop when the connection closes.
    init(readTimeout: TimeAmount, onClosed: @escaping () -> Void) {
        self.readTimeout = readTimeout
        self.onClosed = onClosed
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    // MARK: Requests

    /// Starts an exchange: writes the head (and the end when the request has no body) and flushes.
    func begin(_ head: HTTPRequestHead, endsRequest: Bool, answer: EventLoopPromise<UpstreamAnswer>) {
        if !start(head, endsRequest: endsRequest, as: .awaitingHead(answer)) {
            answer.fail(UpstreamExchangeError.closedBeforeAnswer)
        }
    }

    /// Starts a bodiless exchange whose answer goes part by part to `sink`, on this event loop.
    func begin(_ head: HTTPRequestHead, sink: any UpstreamAnswerSink) {
        if !start(head, endsRequest: true, as: .direct(sink, answered: false)) {
            sink.upstreamFailed(UpstreamExchangeError.closedBeforeAnswer, answered: false)
        }
    }

    /// Writes the head (and the end when the request has no body), flushes, and enters `exchangeState`;
    /// false when the connection is busy or closed.
    private func start(_ head: HTTPRequestHead, endsRequest: Bool, as exchangeState: State) -> Bool {
        guard case .idle = state, let context, context.channel.isActive else { return false }
        state = exchangeState
        exchange &+= 1
        reusable = head.isKeepAlive
        requestEnded = endsRequest
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if endsRequest { context.write(wrapOutboundOut(.end(nil)), promise: nil) }
        context.flush()
        armTimer()
        return true
    }

    /// Stops reading the answer until ``resumeDirectReads()``: the client is not taking it fast enough.
    func pauseDirectReads() {
        readsPaused = true
    }

    /// Reads the answer again.
    func resumeDirectReads() {
        guard case .direct = state else { return }
        resumeReading(exchange: exchange)
    }

    /// Writes one piece of the request body.
    func writeBody(_ buffer: ByteBuffer, promise: EventLoopPromise<Void>) {
        guard let context else { return promise.fail(ChannelError.ioOnClosedChannel) }
        context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: promise)
    }

    /// Ends the request body.
    func endRequest(promise: EventLoopPromise<Void>) {
        guard let context else { return promise.fail(ChannelError.ioOnClosedChannel) }
        requestEnded = true
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: promise)
    }

    /// Gives up on the exchange: the connection cannot be reused.
    func abandon() {
        reusable = false
        context?.close(promise: nil)
    }

    // MARK: Answers

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        lastActivity = .now()
        switch unwrapInboundIn(data) {
        case .head(let head):
            if (100..<200).contains(head.status.code) && head.status != .switchingProtocols { return }
            if !head.isKeepAlive { reusable = false }
            switch state {
            case .awaitingHead(let promise):
                state = .gathering(promise, head, nil)
            case .direct(let sink, answered: false):
                state = .direct(sink, answered: true)
                sink.upstreamHead(head)
            default:
                protocolViolation(context)
            }
        case .body(var part):
            switch state {
            case .gathering(let promise, let head, var gathered):
                state = .idle
                if gathered == nil { gathered = part } else { gathered!.writeBuffer(&part) }
                state = .gathering(promise, head, gathered)
                if gathered!.readableBytes > Self.gatherLimit { startStreaming(context) }
            case .streaming(let source):
                if source.yield(part) == .stopProducing { readsPaused = true }
            case .direct(let sink, answered: true):
                sink.upstreamBody(part)
            default:
                protocolViolation(context)
            }
        case .end:
            switch state {
            case .gathering(let promise, let head, let gathered):
                state = .idle
                promise.succeed(.complete(head, gathered))
            case .streaming(let source):
                state = .idle
                source.finish()
            case .direct(let sink, answered: true):
                state = .idle
                sink.upstreamEnd()
            default:
                return protocolViolation(context)
            }
            finishExchange(context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        switch state {
        case .gathering: startStreaming(context)
        case .direct(let sink, _): sink.upstreamReadComplete()
        default: break
        }
        context.fireChannelReadComplete()
    }

    /// The answer outgrew one read batch: hand the head over with a body that streams.
    private func startStreaming(_ context: ChannelHandlerContext) {
        guard case .gathering(let promise, let head, let gathered) = state else { return }
        let loop = context.eventLoop
        let produced = UpstreamBody.makeSequence(
            backPressureStrategy: .init(lowWatermark: 2, highWatermark: 8),
            finishOnDeinit: true,
            delegate: UpstreamBodyDemand(handler: NIOLoopBound(self, eventLoop: loop), exchange: exchange)
        )
        state = .streaming(produced.source)
        if let gathered, produced.source.yield(gathered) == .stopProducing { readsPaused = true }
        promise.succeed(.streaming(head, produced.sequence))
    }

    /// The read timer is left running: it lapses by itself on an idle connection, and the next exchange reuses it.
    private func finishExchange(_ context: ChannelHandlerContext) {
        readsPaused = false
        if readHeld {
            readHeld = false
            context.read()
        }
        if reusable && requestEnded {
            onReusable()
        } else {
            context.close(promise: nil)
        }
    }

    private func protocolViolation(_ context: ChannelHandlerContext) {
        fail(UpstreamExchangeError.closedDuringAnswer)
        context.close(promise: nil)
    }

    // MARK: Demand from the client

    /// Holds socket reads while the client is not taking the body.
    func read(context: ChannelHandlerContext) {
        if readsPaused {
            readHeld = true
        } else {
            context.read()
        }
    }

    /// The client wants more of the body.
    func resumeReading(exchange: Int) {
        guard readsPaused, exchange == self.exchange else { return }
        readsPaused = false
        armTimer()
        if readHeld, let context {
            readHeld = false
            context.read()
        }
    }

    /// The client stopped taking the body before its end: the connection cannot carry another exchange.
    func bodyAbandoned(exchange: Int) {
        guard case .streaming = state, exchange == self.exchange else { return }
        state = .idle
        abandon()
    }

    // MARK: Failures and timeouts

    /// Starts the read timeout from now. One timer serves a whole exchange: when it fires after recent activity,
    /// it sets itself again for the time left, so reads never touch the scheduler.
    private func armTimer() {
        lastActivity = .now()
        guard timer == nil else { return }
        schedule(in: readTimeout)
    }

    private func schedule(in delay: TimeAmount) {
        guard let context else { return }
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: delay) { [self] in
            timer = nil
            switch state {
            case .awaitingHead, .gathering, .streaming, .direct:
                let silence = NIODeadline.now() - lastActivity
                if readsPaused {
                    return
                } else if silence < readTimeout {
                    schedule(in: readTimeout - silence)
                } else {
                    fail(UpstreamExchangeError.readTimeout)
                    self.context?.close(promise: nil)
                }
            case .idle, .closed:
                break
            }
        }
    }

    private func fail(_ error: any Error) {
        let current = state
        state = .closed
        timer?.cancel()
        switch current {
        case .awaitingHead(let promise), .gathering(let promise, _, _):
            promise.fail(error)
        case .streaming(let source):
            source.finish(error)
        case .direct(let sink, let answered):
            sink.upstreamFailed(error, answered: answered)
        case .idle, .closed:
            break
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A reset before any answer is ComfyUI closing the connection — typically an idle one, as the request went
        // out — and is handled like that close, so a request on a reused connection is retried.
        if let io = error as? IOError, io.errnoCode == ECONNRESET || io.errnoCode == EPIPE, !hasAnswer {
            fail(UpstreamExchangeError.closedBeforeAnswer)
        } else {
            fail(error)
        }
        context.close(promise: nil)
    }

    /// Whether the exchange in progress has had any of its answer.
    private var hasAnswer: Bool {
        switch state {
        case .awaitingHead, .direct(_, answered: false): false
        default: true
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(hasAnswer ? UpstreamExchangeError.closedDuringAnswer : UpstreamExchangeError.closedBeforeAnswer)
        onClosed()
        context.fireChannelInactive()
    }
}

/// Passes the client's demand for body bytes to the connection's event loop.
struct UpstreamBodyDemand: NIOAsyncSequenceProducerDelegate {
    let handler: NIOLoopBound<UpstreamConnectionHandler>
    let exchange: Int

    func produceMore() {
        handler.eventLoop.execute { handler.value.resumeReading(exchange: exchange) }
    }

    func didTerminate() {
        handler.eventLoop.execute { handler.value.bodyAbandoned(exchange: exchange) }
    }
}

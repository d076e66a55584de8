import Logging
import NIOCore

/// Closes client connections that hold a place without using it: a request head not complete within
/// `requestHeadTimeout` of its first byte (or of the connection's accept), a body the gateway is ready to read
/// that makes no progress for `requestBodyTimeout`, an idle kept-alive connection after `keepAliveTimeout`.
///
/// It sits first in the pipeline and sees bytes and read requests only; ``RequestProgressHandler`` tells it where
/// each request stands. While the gateway itself holds reads (backpressure) or works on an answer, no client
/// timeout runs; once a connection becomes a websocket, none runs at all. One timer per connection, woken at
/// least every shortest timeout, so keeping track costs no timer per request.
final class ClientTimeoutHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Phase {
        /// Waiting for the rest of a request head; `started` is the accept or the request's first byte.
        case awaitingHead(started: NIODeadline, receivedBytes: Bool)
        /// The head is in, the body is not over.
        case readingBody
        /// The request is read in full; the gateway is answering.
        case answering
        /// Between requests on a kept-alive connection.
        case idle(since: NIODeadline)
        /// A websocket, or a connection being closed: no client timeout applies.
        case unlimited
    }

    private let limits: ConnectionLimits
    private let logger: Logger
    private var phase: Phase
    /// Requests whose head has been read and whose answer has not ended (more than one when pipelined).
    private var unansweredRequests = 0
    /// When the gateway last asked for more bytes, while no byte has come since; nil when not waiting.
    private var waitingForBytesSince: NIODeadline?
    private var timer: Scheduled<Void>?
    private var timerDeadline: NIODeadline?
    private var context: ChannelHandlerContext?

    init(limits: ConnectionLimits, logger: Logger) {
        self.limits = limits
        self.logger = logger
        self.phase = .awaitingHead(started: .now(), receivedBytes: false)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        armTimer()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        self.context = nil
    }

    // MARK: What the connection does

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        waitingForBytesSince = nil
        switch phase {
        case .idle:
            phase = .awaitingHead(started: .now(), receivedBytes: true)
        case .awaitingHead(let started, false):
            phase = .awaitingHead(started: started, receivedBytes: true)
        default:
            break
        }
        context.fireChannelRead(data)
    }

    func read(context: ChannelHandlerContext) {
        if waitingForBytesSince == nil { waitingForBytesSince = .now() }
        armTimer()
        context.read()
    }

    func channelInactive(context: ChannelHandlerContext) {
        phase = .unlimited
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }

    // MARK: Where the request stands (from RequestProgressHandler and the websocket upgrade)

    /// A request head has been read in full.
    func requestHeadReceived() {
        unansweredRequests += 1
        phase = .readingBody
    }

    /// The request, body included, has been read in full.
    func requestEnded() {
        phase = unansweredRequests == 0 ? .idle(since: .now()) : .answering
        armTimer()
    }

    /// An answer has been written in full.
    func answerCompleted() {
        unansweredRequests = max(0, unansweredRequests - 1)
        if case .answering = phase, unansweredRequests == 0 {
            phase = .idle(since: .now())
            armTimer()
        }
    }

    /// The connection is now a websocket (or is being closed by the gateway): no client timeout applies.
    func stopTiming() {
        phase = .unlimited
        timer?.cancel()
        timer = nil
    }

    // MARK: The timer

    /// When the connection is due to be closed, if nothing happens before.
    private var deadline: NIODeadline? {
        switch phase {
        case .awaitingHead(let started, _): started + limits.requestHeadTimeout
        case .readingBody: waitingForBytesSince.map { $0 + limits.requestBodyTimeout }
        case .idle(let since): since + limits.keepAliveTimeout
        case .answering, .unlimited: nil
        }
    }

    /// Makes sure the timer wakes no later than the deadline. A wake is never later than the shortest timeout
    /// after it was set, and every deadline lies at least that far after the event that set it, so a timer
    /// already set never needs to move earlier.
    private func armTimer() {
        guard timer == nil, let deadline, let context else { return }
        let wake = min(deadline, .now() + limits.shortestTimeout)
        timerDeadline = wake
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: wake) { [self] in
            timer = nil
            check()
        }
    }

    private func check() {
        guard let deadline, let context else { return }
        guard deadline <= .now() else { return armTimer() }
        switch phase {
        case .awaitingHead(_, receivedBytes: true):
            logger.debug("request head not complete in time: 408, connection closed")
            var answer = context.channel.allocator.buffer(capacity: Self.requestTimeoutAnswer.utf8.count)
            answer.writeString(Self.requestTimeoutAnswer)
            context.writeAndFlush(wrapOutboundOut(answer), promise: nil)
        case .awaitingHead:
            logger.debug("no request on a new connection in time: closed")
        case .readingBody:
            logger.debug("request body made no progress in time: connection closed")
        case .idle:
            logger.trace("kept-alive connection idle too long: closed")
        case .answering, .unlimited:
            return
        }
        phase = .unlimited
        context.close(promise: nil)
    }

    /// What a client that started a request head and never finished it gets before the connection closes.
    static let requestTimeoutAnswer = "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
}

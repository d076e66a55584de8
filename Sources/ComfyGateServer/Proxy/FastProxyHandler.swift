import ComfyGateCore
import ComfyGatePolicy
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// The gateway's hot path, inside each client connection's pipeline: a bodiless request whose credential is
/// answered from the cache (a native token or a session, already seen within the cache lifetime) goes to
/// ComfyUI over a pooled connection of the same event loop, and the answer comes back part by part — no task,
/// no thread hop, one flush per read batch.
///
/// The access policy decides as on every path; only a request it forwards with nothing to rewrite goes this way.
/// Everything else — the gateway's own routes, requests with a body, unknown or uncached credentials,
/// anything to refuse or rewrite — passes on to the application, which asks the same policy the slow way (and
/// fills the cache). Requests are answered in order: while one is being answered, the next waits.
final class FastProxyHandler: ChannelDuplexHandler, RemovableChannelHandler, UpstreamAnswerSink {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    struct Dependencies: Sendable {
        let authenticator: RequestAuthenticator
        let originPolicy: OriginPolicy
        let upstreamHeaders: UpstreamRequestHeaders
        let transport: PooledUpstreamTransport
        let policy: AccessPolicy
        let comfyUIUsers: ComfyUIUsers
        let logger: Logger
    }

    private enum State {
        case idle
        /// A request handed to the application; done once both it and its answer have ended.
        case passing(requestEnded: Bool, answerEnded: Bool)
        /// A fast request whose head has arrived; it is sent when its end does.
        case awaitingEnd(HTTPRequestHead, path: String)
        /// A fast request with ComfyUI.
        case proxying(Exchange)
    }

    private struct Exchange {
        var head: HTTPRequestHead
        var path: String
        var connection: UpstreamConnection?
        var reused: Bool
        var retried = false
        var answered = false
        var upstreamPaused = false
    }

    private let dependencies: Dependencies
    private var state = State.idle
    /// Parts of requests that arrived while an earlier one was being answered.
    private var queued = CircularBuffer<HTTPRequestPart>()
    private var readHeld = false
    private var context: ChannelHandlerContext?

    init(dependencies: Dependencies) {
        self.dependencies = dependencies
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    // MARK: Requests

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if queued.isEmpty, canTakePart { route(part, context: context) } else { queued.append(part) }
    }

    /// Whether a request part can be handled now, rather than wait for the answer in progress.
    private var canTakePart: Bool {
        switch state {
        case .idle, .passing(requestEnded: false, _), .awaitingEnd: true
        case .passing, .proxying: false
        }
    }

    private func route(_ part: HTTPRequestPart, context: ChannelHandlerContext) {
        switch state {
        case .passing(requestEnded: false, let answerEnded):
            if case .end = part { state = .passing(requestEnded: true, answerEnded: answerEnded) }
            context.fireChannelRead(wrapInboundOut(part))
            finishIfDone(context)
        case .awaitingEnd(let head, let path):
            if case .end = part { startExchange(context, head: head, path: path) }  // a bodiless request has no body parts
        case .idle:
            accept(part, context: context)
        case .passing, .proxying:
            queued.append(part)
        }
    }

    /// Decides where a new request goes.
    private func accept(_ part: HTTPRequestPart, context: ChannelHandlerContext) {
        guard case .head(let request) = part, let (head, path) = fastRoute(request, channel: context.channel) else {
            state = .passing(requestEnded: false, answerEnded: false)
            if case .end = part { state = .passing(requestEnded: true, answerEnded: false) }
            context.fireChannelRead(wrapInboundOut(part))
            return
        }
        state = .awaitingEnd(head, path: path)
    }

    /// The request ComfyUI gets, when this request may take the fast path.
    private func fastRoute(_ request: HTTPRequest, channel: any Channel) -> (HTTPRequestHead, String)? {
        let fields = request.headerFields
        guard fields[.upgrade] == nil, fields[.transferEncoding] == nil, fields[.contentLength].map({ $0 == "0" }) ?? true else {
            return nil
        }
        let facts = RequestFacts(request, isWebSocket: false)
        guard !AccessPolicy.isGatewayRoute(path: facts.path),
            let identity = dependencies.authenticator.cachedIdentity(headers: fields, query: facts.query)
        else { return nil }
        if identity.credential == .session,
            !dependencies.originPolicy.allows(method: request.method, headers: fields, authority: request.authority, isWebSocket: false)
        {
            return nil
        }
        guard case .forward(let plan) = dependencies.policy.decide(facts, caller: identity.caller), plan.passesAsSent,
            let comfyUser = dependencies.comfyUIUsers.cachedHeader(for: identity.userID)
        else { return nil }
        var upstreamRequest = UpstreamRequest(
            method: request.method,
            pathAndQuery: plan.target,
            headers: dependencies.upstreamHeaders.build(from: fields, authority: request.authority, peer: channel.remoteAddress?.ipAddress),
            body: nil,
            contentLength: nil
        )
        if let comfyUser { upstreamRequest.headers[ComfyUIUsers.header] = comfyUser }
        return (dependencies.transport.requestHead(upstreamRequest), facts.path)
    }

    private func startExchange(_ context: ChannelHandlerContext, head: HTTPRequestHead, path: String) {
        let pool = dependencies.transport.pool
        if let idle = pool.takeIdle(on: context.eventLoop) {
            state = .proxying(Exchange(head: head, path: path, connection: idle, reused: true))
            idle.handler.value.begin(head, sink: self)
        } else {
            state = .proxying(Exchange(head: head, path: path, connection: nil, reused: false))
            connect(context)
        }
    }

    private func connect(_ context: ChannelHandlerContext) {
        dependencies.transport.pool.connectFuture(on: context.eventLoop).assumeIsolated().whenComplete { [self] result in
            guard case .proxying(var exchange) = state else {
                if case .success(let connection) = result { connection.channel.close(promise: nil) }
                return
            }
            switch result {
            case .success(let connection):
                exchange.connection = connection
                state = .proxying(exchange)
                connection.handler.value.begin(exchange.head, sink: self)
            case .failure(let error):
                answerFailure(error, exchange: exchange)
            }
        }
    }

    // MARK: Answers from ComfyUI

    func upstreamHead(_ head: HTTPResponseHead) {
        guard case .proxying(var exchange) = state, let context else { return }
        exchange.answered = true
        state = .proxying(exchange)
        let response = HTTPResponse(
            status: HTTPResponse.Status(code: Int(head.status.code), reasonPhrase: head.status.reasonPhrase),
            headerFields: UpstreamResponseHeaders.fields(from: head.headers)
        )
        context.write(wrapOutboundOut(.head(response)), promise: nil)
    }

    func upstreamBody(_ part: ByteBuffer) {
        guard case .proxying(var exchange) = state, let context else { return }
        context.write(wrapOutboundOut(.body(part)), promise: nil)
        if !context.channel.isWritable, !exchange.upstreamPaused, let connection = exchange.connection {
            exchange.upstreamPaused = true
            state = .proxying(exchange)
            connection.handler.value.pauseDirectReads()
            // Flushing can make the channel writable again at once; `channelWritabilityChanged` then resumes.
            context.flush()
        }
    }

    func upstreamReadComplete() {
        context?.flush()
    }

    func upstreamEnd() {
        guard case .proxying = state, let context else { return }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        exchangeDone(context)
    }

    func upstreamFailed(_ error: any Error, answered: Bool) {
        guard case .proxying(var exchange) = state, let context else { return }
        if answered {
            // The head is out: the client can only learn of the failure from a cut connection.
            context.close(promise: nil)
            return
        }
        if case UpstreamExchangeError.closedBeforeAnswer = error, exchange.reused, !exchange.retried {
            // ComfyUI closed the idle connection as the request went out: one retry on a fresh connection.
            exchange.retried = true
            exchange.reused = false
            exchange.connection = nil
            state = .proxying(exchange)
            connect(context)
            return
        }
        answerFailure(error, exchange: exchange)
    }

    /// Answers 502 or 504 with the same JSON the application gives.
    private func answerFailure(_ error: any Error, exchange: Exchange) {
        guard let context else { return }
        let failure = dependencies.transport.classify(error)
        failure.log(to: dependencies.logger, path: exchange.path)
        let body = GatewayResponse.jsonBody(failure.answer)
        let head = HTTPResponse(
            status: failure.status,
            headerFields: [.contentType: "application/json", .cacheControl: "no-store", .contentLength: String(body.readableBytes)]
        )
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        exchangeDone(context)
    }

    private func exchangeDone(_ context: ChannelHandlerContext) {
        state = .idle
        resume(context)
    }

    // MARK: Answers from the application

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        context.write(data, promise: promise)
        if case .passing(let requestEnded, answerEnded: false) = state, case .end = unwrapOutboundIn(data) {
            state = .passing(requestEnded: requestEnded, answerEnded: true)
            finishIfDone(context)
        }
    }

    private func finishIfDone(_ context: ChannelHandlerContext) {
        guard case .passing(requestEnded: true, answerEnded: true) = state else { return }
        state = .idle
        resume(context)
    }

    /// Takes the queued request parts that can go now, then lets reads go on.
    private func resume(_ context: ChannelHandlerContext) {
        var forwarded = false
        while canTakePart, let part = queued.popFirst() {
            if case .passing = state { forwarded = true }
            route(part, context: context)
            if case .passing = state { forwarded = true }
        }
        // Parts handed to the application outside a read batch are delivered when the batch is marked complete.
        if forwarded { context.fireChannelReadComplete() }
        if queued.count < Self.maxQueuedParts, readHeld {
            readHeld = false
            context.read()
        }
    }

    // MARK: Flow control

    /// Reads go on (holding them would cost two `epoll_ctl` calls per request); only a client that sends many
    /// requests ahead of their answers is made to wait.
    func read(context: ChannelHandlerContext) {
        if queued.count < Self.maxQueuedParts {
            context.read()
        } else {
            readHeld = true
        }
    }

    /// Request parts kept while earlier answers are in progress, before reads stop.
    static let maxQueuedParts = 64

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, case .proxying(var exchange) = state, exchange.upstreamPaused, let connection = exchange.connection {
            exchange.upstreamPaused = false
            state = .proxying(exchange)
            connection.handler.value.resumeDirectReads()
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .proxying(let exchange) = state {
            state = .idle
            exchange.connection?.handler.value.abandon()
        }
        context.fireChannelInactive()
    }
}

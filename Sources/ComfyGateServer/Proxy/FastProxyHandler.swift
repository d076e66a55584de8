import ComfyGateCore
import ComfyGatePolicy
import Foundation
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
        /// Which backend each request goes to; only plain-HTTP backends (pooled transports) are reached this way.
        let router: BackendRouter
        let policy: AccessPolicy
        let comfyUIUsers: ComfyUIUsers
        let observer: RequestObserver
        let logger: Logger
    }

    private enum State {
        case idle
        /// A request handed to the application; done once both it and its answer have ended.
        case passing(requestEnded: Bool, answerEnded: Bool)
        /// A fast request whose head has arrived; it is sent when its end does.
        case awaitingEnd(FastRequest)
        /// A fast request with ComfyUI.
        case proxying(Exchange)
        /// The client asked to close after an answer that is now written (HTTP's parser refuses anything sent after it).
        case closing
    }

    /// A request the fast path carries.
    private struct FastRequest {
        /// The request ComfyUI gets.
        var head: HTTPRequestHead
        /// How it reaches its backend.
        var transport: PooledUpstreamTransport
        var path: String
        /// The client sent `Connection: close`: the answer says so and the connection closes after it.
        var closesConnection: Bool
        /// What the access log and the metrics record of it.
        var method: HTTPRequest.Method
        var started: NIODeadline
        var user: String
        var client: String?
        var route: RouteClass
    }

    private struct Exchange {
        var request: FastRequest
        var connection: UpstreamConnection?
        var reused: Bool
        var retried = false
        var answered = false
        var upstreamPaused = false
        /// The answer's status and body bytes so far.
        var status = 0
        var bytes = 0
    }

    private let dependencies: Dependencies
    private var state = State.idle
    /// Parts of requests that arrived while an earlier one was being answered.
    private var queued = CircularBuffer<HTTPRequestPart>()
    private var readHeld = false
    /// The request handed to the application asked to close the connection after its answer.
    private var passedRequestCloses = false
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
        case .passing, .proxying, .closing: false
        }
    }

    private func route(_ part: HTTPRequestPart, context: ChannelHandlerContext) {
        switch state {
        case .passing(requestEnded: false, let answerEnded):
            if case .end = part { state = .passing(requestEnded: true, answerEnded: answerEnded) }
            context.fireChannelRead(wrapInboundOut(part))
            finishIfDone(context)
        case .awaitingEnd(let request):
            if case .end = part { startExchange(context, request: request) }  // a bodiless request has no body parts
        case .idle:
            accept(part, context: context)
        case .passing, .proxying:
            queued.append(part)
        case .closing:
            break
        }
    }

    /// Decides where a new request goes.
    private func accept(_ part: HTTPRequestPart, context: ChannelHandlerContext) {
        guard case .head(let request) = part, let fastRequest = fastRoute(request, channel: context.channel) else {
            state = .passing(requestEnded: false, answerEnded: false)
            if case .end = part { state = .passing(requestEnded: true, answerEnded: false) }
            guard case .head(var request) = part, Self.asksToClose(request.headerFields) else {
                passedRequestCloses = false
                context.fireChannelRead(wrapInboundOut(part))
                return
            }
            passedRequestCloses = true
            // The application closes after its answer only on exactly `close`: any spelling of the token is made so.
            request.headerFields[.connection] = "close"
            context.fireChannelRead(wrapInboundOut(.head(request)))
            return
        }
        state = .awaitingEnd(fastRequest)
    }

    /// The request ComfyUI gets, when this request may take the fast path.
    private func fastRoute(_ request: HTTPRequest, channel: any Channel) -> FastRequest? {
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
            let comfyUser = dependencies.comfyUIUsers.cachedHeader(for: identity.userID),
            case .backend(let backend) = dependencies.router.route(path: facts.path, target: plan.target),
            let transport = backend.transport as? PooledUpstreamTransport
        else { return nil }
        var upstreamRequest = UpstreamRequest(
            method: request.method,
            pathAndQuery: plan.target,
            headers: backend.headers.build(from: fields, authority: request.authority, peer: channel.remoteAddress?.ipAddress),
            body: nil,
            contentLength: nil
        )
        if let comfyUser { upstreamRequest.headers[ComfyUIUsers.header] = comfyUser }
        return FastRequest(
            head: transport.requestHead(upstreamRequest), transport: transport, path: facts.path,
            closesConnection: Self.asksToClose(fields), method: request.method, started: .now(), user: identity.userName,
            client: dependencies.observer.client(headers: fields, peer: channel.remoteAddress?.ipAddress),
            route: RouteClass(forwarding: plan, path: facts.path))
    }

    /// Whether the `Connection` field lists `close` (RFC 9112 §9.6; the token is case-insensitive).
    static func asksToClose(_ fields: HTTPFields) -> Bool {
        fields[values: .connection].contains { line in
            line.split(separator: ",").contains { $0.trimmingCharacters(in: .whitespaces).lowercased() == "close" }
        }
    }

    private func startExchange(_ context: ChannelHandlerContext, request: FastRequest) {
        let pool = request.transport.pool
        if let idle = pool.takeIdle(on: context.eventLoop) {
            state = .proxying(Exchange(request: request, connection: idle, reused: true))
            idle.handler.value.begin(request.head, sink: self)
        } else {
            state = .proxying(Exchange(request: request, connection: nil, reused: false))
            connect(context)
        }
    }

    private func connect(_ context: ChannelHandlerContext) {
        guard case .proxying(let exchange) = state else { return }
        exchange.request.transport.pool.connectFuture(on: context.eventLoop).assumeIsolated().whenComplete { [self] result in
            guard case .proxying(var exchange) = state else {
                if case .success(let connection) = result { connection.channel.close(promise: nil) }
                return
            }
            switch result {
            case .success(let connection):
                exchange.connection = connection
                state = .proxying(exchange)
                connection.handler.value.begin(exchange.request.head, sink: self)
            case .failure(let error):
                answerFailure(error, exchange: exchange)
            }
        }
    }

    // MARK: Answers from ComfyUI

    func upstreamHead(_ head: HTTPResponseHead) {
        guard case .proxying(var exchange) = state, let context else { return }
        exchange.answered = true
        exchange.status = Int(head.status.code)
        state = .proxying(exchange)
        var response = HTTPResponse(
            status: HTTPResponse.Status(code: Int(head.status.code), reasonPhrase: head.status.reasonPhrase),
            headerFields: UpstreamResponseHeaders.fields(from: head.headers)
        )
        if exchange.request.closesConnection { response.headerFields[.connection] = "close" }
        context.write(wrapOutboundOut(.head(response)), promise: nil)
    }

    func upstreamBody(_ part: ByteBuffer) {
        guard case .proxying(var exchange) = state, let context else { return }
        exchange.bytes += part.readableBytes
        state = .proxying(exchange)
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
        guard case .proxying(let exchange) = state, let context else { return }
        exchangeDone(context, ending: exchange)
    }

    func upstreamFailed(_ error: any Error, answered: Bool) {
        guard case .proxying(var exchange) = state, let context else { return }
        if answered {
            // The head is out: the client can only learn of the failure from a cut connection.
            observe(exchange)
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
        var exchange = exchange
        let failure = exchange.request.transport.classify(error)
        failure.log(to: dependencies.logger, path: exchange.request.path)
        let body = GatewayResponse.jsonBody(failure.answer)
        var head = HTTPResponse(
            status: failure.status,
            headerFields: [.contentType: "application/json", .cacheControl: "no-store", .contentLength: String(body.readableBytes)]
        )
        if exchange.request.closesConnection { head.headerFields[.connection] = "close" }
        exchange.status = failure.status.code
        exchange.bytes = body.readableBytes
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        exchangeDone(context, ending: exchange)
    }

    /// Ends the answer; then takes the next request, or closes when the client asked to.
    private func exchangeDone(_ context: ChannelHandlerContext, ending exchange: Exchange) {
        observe(exchange)
        guard exchange.request.closesConnection else {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            state = .idle
            resume(context)
            return
        }
        state = .closing
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    /// Records an answer that ended (or was cut).
    private func observe(_ exchange: Exchange) {
        let request = exchange.request
        dependencies.observer.answered(
            method: request.method.rawValue, path: request.path, status: exchange.status, bytes: exchange.bytes, since: request.started,
            user: request.user, client: request.client, route: request.route, via: .fast)
    }

    // MARK: Answers from the application

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if passedRequestCloses, case .passing = state, case .head(var response) = unwrapOutboundIn(data), response.status.code >= 200 {
            // The application closes after this answer: the answer says so, as the fast path's do.
            response.headerFields[.connection] = "close"
            context.write(wrapOutboundOut(.head(response)), promise: promise)
        } else {
            context.write(data, promise: promise)
        }
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

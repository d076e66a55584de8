import ComfyGateCore
import ComfyGatePolicy
import ComfyGateRequestParsing
import Crypto
import Foundation
import HTTPTypes
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOHTTPTypesHTTP1
import NIOWebSocket

/// The gateway's side of a websocket upgrade, one instance per client connection.
///
/// The 101 answer is given only after the client is authenticated and ComfyUI itself has accepted the
/// upgrade. Otherwise the upgrader keeps the answer to give instead (401, 403, 502, …) in ``refusal``, and
/// ``GatewayChannel`` writes it and closes the connection.
final class WebSocketUpgrader: NIOTypedHTTPServerProtocolUpgrader, Sendable {
    typealias UpgradeResult = GatewayChannel.UpgradeResult

    struct Dependencies: Sendable {
        let authenticator: RequestAuthenticator
        let originPolicy: OriginPolicy
        let policy: AccessPolicy
        let isolation: Isolation
        let openWebSockets: OpenWebSockets
        let upstreamHeaders: UpstreamRequestHeaders
        /// The backends a new client socket is connected to, primary first: the primary's handshake answers the
        /// client, the others join as tributaries (those that cannot be reached are skipped).
        let upstreams: @Sendable () -> [UpstreamWebSocketConnector]
        let observer: RequestObserver
        let logger: Logger
    }

    let supportedProtocol = "websocket"
    /// Key and version are checked in `prepare`: NIO would also require them to be named in `Connection`.
    let requiredUpgradeHeaders: [String] = []

    private let dependencies: Dependencies
    private let pending = NIOLockedValueBox<Accepted?>(nil)

    /// A handshake ComfyUI accepted, waiting for the client's side of the upgrade.
    private struct Accepted {
        let primary: UpstreamWebSocketConnector
        let upstream: UpstreamWebSocketConnector.Connection
        /// The other backends, to join once the client's socket is open.
        let tributaries: ArraySlice<UpstreamWebSocketConnector>
        let request: UpstreamWebSocketConnector.Request
        let identity: Identity
        /// Whether the client's events are filtered (``WebSocketEventFilter``).
        let filtersEvents: Bool
        let credentials: (headers: HTTPFields, query: String?, peer: String?)
    }
    private let refusalBox = NIOLockedValueBox<Refusal?>(nil)
    /// Who asked and where the handshake went, as far as ``prepare(_:peer:initialResponseHeaders:eventLoop:)`` got.
    private let observed = NIOLockedValueBox<(user: String?, client: String?, route: RouteClass)>((nil, nil, .refused))

    /// The answer for a handshake that was not accepted, if one was attempted and failed.
    var refusal: Refusal? { refusalBox.withLockedValue { $0 } }

    /// A JSON error answer for a refused handshake.
    struct Refusal: Error, Sendable {
        let status: HTTPResponse.Status
        let body: [String: String]
        var headers: HTTPFields = [:]
    }

    init(dependencies: Dependencies) {
        self.dependencies = dependencies
    }

    func buildUpgradeResponse(
        channel: any Channel,
        upgradeRequest: HTTPRequestHead,
        initialResponseHeaders: HTTPHeaders
    ) -> EventLoopFuture<HTTPHeaders> {
        // The handshake is in: from here the upstream connect timeout bounds it, then no client timeout applies.
        try? channel.pipeline.syncOperations.handler(type: ClientTimeoutHandler.self).stopTiming()
        let promise = channel.eventLoop.makePromise(of: HTTPHeaders.self)
        let peer = channel.remoteAddress?.ipAddress
        let eventLoop = channel.eventLoop
        let started = NIODeadline.now()
        promise.completeWithTask {
            do {
                let headers = try await self.prepare(
                    upgradeRequest, peer: peer, initialResponseHeaders: initialResponseHeaders, eventLoop: eventLoop)
                self.observe(upgradeRequest, status: .switchingProtocols, since: started, peer: peer)
                return headers
            } catch let refusal as Refusal {
                self.refusalBox.withLockedValue { $0 = refusal }
                self.observe(upgradeRequest, status: refusal.status, since: started, peer: peer)
                throw refusal
            } catch {
                self.refusalBox.withLockedValue {
                    $0 = Refusal(status: .internalServerError, body: ["error": "websocket handshake failed"])
                }
                self.observe(upgradeRequest, status: .internalServerError, since: started, peer: peer)
                throw error
            }
        }
        return promise.futureResult
    }

    /// Records the handshake once its upgrade is decided.
    private func observe(_ head: HTTPRequestHead, status: HTTPResponse.Status, since started: NIODeadline, peer: String?) {
        let (user, client, route) = observed.withLockedValue { $0 }
        dependencies.observer.answered(
            method: head.method.rawValue, path: String(head.uri.prefix { $0 != "?" }), status: status.code, bytes: nil,
            since: started, user: user, client: client ?? peer, route: route, via: .websocket)
    }

    private func prepare(
        _ head: HTTPRequestHead,
        peer: String?,
        initialResponseHeaders: HTTPHeaders,
        eventLoop: any EventLoop
    ) async throws -> HTTPHeaders {
        guard RequestTarget.isAcceptable(head.uri) else {
            throw Refusal(status: .badRequest, body: ["error": "the request target is not a path (or absolute URL) of printable ASCII"])
        }
        guard head.method == .GET, head.headers["sec-websocket-version"].first == "13",
            let key = head.headers["sec-websocket-key"].first
        else { throw Refusal(status: .badRequest, body: ["error": "not a websocket version 13 handshake"]) }
        let request = try HTTPRequest(head, secure: false, splitCookie: false)
        let client = dependencies.observer.client(headers: request.headerFields, peer: peer)
        observed.withLockedValue { $0.client = client }
        let query = head.uri.firstIndex(of: "?").map { String(head.uri[head.uri.index(after: $0)...]) }
        let identity: Identity
        switch try await dependencies.authenticator.authenticate(headers: request.headerFields, query: query, peer: peer) {
        case .authenticated(let authenticated):
            identity = authenticated
            observed.withLockedValue { $0.user = authenticated.userName }
        case .anonymous:
            dependencies.authenticator.metrics?.authenticationFailed(.missing)
            throw Refusal(status: .unauthorized, body: ["error": "authentication required"],
                headers: [.wwwAuthenticate: #"Bearer realm="comfygate""#])
        case .refused:
            throw Refusal(status: .unauthorized, body: ["error": "authentication required"],
                headers: [.wwwAuthenticate: #"Bearer realm="comfygate", error="invalid_token""#])
        case .busy:
            throw Refusal(status: .serviceUnavailable, body: ["error": "too many credential checks in progress, retry shortly"],
                headers: [.retryAfter: "1"])
        case .throttled(let wait):
            throw Refusal(status: .tooManyRequests, body: ["error": RequestAuthenticator.throttledMessage],
                headers: [.retryAfter: RequestAuthenticator.retryAfter(wait)])
        }
        if identity.credential == .session,
            !dependencies.originPolicy.allows(method: .get, headers: request.headerFields, authority: request.authority, isWebSocket: true)
        {
            throw Refusal(status: .forbidden, body: ["error": "cross-site request refused"])
        }

        let plan: ForwardPlan
        switch dependencies.policy.decide(RequestFacts(request, isWebSocket: true), caller: identity.caller) {
        case .forward(let forward):
            plan = forward
            observed.withLockedValue { $0.route = .websocket }
        case .refuse(let refusal):
            throw Refusal(status: refusal.httpStatus, body: ["error": refusal.message])
        case .answer, .gatewayRoute, .comfyAPIv2, .page, .metrics:
            throw Refusal(status: .badRequest, body: ["error": "\(request.path ?? "/") is not a websocket"])
        }
        let upstreamRequest = UpstreamWebSocketConnector.Request(
            pathAndQuery: plan.target,
            headers: dependencies.upstreamHeaders.build(from: request.headerFields, authority: request.authority, peer: peer, isWebSocket: true)
        )
        let connectors = dependencies.upstreams()
        guard let primary = connectors.first else {
            throw Refusal(status: .serviceUnavailable, body: ["error": "no upstream available"], headers: [.retryAfter: "1"])
        }
        let connection: UpstreamWebSocketConnector.Connection
        let upstream = primary.description
        do {
            connection = try await primary.connect(upstreamRequest, key: key, on: eventLoop)
        } catch UpstreamWebSocketConnector.Failure.unreachable(let cause) {
            dependencies.logger.warning("upstream websocket unreachable", metadata: ["upstream": "\(upstream)", "cause": "\(cause)"])
            throw Refusal(status: .badGateway, body: ["error": "upstream unreachable", "upstream": upstream, "cause": cause])
        } catch {
            dependencies.logger.info("upstream refused the websocket", metadata: ["path": "\(upstreamRequest.pathAndQuery)"])
            throw Refusal(status: .badGateway, body: ["error": "upstream refused the websocket upgrade", "upstream": upstream])
        }
        let accepted = Accepted(
            primary: primary, upstream: connection, tributaries: connectors.dropFirst(), request: upstreamRequest, identity: identity,
            filtersEvents: plan.answer == .webSocket && !identity.caller.isAdmin, credentials: (request.headerFields, query, peer)
        )
        pending.withLockedValue { $0 = accepted }

        var response = initialResponseHeaders
        response.add(name: "Sec-WebSocket-Accept", value: Self.acceptValue(for: key))
        if let chosen = connection.responseHeaders["sec-websocket-protocol"].first {
            response.add(name: "Sec-WebSocket-Protocol", value: chosen)
        }
        return response
    }

    func upgrade(channel: any Channel, upgradeRequest: HTTPRequestHead) -> EventLoopFuture<UpgradeResult> {
        channel.eventLoop.makeCompletedFuture {
            let progress = try channel.pipeline.syncOperations.handler(type: RequestProgressHandler.self)
            channel.pipeline.syncOperations.removeHandler(progress, promise: nil)
            return try installRelay(on: channel, after: nil)
        }
    }

    /// Adds the websocket handlers and the relay to ComfyUI's accepted socket: at the end of the pipeline, or
    /// right after `handler` (a handshake on a kept-alive connection, whose HTTP handlers are being removed).
    func installRelay(on channel: any Channel, after handler: (any ChannelHandler)?) throws -> UpgradeResult {
        guard let accepted = pending.withLockedValue({ value in defer { value = nil }; return value }) else {
            throw Refusal(status: .internalServerError, body: ["error": "websocket handshake failed"])
        }
        let relay = WebSocketRelay(masksWrites: false, closeTimeout: accepted.primary.closeTimeout)
        if accepted.filtersEvents {
            let caller = accepted.identity.caller
            let isolation = dependencies.isolation
            relay.makeFilter = { WebSocketEventFilter(caller: caller, isolation: isolation) }
        }
        var previous = handler
        for added: any ChannelHandler in [
            WebSocketFrameEncoder(), ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: accepted.primary.maxFrameSize)),
            WebSocketProtocolErrorHandler(), relay,
        ] {
            if let previous {
                try channel.pipeline.syncOperations.addHandler(added, position: .after(previous))
            } else {
                try channel.pipeline.syncOperations.addHandler(added)
            }
            if handler != nil { previous = added }
        }
        // ComfyUI's connection was opened on this channel's event loop, so both halves can meet here.
        WebSocketRelay.pair(client: relay, upstream: accepted.upstream.relay.value)
        let boundRelay = NIOLoopBound(relay, eventLoop: channel.eventLoop)
        dependencies.openWebSockets.add(
            OpenWebSockets.Entry(
                userID: accepted.identity.caller.userID, userName: accepted.identity.userName, headers: accepted.credentials.headers, query: accepted.credentials.query,
                peer: accepted.credentials.peer, upstreamRequest: accepted.request, relay: boundRelay
            ),
            closeFuture: channel.closeFuture
        )
        for tributary in accepted.tributaries {
            tributary.join(boundRelay, request: accepted.request, logger: dependencies.logger)
        }
        return .webSocket(client: channel, upstream: accepted.upstream.channel, relay: boundRelay, identity: accepted.identity)
    }

    /// `Sec-WebSocket-Accept` for a key (RFC 6455 §4.2.2).
    static func acceptValue(for key: String) -> String {
        let digest = Insecure.SHA1.hash(data: Data((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8))
        return Data(digest).base64EncodedString()
    }
}

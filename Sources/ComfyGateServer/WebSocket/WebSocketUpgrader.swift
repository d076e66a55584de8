import ComfyGateCore
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
/// upgrade. When either fails the request is not upgraded and continues as plain HTTP, where the
/// authentication middleware and the proxy answer it (401, 403, or ComfyUI's own refusal, 502 when it is
/// unreachable).
final class WebSocketUpgrader: NIOTypedHTTPServerProtocolUpgrader, Sendable {
    typealias UpgradeResult = GatewayChannel.UpgradeResult

    struct Dependencies: Sendable {
        let authenticator: RequestAuthenticator
        let originPolicy: OriginPolicy
        let upstreamHeaders: UpstreamRequestHeaders
        let connector: UpstreamWebSocketConnector
        let logger: Logger
    }

    let supportedProtocol = "websocket"
    let requiredUpgradeHeaders = ["sec-websocket-key", "sec-websocket-version"]

    private let dependencies: Dependencies
    private let pending = NIOLockedValueBox<(UpstreamWebSocketConnector.Connection, Identity)?>(nil)

    init(dependencies: Dependencies) {
        self.dependencies = dependencies
    }

    func buildUpgradeResponse(
        channel: any Channel,
        upgradeRequest: HTTPRequestHead,
        initialResponseHeaders: HTTPHeaders
    ) -> EventLoopFuture<HTTPHeaders> {
        let promise = channel.eventLoop.makePromise(of: HTTPHeaders.self)
        let peer = channel.remoteAddress?.ipAddress
        let eventLoop = channel.eventLoop
        promise.completeWithTask {
            try await self.prepare(upgradeRequest, peer: peer, initialResponseHeaders: initialResponseHeaders, eventLoop: eventLoop)
        }
        return promise.futureResult
    }

    private func prepare(
        _ head: HTTPRequestHead,
        peer: String?,
        initialResponseHeaders: HTTPHeaders,
        eventLoop: any EventLoop
    ) async throws -> HTTPHeaders {
        guard head.method == .GET, head.headers["sec-websocket-version"].first == "13",
            let key = head.headers["sec-websocket-key"].first
        else { throw NotUpgrading.badHandshake }
        let request = try HTTPRequest(head, secure: false, splitCookie: false)
        let query = head.uri.firstIndex(of: "?").map { String(head.uri[head.uri.index(after: $0)...]) }
        guard case .authenticated(let identity) = try await dependencies.authenticator.authenticate(headers: request.headerFields, query: query)
        else { throw NotUpgrading.unauthenticated }
        if identity.credential == .session,
            !dependencies.originPolicy.allows(method: .get, headers: request.headerFields, authority: request.authority, isWebSocket: true)
        {
            throw NotUpgrading.crossSite
        }

        var pathAndQuery = request.path.map { String($0.prefix(while: { $0 != "?" })) } ?? "/"
        if let query, let kept = QueryString.removing("token", from: query) { pathAndQuery += "?" + kept }
        let headers = dependencies.upstreamHeaders.build(from: request.headerFields, authority: request.authority, peer: peer, isWebSocket: true)
        let connection: UpstreamWebSocketConnector.Connection
        do {
            connection = try await dependencies.connector.connect(pathAndQuery: pathAndQuery, headers: headers, key: key, on: eventLoop)
        } catch {
            dependencies.logger.info("upstream refused the websocket", metadata: ["path": "\(pathAndQuery)", "error": "\(error)"])
            throw NotUpgrading.upstreamRefused
        }
        pending.withLockedValue { $0 = (connection, identity) }

        var response = initialResponseHeaders
        response.add(name: "Sec-WebSocket-Accept", value: Self.acceptValue(for: key))
        if let chosen = connection.responseHeaders["sec-websocket-protocol"].first {
            response.add(name: "Sec-WebSocket-Protocol", value: chosen)
        }
        return response
    }

    func upgrade(channel: any Channel, upgradeRequest: HTTPRequestHead) -> EventLoopFuture<UpgradeResult> {
        channel.eventLoop.makeCompletedFuture {
            guard let (upstream, identity) = pending.withLockedValue({ value in defer { value = nil }; return value }) else {
                throw NotUpgrading.badHandshake
            }
            try channel.pipeline.syncOperations.addHandler(WebSocketFrameEncoder())
            try channel.pipeline.syncOperations.addHandler(
                ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: dependencies.connector.maxFrameSize))
            )
            try channel.pipeline.syncOperations.addHandler(WebSocketProtocolErrorHandler())
            let client = try NIOAsyncChannel<WebSocketFrame, WebSocketFrame>(
                wrappingChannelSynchronously: channel,
                configuration: .init(isOutboundHalfClosureEnabled: true)
            )
            return .webSocket(client: client, upstream: upstream.channel, identity: identity)
        }
    }

    /// `Sec-WebSocket-Accept` for a key (RFC 6455 §4.2.2).
    static func acceptValue(for key: String) -> String {
        let digest = Insecure.SHA1.hash(data: Data((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8))
        return Data(digest).base64EncodedString()
    }

    enum NotUpgrading: Error {
        case badHandshake
        case unauthenticated
        case crossSite
        case upstreamRefused
    }
}

import ComfyGateCore
import ComfyGateJobs
import ComfyGatePolicy
import ComfyGateRequestParsing
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Requires an identity on every request that reaches it: sends browsers to the login page, everyone else a
/// 401 with a JSON body, checks the origin of cookie-authenticated writes, and asks the access policy what
/// becomes of the request. It tells the request's ``RequestTrace`` the route class and user it decided, and
/// answers `GET /metrics` when the policy lets the caller read it.
struct AuthenticationMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    let authenticator: RequestAuthenticator
    let originPolicy: OriginPolicy
    let policy: AccessPolicy
    /// What `GET /metrics` answers; nil when the gateway keeps no metrics (the policy then refuses the route).
    let metrics: GatewayMetrics?

    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        var context = context
        // The Comfy API v2 door words its refusals in the contract's error envelope.
        let refuse: (HTTPResponse.Status, String, HTTPFields) -> Response =
            V2Route.isUnderDoor(path: request.uri.path)
            ? { status, message, headers in
                var response = V2Door.failure(V2Failure(status: Int(status.code), message: message))
                response.headers.append(contentsOf: headers)
                return response
            }
            : { status, message, headers in GatewayResponse.error(status, message, headers: headers) }
        switch try await authenticator.authenticate(headers: request.headers, query: request.uri.query, peer: context.peerAddress) {
        case .authenticated(let identity):
            context.trace.record(.refused, user: identity.userName)
            if identity.credential == .session, !originPolicy.allows(request) {
                return refuse(.forbidden, "cross-site request refused", [:])
            }
            context.identity = identity
            let isWebSocket = request.headers[.upgrade]?.lowercased() == "websocket"
            let decision = policy.decide(RequestFacts(request.head, isWebSocket: isWebSocket), caller: identity.caller)
            context.trace.record(RouteClass(decision, path: request.uri.path), user: identity.userName)
            switch decision {
            case .forward(let plan):
                context.plan = plan
                return try await next(request, context)
            case .refuse(let refusal):
                return refuse(refusal.httpStatus, refusal.message, [:])
            case .comfyAPIv2(let v2):
                context.v2Request = v2
                return try await next(request, context)
            case .page(let page):
                context.page = page
                return try await next(request, context)
            case .answer(let status, let json):
                return GatewayResponse.rawJSON(HTTPResponse.Status(code: status), json)
            case .metrics:
                guard let metrics else { return refuse(.notFound, "metrics are turned off on this gateway", [:]) }
                return Response(
                    status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8", .cacheControl: "no-store"],
                    body: ResponseBody(byteBuffer: ByteBuffer(bytes: metrics.exposition())))
            case .gatewayRoute:
                // A gateway route asked with a method it does not serve.
                return refuse(.methodNotAllowed, "\(request.method.rawValue) is not served on \(request.uri.path)", [:])
            }
        case .anonymous where AccessPolicy.isPublicFrontEndFile(method: request.method.rawValue, path: request.uri.path):
            context.plan = ForwardPlan(target: request.uri.path)
            context.trace.record(.comfyui, user: nil)
            return try await next(request, context)
        case .anonymous where Self.isBrowserNavigation(request) && !V2Route.isUnderDoor(path: request.uri.path):
            authenticator.metrics?.authenticationFailed(.missing)
            return GatewayResponse.redirectToLogin(from: request)
        case .refused where Self.isBrowserNavigation(request) && !V2Route.isUnderDoor(path: request.uri.path)
            && PresentedCredential.cookie(named: authenticator.cookie.name, in: request.headers) != nil:
            // A session that ended (signed out, expired, user disabled): back to the sign-in page, cookie cleared.
            var response = GatewayResponse.redirectToLogin(from: request, ended: true)
            response.headers[.setCookie] = authenticator.cookie.clearing
            return response
        case .anonymous:
            authenticator.metrics?.authenticationFailed(.missing)
            return refuse(.unauthorized, "authentication required", [.wwwAuthenticate: GatewayResponse.challenge(invalidToken: false)])
        case .refused:
            return refuse(.unauthorized, "authentication required", [.wwwAuthenticate: GatewayResponse.challenge(invalidToken: true)])
        case .busy:
            return refuse(.serviceUnavailable, "too many credential checks in progress, retry shortly", [.retryAfter: "1"])
        case .throttled(let wait):
            return refuse(.tooManyRequests, RequestAuthenticator.throttledMessage, [.retryAfter: RequestAuthenticator.retryAfter(wait)])
        }
    }

    /// A top-level page load by a browser: a safe method asking for HTML.
    static func isBrowserNavigation(_ request: Request) -> Bool {
        guard request.method == .get || request.method == .head else { return false }
        return request.headers[.accept]?.contains("text/html") ?? false
    }
}

/// Cookie-authenticated requests that change state must come from the gateway's own pages.
struct OriginPolicy: Sendable {
    /// The origin browsers use, from `public_url`; when nil, the request's own `Host` is the reference.
    let publicOrigin: String?

    func allows(_ request: Request) -> Bool {
        let isWebSocket = request.headers[.upgrade]?.lowercased() == "websocket"
        return allows(method: request.method, headers: request.headers, authority: request.head.authority, isWebSocket: isWebSocket)
    }

    func allows(method: HTTPRequest.Method, headers: HTTPFields, authority: String?, isWebSocket: Bool) -> Bool {
        if headers[.secFetchSite] == "cross-site" && (isWebSocket || !Self.isSafe(method)) { return false }
        guard let origin = headers[.origin], isWebSocket || !Self.isSafe(method) else { return true }
        if let publicOrigin { return origin.lowercased() == publicOrigin.lowercased() }
        guard let host = authority, let url = URL(string: origin), let originHost = url.host else { return false }
        let originAuthority = url.port.map { "\(originHost):\($0)" } ?? originHost
        return originAuthority.lowercased() == host.lowercased()
    }

    static func isSafe(_ method: HTTPRequest.Method) -> Bool {
        method == .get || method == .head || method == .options
    }
}

extension HTTPField.Name {
    static let secFetchSite = Self("Sec-Fetch-Site")!
}

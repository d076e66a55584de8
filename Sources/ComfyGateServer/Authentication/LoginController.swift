import ComfyGateCore
import ComfyGateRequestParsing
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// `/login` and `/logout`: the browser's way in and out. Signing out is a form with the session's anti-forgery
/// token (a link from another site cannot sign anyone out); `GET /logout` shows that form.
struct LoginController: Sendable {
    let renderer: PageRenderer
    let login: PasswordLogin
    let sessions: SessionManager
    let cookie: SessionCookie
    let originPolicy: OriginPolicy
    let store: any GatewayStore
    let clientAddress: ClientAddressResolver
    /// Counts refused sign-ins.
    let metrics: GatewayMetrics?
    let logger: Logger

    func addRoutes(to router: Router<GatewayRequestContext>) {
        router.get("/login") { request, _ in
            let query = request.uri.queryParameters
            return loginPage(next: RedirectTarget.sanitize(query["next"].map(String.init)), ended: query["ended"] == "1")
        }
        router.post("/login") { request, context in try await self.submit(request, context: context) }
        router.get("/logout") { request, _ in try await self.confirmLogout(request) }
        router.post("/logout") { request, context in try await self.logout(request, context: context) }
        router.on("/comfygate/static/**", method: .get) { request, _ in StaticFiles.response(path: request.uri.path, headers: request.headers) }
        router.on("/comfygate/static/**", method: .head) { request, _ in StaticFiles.response(path: request.uri.path, headers: request.headers) }
    }

    private func loginPage(
        next: String, username: String = "", error: String? = nil, ended: Bool = false, status: HTTPResponse.Status = .ok,
        headers: HTTPFields = [:]
    ) -> Response {
        var values: [String: Any] = ["next": next, "username": username, "hasUsername": !username.isEmpty, "ended": ended]
        values["error"] = error
        return renderer.publicPage("login", status: status, headers: headers, values)
    }

    private func submit(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        guard originPolicy.allows(request) else { return GatewayResponse.error(.forbidden, "cross-site request refused") }
        context.proceedIfExpected(request)
        let body = try await request.body.collect(upTo: context.maxUploadSize)
        let form = Self.parseForm(String(buffer: body))
        let next = RedirectTarget.sanitize(form["next"])
        let userName = form["username"] ?? ""
        let address = clientAddress.resolve(request, peer: context.peerAddress)
        switch try await login.attempt(userName: userName, password: form["password"] ?? "", clientAddress: address) {
        case .success(let user):
            let value = try await sessions.open(for: user, clientAddress: address, userAgent: request.headers[.userAgent])
            try await audit("login.succeeded", user: user.name, address: address)
            return Response(status: .seeOther, headers: [.location: next, .setCookie: cookie.setting(value), .cacheControl: "no-store"])
        case .refused:
            metrics?.authenticationFailed(.badPassword)
            try await audit("login.failed", user: userName, address: address)
            return loginPage(next: next, username: userName, error: "Wrong user name or password.", status: .unauthorized)
        case .throttled(let wait):
            metrics?.authenticationFailed(.loginThrottled)
            if login.throttle.isFirstRefusal(account: userName, address: address) {
                try await audit("login.throttled", user: userName, address: address)
            }
            try await Task.sleep(for: RequestAuthenticator.retryLaterDelay)
            let seconds = Int(wait.rounded(.up))
            return loginPage(
                next: next, username: userName, error: "Too many failed attempts. Try again in \(seconds) seconds.",
                status: .tooManyRequests, headers: [.retryAfter: String(seconds)])
        case .busy:
            return loginPage(
                next: next, username: userName, error: "The server is busy. Try again.", status: .serviceUnavailable,
                headers: [.retryAfter: "1"])
        }
    }

    /// `GET /logout`: the sign-out form, for the signed in; the sign-in page for everyone else.
    private func confirmLogout(_ request: Request) async throws -> Response {
        guard let value = PresentedCredential.cookie(named: cookie.name, in: request.headers),
            let identity = try await sessions.resolve(cookieValue: value)
        else {
            return Response(status: .seeOther, headers: [.location: "/login", .setCookie: cookie.clearing, .cacheControl: "no-store"])
        }
        return renderer.page("signOut", for: PageRenderer.Viewer(identity: identity, cookieValue: value), [:])
    }

    /// `POST /logout` with the session's anti-forgery token: ends the session.
    private func logout(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        context.proceedIfExpected(request)
        let form = Self.parseForm(String(buffer: try await request.body.collect(upTo: context.maxUploadSize)))
        guard let value = PresentedCredential.cookie(named: cookie.name, in: request.headers) else {
            return Response(status: .seeOther, headers: [.location: "/login", .cacheControl: "no-store"])
        }
        guard SessionManager.formTokenMatches(form["csrf"] ?? "", cookieValue: value) else {
            return GatewayResponse.error(.forbidden, "sign out from the gateway's own pages (the form's token is missing or wrong)")
        }
        try await sessions.close(cookieValue: value)
        return Response(status: .seeOther, headers: [.location: "/login", .setCookie: cookie.clearing, .cacheControl: "no-store"])
    }

    private func audit(_ action: String, user: String, address: String) async throws {
        logger.info("\(action)", metadata: ["user": "\(user)", "client": "\(address)"])
        try await store.appendAudit(AuditEvent(time: Date(), action: action, userName: user, clientAddress: address))
    }

    static func parseForm(_ body: String) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in body.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let decode = { (text: Substring) in
                let spaced = text.replacingOccurrences(of: "+", with: " ")
                return spaced.removingPercentEncoding ?? spaced
            }
            let key = decode(parts[0])
            if fields[key] == nil { fields[key] = parts.count > 1 ? decode(parts[1]) : "" }
        }
        return fields
    }
}

import ComfyGateCore
import ComfyGateRequestParsing
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// `/login` and `/logout`: the browser's way in and out.
struct LoginController: Sendable {
    let login: PasswordLogin
    let sessions: SessionManager
    let cookie: SessionCookie
    let originPolicy: OriginPolicy
    let store: any GatewayStore
    let clientAddress: ClientAddressResolver
    let logger: Logger

    func addRoutes(to router: Router<GatewayRequestContext>) {
        router.get("/login") { request, _ in
            GatewayResponse.html(.ok, LoginPage.render(next: RedirectTarget.sanitize(request.uri.queryParameters["next"].map(String.init)), error: nil))
        }
        router.post("/login") { request, context in try await self.submit(request, context: context) }
        router.get("/logout") { request, _ in try await self.logout(request) }
        router.post("/logout") { request, _ in try await self.logout(request) }
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
            let value = try await sessions.open(for: user)
            try await audit("login.succeeded", user: user.name, address: address)
            return Response(status: .seeOther, headers: [.location: next, .setCookie: cookie.setting(value), .cacheControl: "no-store"])
        case .refused:
            try await audit("login.failed", user: userName, address: address)
            return GatewayResponse.html(.unauthorized, LoginPage.render(next: next, error: "Wrong user name or password."))
        case .throttled(let wait):
            if login.throttle.isFirstRefusal(account: userName, address: address) {
                try await audit("login.throttled", user: userName, address: address)
            }
            try await Task.sleep(for: RequestAuthenticator.retryLaterDelay)
            let seconds = Int(wait.rounded(.up))
            return GatewayResponse.html(
                .tooManyRequests,
                LoginPage.render(next: next, error: "Too many failed attempts. Try again in \(seconds) seconds."),
                headers: [.retryAfter: String(seconds)]
            )
        case .busy:
            return GatewayResponse.html(.serviceUnavailable, LoginPage.render(next: next, error: "The server is busy. Try again."),
                headers: [.retryAfter: "1"])
        }
    }

    private func logout(_ request: Request) async throws -> Response {
        if let value = PresentedCredential.cookie(named: cookie.name, in: request.headers) {
            try await sessions.close(cookieValue: value)
        }
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

import Synchronization
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import NIOCore

/// ComfyUI-Login (liusida/ComfyUI-Login @ 69109257) as observed (D.3, F.2).
///
/// Differences from the real extension, on purpose: no bcrypt (see ``ComfyUIStandIn/Login``); the session cookie
/// `AIOHTTP_SESSION` holds a random id remembered by the stand-in instead of an encrypted session (like the real
/// one it is never revoked); guest mode is not implemented.
struct StandInLoginMiddleware: RouterMiddleware {
    typealias Context = StandInContext
    let state: StandInState

    struct MalformedAuthorization: Error {}

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        if path == "/login" || path.hasSuffix(".css") || path.hasSuffix(".css.map") || path.hasSuffix(".js") || path.hasSuffix(".ico") {
            return try await next(request, context)
        }
        let (token, sessions) = state.inner.withLock { ($0.passwordHash ?? "", $0.sessions) }
        if let session = Self.sessionCookie(request), sessions.contains(session) {
            var response = try await next(request, context)
            if path == "/" { response.headers[.cacheControl] = "no-cache" }
            return response
        }
        let cors = state.options.corsOrigin
        if cors == nil || cors == "*" || cors == request.headers[.origin] {
            if let authorization = request.headers[.authorization], !authorization.isEmpty {
                // Python: auth_type, token = header.split()  → ValueError (500) unless exactly two words
                let words = authorization.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" })
                guard words.count == 2 else { throw MalformedAuthorization() }
                if words[0] == "Bearer", words[1] == token { return try await next(request, context) }
            }
            if let queryToken = Self.queryValue(request, "token"), queryToken == token {
                return try await next(request, context)
            }
        }
        if (request.headers[.accept] ?? "").contains("text/html") {
            return Self.found("/login")
        }
        return StandInResponses.json(["error": "Authentication required."], status: .unauthorized)
    }

    /// aiohttp `request.query.get(name)`: first value, percent-decoded.
    static func queryValue(_ request: Request, _ name: String) -> String? {
        guard let query = request.uri.query else { return nil }
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = formDecode(String(kv[0]))
            if key == name { return kv.count > 1 ? formDecode(String(kv[1])) : "" }
        }
        return nil
    }

    static func formDecode(_ s: String) -> String {
        s.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? s
    }

    static func sessionCookie(_ request: Request) -> String? {
        for header in request.headers[values: .cookie] {
            for item in header.split(separator: ";") {
                let kv = item.split(separator: "=", maxSplits: 1)
                guard kv.count == 2, kv[0].trimmingCharacters(in: .whitespaces) == "AIOHTTP_SESSION" else { continue }
                var value = kv[1].trimmingCharacters(in: .whitespaces)
                if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = String(value.dropFirst().dropLast()) }
                return value
            }
        }
        return nil
    }

    /// aiohttp `HTTPFound`.
    static func found(_ location: String, cookie: String? = nil) -> Response {
        var response = StandInResponses.aiohttpError(.found)
        response.headers[.location] = location
        if let cookie { response.headers[.setCookie] = "AIOHTTP_SESSION=\"\(cookie)\"; HttpOnly; Path=/" }
        return response
    }
}

/// `/login`, `/logout` routes of ComfyUI-Login (each also under `/api`).
enum StandInLoginRoutes {
    static let page = """
        <!DOCTYPE html>
        <html><head><title>ComfyUI Login</title><link rel="stylesheet" href="/old_css/login.css"></head>
        <body><form action="/login" method="post">
        <input type="text" name="username" placeholder="Username">
        <input type="password" name="password" placeholder="Password">
        <button type="submit">Login</button>
        </form></body></html>

        """

    static func register(on routes: StandInRouteTable, state: StandInState) {
        routes.add("/login", .get) { request, _ in
            let sessions = state.inner.withLock { $0.sessions }
            if let session = StandInLoginMiddleware.sessionCookie(request), sessions.contains(session) {
                return StandInLoginMiddleware.found("/")
            }
            return StandInResponses.text(page, contentType: "text/html; charset=utf-8")
        }
        routes.add("/login", .post) { request, _ in
            let body = try await standInReadBody(request, limit: state.options.maxUploadSize)
            var form: [String: String] = [:]
            for pair in String(decoding: body, as: UTF8.self).split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let key = StandInLoginMiddleware.formDecode(String(kv[0]))
                if form[key] == nil { form[key] = kv.count > 1 ? StandInLoginMiddleware.formDecode(String(kv[1])) : "" }
            }
            guard let password = form["password"] else { throw StandInLoginMiddleware.MalformedAuthorization() }
            guard let login = state.options.login else { throw StandInLoginMiddleware.MalformedAuthorization() }
            let hash = state.inner.withLock { $0.passwordHash }
            if hash == nil {
                guard form["username"] != nil else { throw StandInLoginMiddleware.MalformedAuthorization() }
                let session = UUID().uuidString.lowercased()
                state.inner.withLock {
                    $0.passwordHash = login.newHashForFirstPassword(password)
                    $0.sessions.insert(session)
                }
                return StandInLoginMiddleware.found("/", cookie: session)
            }
            guard login.verifyPassword(password) else { return StandInLoginMiddleware.found("/login?wrong_password=1") }
            let session = UUID().uuidString.lowercased()
            state.inner.withLock { _ = $0.sessions.insert(session) }
            return StandInLoginMiddleware.found("/", cookie: session)
        }
        routes.add("/logout", .get) { _, _ in
            // A fresh, logged-out cookie; the old one stays valid, as with the encrypted cookie.
            StandInLoginMiddleware.found("/login", cookie: UUID().uuidString.lowercased())
        }
    }
}

import ComfyGateRequestParsing
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The gateway's own answers: small JSON bodies that say what happened, never a stack trace.
enum GatewayResponse {
    static func json(_ status: HTTPResponse.Status, _ object: [String: any Sendable], headers: HTTPFields = [:]) -> Response {
        var headers = headers
        headers[.contentType] = "application/json"
        headers[.cacheControl] = "no-store"
        return Response(status: status, headers: headers, body: .init(byteBuffer: jsonBody(object)))
    }

    /// An object as compact JSON with sorted keys.
    static func jsonBody(_ object: [String: any Sendable]) -> ByteBuffer {
        ByteBuffer(bytes: (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8))
    }

    /// A JSON body already serialised.
    static func rawJSON(_ status: HTTPResponse.Status, _ json: String) -> Response {
        rawJSON(status, Array(json.utf8))
    }

    /// JSON bytes already serialised (ComfyUI's answer shapes, built by the gateway).
    static func rawJSON(_ status: HTTPResponse.Status, _ json: [UInt8]) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(bytes: json))
        )
    }

    static func error(_ status: HTTPResponse.Status, _ message: String, headers: HTTPFields = [:]) -> Response {
        json(status, ["error": message], headers: headers)
    }

    /// The `WWW-Authenticate` value of a 401.
    static func challenge(invalidToken: Bool) -> String {
        invalidToken ? #"Bearer realm="comfygate", error="invalid_token""# : #"Bearer realm="comfygate""#
    }

    /// 302 to the login page, remembering where the browser wanted to go (without any `token` parameter).
    /// - Parameter ended: the browser's session has just ended, which the sign-in page then says.
    static func redirectToLogin(from request: Request, ended: Bool = false) -> Response {
        var next = request.uri.path
        if let query = request.uri.query, let kept = QueryString.removing("token", from: query) { next += "?" + kept }
        let encoded = next.addingPercentEncoding(withAllowedCharacters: .urlQueryValueAllowed) ?? "/"
        return Response(
            status: .found, headers: [.location: "/login?" + (ended ? "ended=1&" : "") + "next=" + encoded, .cacheControl: "no-store"])
    }

    /// One of the gateway's pages, under a strict Content-Security-Policy: its own stylesheet, script and images,
    /// forms only to itself, never framed.
    static func html(_ status: HTTPResponse.Status, _ page: String, headers: HTTPFields = [:]) -> Response {
        var headers = headers
        headers[.contentType] = "text/html; charset=utf-8"
        headers[.cacheControl] = "no-store"
        headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
        headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        headers[HTTPField.Name("Referrer-Policy")!] = "same-origin"
        headers[HTTPField.Name("Content-Security-Policy")!] = contentSecurityPolicy
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: page)))
    }

    static let contentSecurityPolicy =
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; connect-src 'self'; "
        + "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

    /// 303 to another page after a form (post, redirect, get).
    static func seeOther(_ location: String, headers: HTTPFields = [:]) -> Response {
        var headers = headers
        headers[.location] = location
        headers[.cacheControl] = "no-store"
        return Response(status: .seeOther, headers: headers)
    }
}

extension CharacterSet {
    /// Characters left as they are inside a query value.
    static let urlQueryValueAllowed: CharacterSet = {
        var set = CharacterSet.urlQueryAllowed
        set.remove(charactersIn: "&=+#?")
        return set
    }()
}

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
        ByteBuffer(bytes: (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8))
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
    static func redirectToLogin(from request: Request) -> Response {
        var next = request.uri.path
        if let query = request.uri.query, let kept = QueryString.removing("token", from: query) { next += "?" + kept }
        let encoded = next.addingPercentEncoding(withAllowedCharacters: .urlQueryValueAllowed) ?? "/"
        return Response(status: .found, headers: [.location: "/login?next=" + encoded, .cacheControl: "no-store"])
    }

    static func html(_ status: HTTPResponse.Status, _ page: String, headers: HTTPFields = [:]) -> Response {
        var headers = headers
        headers[.contentType] = "text/html; charset=utf-8"
        headers[.cacheControl] = "no-store"
        headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
        headers[HTTPField.Name("Content-Security-Policy")!] = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: page)))
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

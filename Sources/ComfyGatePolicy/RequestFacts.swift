import ComfyGateRequestParsing

/// What the policy reads from a request, gathered the same way on every request path.
public struct RequestFacts: Sendable, Equatable {
    /// The method in upper case, e.g. `GET`.
    public var method: String
    /// The path as sent, percent-encoded, without the query.
    public var path: String
    /// The raw query string, without `?`.
    public var query: String?
    /// A websocket handshake.
    public var isWebSocket: Bool
    /// Whether a body follows the head (a `Content-Length` above 0 or a `Transfer-Encoding`).
    public var hasBody: Bool
    /// The `Content-Type` header, when sent.
    public var contentType: String?

    public init(method: String, path: String, query: String?, isWebSocket: Bool = false, hasBody: Bool = false, contentType: String? = nil) {
        self.method = method.uppercased()
        self.path = path
        self.query = query
        self.isWebSocket = isWebSocket
        self.hasBody = hasBody
        self.contentType = contentType
    }

    /// Splits a request target (`/path?query`) into path and query.
    public init(method: String, target: String, isWebSocket: Bool = false, hasBody: Bool = false, contentType: String? = nil) {
        let queryStart = target.utf8.firstIndex(of: UInt8(ascii: "?"))
        let path = String(target[..<(queryStart ?? target.endIndex)])
        let query = queryStart.map { String(target[target.utf8.index(after: $0)...]) }
        self.init(method: method, path: path, query: query, isWebSocket: isWebSocket, hasBody: hasBody, contentType: contentType)
    }

    /// The first value of a query parameter, percent-decoded.
    public func queryValue(_ name: String) -> String? {
        query.flatMap { QueryString.firstValue(of: name, in: $0) }
    }
}

/// The route ComfyUI serves a path with, as its HTTP server matches it: percent-decoded, one `/api` prefix
/// folded (ComfyUI registers every route at `/api<path>` too), trailing slashes trimmed.
public struct RoutePath: Sendable, Equatable {
    /// The decoded path with `/api` folded, e.g. `/history/abc`.
    public let value: String
    /// Its `/`-separated parts after the leading slash, e.g. `["history", "abc"]`.
    public let parts: [Substring]

    /// nil when the path cannot be routed safely: not percent-decodable, or holding `.`/`..` segments or a
    /// backslash, which ComfyUI's URL handling would resolve to another route than the one checked.
    public init?(path: String) {
        guard var decoded = PercentEncoding.decode(path), decoded.hasPrefix("/") else { return nil }
        let segments = decoded.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        guard !segments.contains(where: { $0 == "." || $0 == ".." }), !decoded.contains("\\") else { return nil }
        if decoded == "/api" || decoded.hasPrefix("/api/") { decoded.removeFirst(4) }
        while decoded.count > 1, decoded.hasSuffix("/") { decoded.removeLast() }
        if decoded.isEmpty { decoded = "/" }
        value = decoded
        parts = decoded.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
    }

    /// Whether the route is `prefix` or lies under it (`/internal` covers `/internal/logs`).
    public func isUnder(_ prefix: String) -> Bool {
        value == prefix || value.hasPrefix(prefix + "/")
    }
}

import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

typealias StandInContext = BasicWebSocketRequestContext

/// An error that becomes exactly this response (aiohttp's `HTTPException` with a text).
struct StandInHTTPError: Error {
    let status: HTTPResponse.Status
    let body: String
    var contentType = "text/plain; charset=utf-8"
}

enum StandInResponses {
    static func json(_ value: StandInJSON, status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: value.serialized)))
    }

    static func text(_ text: String, status: HTTPResponse.Status = .ok, contentType: String = "text/plain; charset=utf-8") -> Response {
        var headers = HTTPFields()
        headers[.contentType] = contentType
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    /// aiohttp's `web.Response(status=…)`: no body.
    static func bare(_ status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/octet-stream"
        headers[.contentLength] = "0"
        return Response(status: status, headers: headers)
    }

    /// aiohttp's text for an `HTTPException` without explicit text: `"<code>: <reason>"`.
    static func aiohttpError(_ status: HTTPResponse.Status, headers extra: HTTPFields = [:]) -> Response {
        var response = text("\(status.code): \(status.reasonPhrase)", status: status)
        response.headers.append(contentsOf: extra)
        return response
    }

    /// aiohttp's answer to an unhandled exception.
    static func internalError(acceptsHTML: Bool) -> Response {
        if acceptsHTML {
            return text(
                "<html><head><title>500 Internal Server Error</title></head><body><h1>500 Internal Server Error</h1>Server got itself in trouble</body></html>",
                status: .internalServerError, contentType: "text/html; charset=utf-8")
        }
        return text("500 Internal Server Error\n\nServer got itself in trouble", status: .internalServerError)
    }
}

/// Reads a whole (small) request body, draining and answering 413 past `limit` as aiohttp does.
func standInReadBody(_ request: Request, limit: Int) async throws -> [UInt8] {
    var bytes: [UInt8] = []
    var total = 0
    for try await chunk in request.body {
        total += chunk.readableBytes
        if total <= limit { bytes.append(contentsOf: chunk.readableBytesView) }
    }
    if total > limit {
        throw StandInHTTPError(
            status: .contentTooLarge, body: "Maximum request body size \(limit) exceeded, actual body size \(total)")
    }
    return bytes
}

/// Records every request (outermost middleware). On the websocket-upgrade router only upgrades are recorded,
/// because a refused upgrade is answered again (and recorded) by the HTTP router.
struct StandInRecordingMiddleware: RouterMiddleware {
    typealias Context = StandInContext
    let state: StandInState
    let upgradesOnly: Bool

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let box = CounterBox()
        var request = request
        request.body = RequestBody(
            asyncSequence: request.body.map { @Sendable buffer in
                box.add(buffer.readableBytes)
                return buffer
            })
        let headers = standInRecordedHeaders(request)
        let record = StandInState.RequestRecord(
            method: request.method.rawValue, path: request.uri.path, query: request.uri.query, headers: headers,
            bodyByteCount: 0, status: 0)
        if upgradesOnly {
            let response = try await next(request, context)
            if response.status == .ok {
                var upgraded = record
                upgraded.status = 101
                _ = state.recordRequest(upgraded)
            }
            return response
        }
        let index = state.recordRequest(record)
        do {
            let response = try await next(request, context)
            state.completeRequest(index, bodyByteCount: box.value, status: response.status.code)
            return response
        } catch {
            state.completeRequest(index, bodyByteCount: box.value, status: 500)
            throw error
        }
    }
}

final class CounterBox: Sendable {
    private let count = Atomic<Int>(0)
    func add(_ n: Int) { count.add(n, ordering: .relaxed) }
    var value: Int { count.load(ordering: .relaxed) }
}

/// Turns errors into aiohttp-shaped answers: `404: Not Found`, 413 text, 500 "Server got itself in trouble".
struct StandInErrorMiddleware: RouterMiddleware {
    typealias Context = StandInContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as StandInHTTPError {
            return StandInResponses.text(error.body, status: error.status, contentType: error.contentType)
        } catch let error as HTTPError {
            return StandInResponses.aiohttpError(error.status)
        } catch {
            return StandInResponses.internalError(acceptsHTML: (request.headers[.accept] ?? "").contains("text/html"))
        }
    }
}

/// `cache_control` (A.2): `.js`/`.css`/`index*.json` → no-cache; image files → a day on success and permanent redirects,
/// an hour on 404, no-cache on temporary redirects. A `Cache-Control` the handler set is kept.
struct StandInCacheControlMiddleware: RouterMiddleware {
    typealias Context = StandInContext
    static let imageExtensions = [".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        guard response.headers[.cacheControl] == nil else { return response }
        let path = request.uri.path
        let last = path.split(separator: "/", omittingEmptySubsequences: false).last.map(String.init) ?? ""
        if path.hasSuffix(".js") || path.hasSuffix(".css") || (last.hasPrefix("index") && last.hasSuffix(".json")) {
            response.headers[.cacheControl] = "no-cache"
        } else if Self.imageExtensions.contains(where: path.lowercased().hasSuffix) {
            switch response.status.code {
            case 404: response.headers[.cacheControl] = "public, max-age=3600"
            case 200...206, 301, 308: response.headers[.cacheControl] = "public, max-age=86400"
            case 302, 303, 307: response.headers[.cacheControl] = "no-cache"
            default: break
            }
        }
        return response
    }
}

/// `origin_only_middleware` (A.4) plus the [newer] `Sec-Fetch-Site: cross-site` guard.
struct StandInOriginOnlyMiddleware: RouterMiddleware {
    typealias Context = StandInContext
    let rejectCrossSite: Bool

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if rejectCrossSite, request.headers[HTTPField.Name("Sec-Fetch-Site")!] == "cross-site" {
            return StandInResponses.bare(.forbidden)
        }
        if let host = request.head.authority, let origin = request.headers[.origin] {
            var hostDomain: String? = host.lowercased()
            let originParts = StandInURLParts(netlocOf: origin)
            var originDomain: String? = originParts.netloc.lowercased()
            let hostParts = StandInURLParts(netloc: host.lowercased())
            let loopback = Self.isLoopback(hostParts.hostname)
            if originParts.port == nil { hostDomain = hostParts.hostname }
            if hostParts.port == nil { originDomain = originParts.hostname }
            if loopback, let hostDomain, let originDomain, !hostDomain.isEmpty, !originDomain.isEmpty, hostDomain != originDomain {
                return StandInResponses.bare(.forbidden)
            }
        }
        if request.method == .options { return StandInResponses.bare(.ok) }
        return try await next(request, context)
    }

    /// `is_loopback`: a literal IP → its loopback-ness; a name → resolved with getaddrinfo (IPv4 then IPv6),
    /// loopback only when every resolved address is loopback.
    static func isLoopback(_ host: String?) -> Bool {
        guard let host, !host.isEmpty else { return false }
        if let literal = literalLoopback(host) { return literal }
        var loopback = false
        for family in [AF_INET, AF_INET6] {
            var hints = addrinfo()
            hints.ai_family = family
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            var result: UnsafeMutablePointer<addrinfo>?
            guard getaddrinfo(host, nil, &hints, &result) == 0 else { continue }
            defer { freeaddrinfo(result) }
            var cursor = result
            while let info = cursor {
                var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
                if getnameinfo(info.pointee.ai_addr, info.pointee.ai_addrlen, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0 {
                    let address = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                    if literalLoopback(address) != true { return loopback }
                    loopback = true
                }
                cursor = info.pointee.ai_next
            }
        }
        return loopback
    }

    /// nil when `host` is not an IP literal.
    static func literalLoopback(_ host: String) -> Bool? {
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 {
            return (UInt32(bigEndian: v4.s_addr) >> 24) == 127
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, host.split(separator: "%").first.map(String.init) ?? host, &v6) == 1 {
            let bytes = withUnsafeBytes(of: v6) { Array($0) }
            return bytes == [UInt8](repeating: 0, count: 15) + [1]
        }
        return nil
    }
}

/// Python `urlsplit` netloc/hostname/port for the origin check.
struct StandInURLParts {
    var netloc: String
    var hostname: String?
    var port: Int?

    init(netlocOf url: String) {
        // urlparse: netloc is what follows "//" up to the next "/", "?" or "#".
        if let range = url.range(of: "//") {
            let rest = url[range.upperBound...]
            let end = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
            self.init(netloc: String(rest[..<end]))
        } else {
            self.init(netloc: "")
        }
    }

    init(netloc: String) {
        self.netloc = netloc
        var hostPort = Substring(netloc)
        if let at = hostPort.lastIndex(of: "@") { hostPort = hostPort[hostPort.index(after: at)...] }
        if hostPort.hasPrefix("[") {
            let close = hostPort.firstIndex(of: "]") ?? hostPort.endIndex
            hostname = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close]).lowercased()
            let after = close < hostPort.endIndex ? hostPort[hostPort.index(after: close)...] : ""
            port = after.hasPrefix(":") ? Int(after.dropFirst()) : nil
        } else if let colon = hostPort.lastIndex(of: ":") {
            hostname = String(hostPort[..<colon]).lowercased()
            port = Int(hostPort[hostPort.index(after: colon)...])
        } else {
            hostname = String(hostPort).lowercased()
            port = nil
        }
        if hostname?.isEmpty == true { hostname = nil }
    }
}

/// `cors_middleware` (A.3): OPTIONS → empty 200, CORS headers on every answer, no origin validation.
struct StandInCORSMiddleware: RouterMiddleware {
    typealias Context = StandInContext
    let allowedOrigin: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = request.method == .options ? StandInResponses.bare(.ok) : try await next(request, context)
        response.headers[.accessControlAllowOrigin] = allowedOrigin
        response.headers[.accessControlAllowMethods] = "POST, GET, DELETE, PUT, OPTIONS"
        response.headers[.accessControlAllowHeaders] = "Content-Type, Authorization"
        response.headers[.accessControlAllowCredentials] = "true"
        return response
    }
}

/// Request headers as sent; HTTPTypes keeps `Host` as the `authority` pseudo-header, so it is put back first.
func standInRecordedHeaders(_ request: Request) -> [ComfyUIStandIn.Header] {
    var headers = request.head.authority.map { [ComfyUIStandIn.Header(name: "Host", value: $0)] } ?? []
    headers += request.headers.map { ComfyUIStandIn.Header(name: $0.name.rawName, value: $0.value) }
    return headers
}

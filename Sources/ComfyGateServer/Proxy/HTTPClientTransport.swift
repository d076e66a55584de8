import AsyncHTTPClient
public import Foundation
import HTTPTypes
public import Hummingbird
import NIOCore
import NIOHTTP1
import NIOPosix

/// ``UpstreamTransport`` over AsyncHTTPClient, for ComfyUI behind https: pooled keep-alive connections, TLS,
/// bodies streamed both ways.
public struct HTTPClientTransport: UpstreamTransport {
    let client: HTTPClient
    let baseURL: String

    /// - Parameters:
    ///   - upstream: ComfyUI's base URL; a path in it is prefixed to every request.
    ///   - connectTimeout: how long connecting may take.
    ///   - readTimeout: how long ComfyUI may stay silent while an answer is due.
    public init(upstream: URL, connectTimeout: TimeInterval, readTimeout: TimeInterval) {
        self.client = Self.makeClient(connectTimeout: connectTimeout, readTimeout: readTimeout)
        var base = upstream.absoluteString
        while base.hasSuffix("/") { base.removeLast() }
        self.baseURL = base
    }

    public func shutdown() async {
        try? await client.shutdown()
    }

    /// A client suited to proxying: no redirects followed, no decompression, bounded connect and idle-read time.
    static func makeClient(connectTimeout: TimeInterval, readTimeout: TimeInterval) -> HTTPClient {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: .milliseconds(Int64(connectTimeout * 1000)), read: .milliseconds(Int64(readTimeout * 1000))),
            decompression: .disabled
        )
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 64)
        configuration.httpVersion = .http1Only
        return HTTPClient(eventLoopGroupProvider: .shared(MultiThreadedEventLoopGroup.singleton), configuration: configuration)
    }

    public func send(_ request: UpstreamRequest) async throws(UpstreamError) -> Response {
        var outgoing = HTTPClientRequest(url: baseURL + request.pathAndQuery)
        outgoing.method = HTTPMethod(rawValue: request.method.rawValue)
        outgoing.headers.reserveCapacity(request.headers.count)
        for field in request.headers { outgoing.headers.add(name: field.name.rawName, value: field.value) }
        if let body = request.body {
            outgoing.body = .stream(
                CheckedRequestBody(body: body, expectedLength: request.contentLength),
                length: request.contentLength.map { .known(Int64($0)) } ?? .unknown
            )
        }
        let response: HTTPClientResponse
        do {
            response = try await client.execute(outgoing, deadline: .distantFuture)
        } catch {
            throw Self.classify(error, upstream: baseURL)
        }
        return Response(
            status: HTTPResponse.Status(code: Int(response.status.code), reasonPhrase: response.status.reasonPhrase),
            headers: UpstreamResponseHeaders.fields(from: response.headers),
            body: ResponseBody(asyncSequence: response.body)
        )
    }

    static func classify(_ error: any Error, upstream: String) -> UpstreamError {
        if let bodyError = error as? ClientBodyError { return .clientBody(bodyError, upstream: upstream) }
        if let clientError = error as? HTTPClientError {
            switch clientError {
            case .connectTimeout: return UpstreamError(kind: .timeout, upstream: upstream, cause: "connection timed out")
            case .readTimeout: return UpstreamError(kind: .timeout, upstream: upstream, cause: "no answer within the read timeout")
            case .deadlineExceeded: return UpstreamError(kind: .timeout, upstream: upstream, cause: "deadline exceeded")
            case .remoteConnectionClosed:
                return UpstreamError(kind: .unreachable, upstream: upstream, cause: "connection closed before a response")
            default: break
            }
        }
        if let connectError = error as? NIOConnectionError {
            let cause = connectError.connectionErrors.first.map { "\($0.error)" } ?? "\(connectError)"
            return UpstreamError(kind: .unreachable, upstream: upstream, cause: "cannot connect: \(Self.shorten(cause))")
        }
        return UpstreamError(kind: .unreachable, upstream: upstream, cause: Self.shorten("\(error)"))
    }

    private static func shorten(_ text: String) -> String {
        if text.contains("Connection refused") || text.contains("connectionRefused") || text.contains("errno: 111") {
            return "connection refused"
        }
        return String(text.prefix(200))
    }
}

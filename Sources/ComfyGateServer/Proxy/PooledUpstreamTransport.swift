public import Foundation
import HTTPTypes
public import Hummingbird
import NIOCore
import NIOHTTP1
public import NIOPosix

/// ``UpstreamTransport`` straight over SwiftNIO: keep-alive HTTP/1.1 connections to ComfyUI pooled per event
/// loop, request and response bodies streamed with backpressure, and small answers written to the client in
/// one piece. For plain-HTTP upstreams (ComfyUI on the same host or network); ``HTTPClientTransport`` covers https.
public final class PooledUpstreamTransport: UpstreamTransport {
    let pool: UpstreamConnectionPool
    private let authority: String
    private let basePath: String
    private let upstreamName: String

    /// - Parameters:
    ///   - upstream: ComfyUI's base URL (`http`); a path in it is prefixed to every request.
    ///   - connectTimeout: how long connecting may take.
    ///   - readTimeout: how long ComfyUI may stay silent while an answer is due.
    public init(upstream: URL, connectTimeout: TimeInterval, readTimeout: TimeInterval, group: MultiThreadedEventLoopGroup = .singleton) {
        let host = upstream.host ?? "127.0.0.1"
        let port = upstream.port ?? 80
        self.pool = UpstreamConnectionPool(
            host: host, port: port, group: group,
            connectTimeout: .milliseconds(Int64(connectTimeout * 1000)),
            readTimeout: .milliseconds(Int64(readTimeout * 1000))
        )
        self.authority = Gateway.authority(of: upstream)
        var path = upstream.path
        while path.hasSuffix("/") { path.removeLast() }
        self.basePath = path
        var base = upstream.absoluteString
        while base.hasSuffix("/") { base.removeLast() }
        self.upstreamName = base
    }

    public func send(_ request: UpstreamRequest) async throws(UpstreamError) -> Response {
        let head = requestHead(request)
        do {
            var (connection, reused) = try await pool.acquire()
            do {
                return try await exchange(head, body: request.body, contentLength: request.contentLength, on: connection)
            } catch UpstreamExchangeError.closedBeforeAnswer where reused && request.body == nil {
                // ComfyUI closed the idle connection as the request went out: one retry on a fresh connection.
                connection = try await pool.connect(on: connection.eventLoop)
                reused = false
                return try await exchange(head, body: request.body, contentLength: request.contentLength, on: connection)
            }
        } catch {
            throw classify(error)
        }
    }

    public func shutdown() async {
        await pool.shutdown()
    }

    private func exchange(
        _ head: HTTPRequestHead, body: RequestBody?, contentLength: Int?, on connection: UpstreamConnection
    ) async throws -> Response {
        let answer = connection.eventLoop.makePromise(of: UpstreamAnswer.self)
        let endsRequest = body == nil
        connection.onLoop { $0.begin(head, endsRequest: endsRequest, answer: answer) }
        if let body {
            do {
                try await Self.stream(CheckedRequestBody(body: body, expectedLength: contentLength), to: connection)
            } catch {
                connection.onLoop { $0.abandon() }
                answer.fail(error)
                throw error
            }
        }
        switch try await answer.futureResult.get() {
        case .complete(let head, let body):
            return Response(
                status: Self.status(head), headers: Self.headers(head),
                body: body.map { ResponseBody(byteBuffer: $0) } ?? ResponseBody()
            )
        case .streaming(let head, let body):
            return Response(status: Self.status(head), headers: Self.headers(head), body: ResponseBody(asyncSequence: body))
        }
    }

    /// Streams the client's body to ComfyUI, waiting for the socket whenever it stops taking bytes.
    private static func stream(_ body: CheckedRequestBody, to connection: UpstreamConnection) async throws {
        var lastWrite: EventLoopFuture<Void>?
        for try await buffer in body {
            let written = connection.eventLoop.makePromise(of: Void.self)
            connection.onLoop { $0.writeBody(buffer, promise: written) }
            lastWrite = written.futureResult
            if !connection.channel.isWritable { try await written.futureResult.get() }
        }
        let ended = connection.eventLoop.makePromise(of: Void.self)
        connection.onLoop { $0.endRequest(promise: ended) }
        try await lastWrite?.get()
        try await ended.futureResult.get()
    }

    /// The HTTP/1.1 head ComfyUI gets for `request`.
    func requestHead(_ request: UpstreamRequest) -> HTTPRequestHead {
        var headers = HTTPHeaders()
        headers.reserveCapacity(request.headers.count + 2)
        headers.add(name: "Host", value: authority)
        for field in request.headers where field.name != .contentLength {
            headers.add(name: field.name.rawName, value: field.value)
        }
        if request.body != nil {
            if let length = request.contentLength {
                headers.add(name: "Content-Length", value: String(length))
            } else {
                headers.add(name: "Transfer-Encoding", value: "chunked")
            }
        }
        return HTTPRequestHead(
            version: .http1_1, method: HTTPMethod(rawValue: request.method.rawValue), uri: basePath + request.pathAndQuery,
            headers: headers
        )
    }

    private static func status(_ head: HTTPResponseHead) -> HTTPResponse.Status {
        HTTPResponse.Status(code: Int(head.status.code), reasonPhrase: head.status.reasonPhrase)
    }

    private static func headers(_ head: HTTPResponseHead) -> HTTPFields {
        UpstreamResponseHeaders.fields(from: head.headers)
    }

    /// The gateway's account of a failed exchange.
    func classify(_ error: any Error) -> UpstreamError {
        switch error {
        case UpstreamExchangeError.readTimeout:
            return UpstreamError(kind: .timeout, upstream: upstreamName, cause: "no answer within the read timeout")
        case UpstreamExchangeError.closedBeforeAnswer, UpstreamExchangeError.closedDuringAnswer:
            return UpstreamError(kind: .unreachable, upstream: upstreamName, cause: "connection closed before a response")
        case ChannelError.connectTimeout:
            return UpstreamError(kind: .timeout, upstream: upstreamName, cause: "connection timed out")
        default:
            return HTTPClientTransport.classify(error, upstream: upstreamName)
        }
    }
}

import Crypto
public import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
public import Synchronization

/// A Hugging Face hub on loopback for the download and setup tests: `resolve` URLs on one port answer `302` with
/// `X-Linked-Etag` / `X-Linked-Size` to a CDN on another port, which serves the bytes with `Range`. It can ask for a
/// token, publish a wrong checksum, throttle, and drop a connection part way through a file.
public final class ModelHub: Sendable {
    public struct Served: Sendable {
        public var bytes: [UInt8]
        /// The SHA-256 published; the true one unless a test says otherwise.
        public var publishedSHA: String
    }

    public struct CDNRequest: Sendable, Equatable {
        public var name: String
        public var range: String?
        public var hadAuthorization: Bool

        public init(name: String, range: String?, hadAuthorization: Bool) {
            self.name = name
            self.range = range
            self.hadAuthorization = hadAuthorization
        }
    }

    public struct State: Sendable {
        public var files: [String: Served] = [:]
        public var requiredToken: String?
        public var resolveAuthorizations: [String?] = []
        public var cdnRequests: [CDNRequest] = []
        /// Connections to drop after this many bytes of the body, one entry per connection to drop.
        public var dropAfter: [String: [Int]] = [:]
        /// Pause between 16 KiB chunks.
        public var chunkPause: Duration = .zero
    }

    public let state = Mutex(State())
    public private(set) nonisolated(unsafe) var hubPort = 0
    public private(set) nonisolated(unsafe) var cdnPort = 0

    /// The value for `HF_ENDPOINT`.
    public var endpoint: URL { URL(string: "http://127.0.0.1:\(hubPort)")! }

    /// Publishes a file at `repository/resolve/main/path`.
    public func publish(_ bytes: [UInt8], name: String, wrongChecksum: Bool = false) {
        let sha = SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
        state.withLock { $0.files[name] = Served(bytes: bytes, publishedSHA: wrongChecksum ? String(sha.reversed()) : sha) }
    }

    public static func sha256(_ bytes: [UInt8]) -> String {
        SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }

    /// Runs `body` with the hub and its CDN listening.
    public static func with<T: Sendable>(_ body: @Sendable (ModelHub) async throws -> T) async throws -> T {
        let hub = ModelHub()
        return try await withLoopbackServer(hub.resolveRouter(), label: "model-hub") { hubPort in
            try await withLoopbackServer(hub.cdnRouter(), label: "model-hub-cdn") { cdnPort in
                hub.hubPort = hubPort
                hub.cdnPort = cdnPort
                return try await body(hub)
            }
        }
    }

    private func resolveRouter() -> Router<BasicRequestContext> {
        let router = Router()
        let answer: @Sendable (Request, BasicRequestContext) async throws -> Response = { [self] request, _ in
            let name = String(request.uri.path.split(separator: "/").last ?? "")
            let authorization = request.headers[.authorization]
            let (served, token) = state.withLock { state in
                state.resolveAuthorizations.append(authorization)
                return (state.files[name], state.requiredToken)
            }
            if let token, authorization != "Bearer \(token)" { return Response(status: .unauthorized) }
            guard let served else { return Response(status: .notFound) }
            return Response(status: .found, headers: [
                .location: "http://127.0.0.1:\(cdnPort)/cdn/\(name)",
                HTTPField.Name("X-Linked-Etag")!: "\"\(served.publishedSHA)\"",
                HTTPField.Name("X-Linked-Size")!: String(served.bytes.count),
            ])
        }
        router.get("**", use: answer)
        router.head("**", use: answer)
        return router
    }

    private func cdnRouter() -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/cdn/:name") { [self] request, context in
            let name = context.parameters.get("name") ?? ""
            let range = request.headers[.range]
            let (served, drop, pause) = state.withLock { state in
                state.cdnRequests.append(CDNRequest(name: name, range: range, hadAuthorization: request.headers[.authorization] != nil))
                let drop = state.dropAfter[name]?.isEmpty == false ? state.dropAfter[name]!.removeFirst() : nil
                return (state.files[name], drop, state.chunkPause)
            }
            guard let served else { return Response(status: .notFound) }
            var start = 0
            var status = HTTPResponse.Status.ok
            var headers: HTTPFields = [.acceptRanges: "bytes"]
            if let range, range.hasPrefix("bytes="), let first = Int(range.dropFirst(6).split(separator: "-").first ?? "") {
                guard first < served.bytes.count else { return Response(status: .rangeNotSatisfiable) }
                start = first
                status = .partialContent
                headers[.contentRange] = "bytes \(first)-\(served.bytes.count - 1)/\(served.bytes.count)"
            }
            let body = Array(served.bytes[start...])
            headers[.contentLength] = String(body.count)
            return Response(status: status, headers: headers, body: ResponseBody { writer in
                var offset = 0
                while offset < body.count {
                    let end = min(body.count, offset + 16 * 1024)
                    if let drop, end > drop {
                        try await writer.write(ByteBuffer(bytes: body[offset..<max(offset, drop)]))
                        throw CancellationError()  // the connection ends mid-file
                    }
                    try await writer.write(ByteBuffer(bytes: body[offset..<end]))
                    offset = end
                    if pause != .zero { try await Task.sleep(for: pause) }
                }
                try await writer.finish(nil)
            })
        }
        return router
    }
}

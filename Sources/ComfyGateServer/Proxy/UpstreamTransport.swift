public import HTTPTypes
public import Hummingbird
import Logging

/// One request on its way to ComfyUI.
public struct UpstreamRequest: Sendable {
    public var method: HTTPRequest.Method
    /// Path and query exactly as the client sent them (less the gateway's `token` parameter).
    public var pathAndQuery: String
    public var headers: HTTPFields
    /// The streamed body, or nil when the request has none.
    public var body: RequestBody?
    public var contentLength: Int?
    /// A body the gateway wrote itself, kept to send again to another backend.
    var bodyBytes: [UInt8]? = nil
}

/// How the gateway reaches ComfyUI over HTTP. Kept to one call so the transport can be replaced without
/// touching authentication or policy.
public protocol UpstreamTransport: Sendable {
    /// Sends `request` and returns ComfyUI's response with its body still streaming.
    func send(_ request: UpstreamRequest) async throws(UpstreamError) -> Response
    /// Closes the connections; called once when the gateway stops.
    func shutdown() async
}

/// Why ComfyUI could not be reached or did not answer in time.
public struct UpstreamError: Error, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// Nothing listens, the name does not resolve, or the connection broke before an answer: 502.
        case unreachable
        /// ComfyUI did not accept the connection or answer within the configured time: 504.
        case timeout
        /// The client's own request body broke off or was malformed: 400, and nothing is ComfyUI's fault.
        case clientBody
    }

    public var kind: Kind
    public var upstream: String
    public var cause: String

    public init(kind: Kind, upstream: String, cause: String) {
        self.kind = kind
        self.upstream = upstream
        self.cause = cause
    }

    public var description: String { "upstream \(upstream): \(cause)" }

    var status: HTTPResponse.Status {
        switch kind {
        case .unreachable: .badGateway
        case .timeout: .gatewayTimeout
        case .clientBody: .badRequest
        }
    }

    /// The JSON object the client gets, whichever path the request took.
    var answer: [String: String] {
        switch kind {
        case .unreachable: ["error": "upstream unreachable", "upstream": upstream, "cause": cause]
        case .timeout: ["error": "upstream timed out", "upstream": upstream, "cause": cause]
        case .clientBody: ["error": "the request body broke off or was malformed", "cause": cause]
        }
    }

    /// Logs the failure of the request for `path`: a warning when ComfyUI failed, a debug line for a client's.
    func log(to logger: Logger, path: String) {
        if kind == .clientBody {
            logger.debug("request body broke off", metadata: ["cause": "\(cause)", "path": "\(path)"])
        } else {
            logger.warning("upstream request failed", metadata: ["upstream": "\(upstream)", "cause": "\(cause)", "path": "\(path)"])
        }
    }

    /// A client body that broke off, in the transports' terms.
    static func clientBody(_ error: ClientBodyError, upstream: String) -> UpstreamError {
        switch error {
        case .broken:
            UpstreamError(kind: .clientBody, upstream: upstream, cause: "the client's request body could not be read")
        case .incomplete(let received, let expected):
            UpstreamError(kind: .clientBody, upstream: upstream, cause: "the body ended after \(received) of \(expected) announced bytes")
        }
    }
}

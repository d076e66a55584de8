/// A failure of a ``ComfyUIClient`` call that ComfyUI (or whatever answers in its place) caused.
///
/// Transport failures (refused connections, timeouts) are thrown as they come from AsyncHTTPClient or WSClient.
/// Descriptions never include a credential.
public struct ComfyUIClientError: Error, Equatable, CustomStringConvertible {
    private enum Code: Equatable {
        case invalidBaseURL
        case unexpectedStatus
        case invalidResponse
        case promptRejected
        case webSocketUpgradeFailed
        case webSocketClosed
    }

    private let code: Code
    /// The HTTP status of the answer, when there was one.
    public let status: Int?
    /// The start of the answer's body (at most 200 characters), or what was wrong with it.
    public let detail: String

    private init(_ code: Code, status: Int? = nil, detail: String) {
        self.code = code
        self.status = status
        self.detail = detail
    }

    /// The base URL is not an absolute http or https URL.
    public static func invalidBaseURL(_ text: String) -> Self { .init(.invalidBaseURL, detail: text) }
    /// The server answered with a status the call does not expect.
    public static func unexpectedStatus(_ status: Int, bodyExcerpt: String) -> Self {
        .init(.unexpectedStatus, status: status, detail: bodyExcerpt)
    }
    /// The answer was not in the shape ComfyUI documents.
    public static func invalidResponse(_ what: String) -> Self { .init(.invalidResponse, detail: what) }
    /// `POST /prompt` answered 400: `detail` is `error.type: error.message`.
    public static func promptRejected(status: Int, _ detail: String) -> Self {
        .init(.promptRejected, status: status, detail: detail)
    }
    /// The websocket handshake was refused (the server did not answer 101).
    public static let webSocketUpgradeFailed = Self(.webSocketUpgradeFailed, detail: "")
    /// The websocket closed before the awaited event arrived.
    public static let webSocketClosed = Self(.webSocketClosed, detail: "")

    /// Whether two errors are the same kind of failure, ignoring status and detail.
    public func isKind(of other: Self) -> Bool { code == other.code }

    public var description: String {
        switch code {
        case .invalidBaseURL: "not an absolute http(s) URL: \(detail)"
        case .unexpectedStatus: "unexpected HTTP \(status ?? 0): \(detail)"
        case .invalidResponse: "unexpected answer: \(detail)"
        case .promptRejected: "prompt rejected (HTTP \(status ?? 0)): \(detail)"
        case .webSocketUpgradeFailed: "the websocket upgrade was refused"
        case .webSocketClosed: "the websocket closed before the expected event"
        }
    }
}

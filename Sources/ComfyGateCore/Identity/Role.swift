/// What a user may do through the gateway.
public enum Role: String, Sendable, Codable, CaseIterable, CustomStringConvertible {
    /// Everything, including administration of users and tokens.
    case admin
    /// Runs workflows: every ComfyUI route.
    case user
    /// Reads only: safe methods (`GET`, `HEAD`, `OPTIONS`) and the websocket.
    case viewer

    public var description: String { rawValue }

    /// The methods a viewer may use; checked as sent first, so the usual upper-case spelling costs no copy.
    private static let safeMethods: Set<String> = ["GET", "HEAD", "OPTIONS"]

    /// Whether this role may send a request with the given HTTP method upstream.
    public func allows(method: String) -> Bool {
        switch self {
        case .admin, .user: true
        case .viewer: Self.safeMethods.contains(method) || Self.safeMethods.contains(method.uppercased())
        }
    }
}

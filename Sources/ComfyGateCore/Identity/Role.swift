/// What a user may do through the gateway; the access policy (`ComfyGatePolicy`) applies it on every request path.
public enum Role: String, Sendable, Codable, CaseIterable, CustomStringConvertible {
    /// Everything, including administration of users and tokens, and sees everyone's work.
    case admin
    /// Runs workflows, and sees and touches only their own work.
    case user
    /// Reads only their own work: safe methods (`GET`, `HEAD`, `OPTIONS`) and the websocket.
    case viewer

    public var description: String { rawValue }
}

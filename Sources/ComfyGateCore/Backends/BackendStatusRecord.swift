public import Foundation

/// What one gateway replica last saw of one ComfyUI backend, so any replica can show every replica's view.
public struct BackendStatusRecord: Sendable, Codable, Equatable {
    /// The backend's name, as configured.
    public var name: String
    /// The replica that saw it.
    public var replica: String
    /// What it saw, as JSON text written by a gateway.
    public var status: String
    /// When it saw it.
    public var observedAt: Date

    public init(name: String, replica: String, status: String, observedAt: Date) {
        self.name = name
        self.replica = replica
        self.status = status
        self.observedAt = observedAt
    }
}

public import Foundation

/// An operator's decision about one ComfyUI backend, shared by every replica: drained (it finishes what runs and
/// takes nothing new) or back in service.
public struct BackendControl: Sendable, Codable, Equatable {
    /// The backend's name, as configured.
    public var name: String
    /// Whether it takes no new jobs.
    public var drained: Bool
    /// When it was drained or re-enabled.
    public var changedAt: Date
    /// Who did it, when known (a user name, `cli`).
    public var changedBy: String?

    public init(name: String, drained: Bool, changedAt: Date, changedBy: String? = nil) {
        self.name = name
        self.drained = drained
        self.changedAt = changedAt
        self.changedBy = changedBy
    }
}

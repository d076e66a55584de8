import ComfyGateCore
import ComfyGateJobs
import Foundation

/// What the gateway last saw of one backend, and its circuit breaker: a backend is `down` after
/// ``failureThreshold`` failures in a row (probes or hand-overs) and `up` again at its first answered probe.
struct BackendHealth: Sendable {
    enum State: String, Sendable, Codable {
        /// Not probed yet.
        case unknown
        case up
        /// The breaker is open: nothing is sent to it until a probe is answered.
        case down
    }

    var state = State.unknown
    /// Taken out of dispatch by an operator: it finishes what runs and takes nothing new.
    var drained = false
    var consecutiveFailures = 0
    /// Why it last failed, while it is down.
    var cause: String?
    /// When it last answered.
    var lastSeen: Date?
    /// When ``state`` last changed.
    var since: Date?
    var comfyUIVersion: String?
    var devices: [BackendSnapshot.Device] = []
    /// Prompts in its own queue, running and waiting.
    var running: Set<String> = []
    var pending = 0
    /// Its node classes and model lists, from `/object_info`.
    var catalog: NodeCatalog?
    var catalogReadAt: Date?

    /// Failures in a row that open the breaker.
    static let failureThreshold = 3

    /// Whether jobs and requests may go to it now: its breaker is closed (a backend not probed yet gets the benefit of
    /// the doubt; its first failure opens the breaker).
    var isAvailable: Bool { state != .down }

    /// Records an answered probe; true when the backend came (back) up.
    mutating func recordSuccess(at date: Date) -> Bool {
        consecutiveFailures = 0
        cause = nil
        lastSeen = date
        guard state != .up else { return false }
        state = .up
        since = date
        return true
    }

    /// Records a failure; true when it opened the breaker.
    mutating func recordFailure(_ why: String, at date: Date) -> Bool {
        consecutiveFailures += 1
        cause = why
        guard state != .down, consecutiveFailures >= Self.failureThreshold || state == .unknown else { return false }
        state = .down
        since = date
        return true
    }
}

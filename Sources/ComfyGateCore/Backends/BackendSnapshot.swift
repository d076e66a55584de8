public import Foundation

/// What one gateway saw of one backend at one moment: what `/readyz`, `comfygate backends` and the admin page show.
/// Replicas record theirs in the store (``BackendStatusRecord``) as JSON of this shape.
public struct BackendSnapshot: Sendable, Codable, Equatable {
    /// One GPU (or the CPU) as ComfyUI's `/system_stats` lists it.
    public struct Device: Sendable, Codable, Equatable {
        public var name: String
        public var type: String
        public var vramTotal: Int?
        public var vramFree: Int?

        public init(name: String, type: String, vramTotal: Int?, vramFree: Int?) {
            self.name = name
            self.type = type
            self.vramTotal = vramTotal
            self.vramFree = vramFree
        }

        enum CodingKeys: String, CodingKey {
            case name, type
            case vramTotal = "vram_total"
            case vramFree = "vram_free"
        }
    }

    public var name: String
    /// Its base URL, without any user information.
    public var url: String
    /// `up`, `down` (its circuit breaker is open) or `unknown` (not probed yet).
    public var state: String
    /// Taken out of dispatch by an operator: it finishes what runs and takes nothing new.
    public var drained: Bool
    public var weight: Double
    public var slots: Int
    /// Jobs the gateway has out there.
    public var inFlight: Int
    /// Prompts in its own queue: running, and waiting.
    public var queueRunning: Int
    public var queuePending: Int
    public var devices: [Device]
    public var comfyUIVersion: String?
    /// When it last answered, and when its state last changed.
    public var lastSeen: Date?
    public var since: Date?
    /// Why it is down.
    public var cause: String?
    public var labels: [String: String]

    public init(
        name: String, url: String, state: String, drained: Bool, weight: Double, slots: Int, inFlight: Int, queueRunning: Int,
        queuePending: Int, devices: [Device], comfyUIVersion: String?, lastSeen: Date?, since: Date?, cause: String?,
        labels: [String: String]
    ) {
        self.name = name
        self.url = url
        self.state = state
        self.drained = drained
        self.weight = weight
        self.slots = slots
        self.inFlight = inFlight
        self.queueRunning = queueRunning
        self.queuePending = queuePending
        self.devices = devices
        self.comfyUIVersion = comfyUIVersion
        self.lastSeen = lastSeen
        self.since = since
        self.cause = cause
        self.labels = labels
    }

    enum CodingKeys: String, CodingKey {
        case name, url, state, drained, weight, slots, devices, since, cause, labels
        case inFlight = "in_flight"
        case queueRunning = "queue_running"
        case queuePending = "queue_pending"
        case comfyUIVersion = "comfyui_version"
        case lastSeen = "last_seen"
    }

    /// The shared encoder: ISO 8601 dates, sorted keys, no escaped slashes.
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}

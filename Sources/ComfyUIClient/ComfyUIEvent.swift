/// A message ComfyUI sends on `/ws` (B.3 text messages, B.4 binary frames).
public enum ComfyUIEvent: Sendable, Equatable {
    /// Queue size; `sid` is set on the first message of a connection only.
    case status(queueRemaining: Int, sid: String?)
    case executionStart(promptID: String)
    case executionCached(promptID: String, nodes: [String])
    /// A node started; `node == nil` means the prompt finished (history is already written).
    case executing(promptID: String?, node: String?)
    case progress(promptID: String?, node: String?, value: Int, max: Int)
    /// `progress_state`: per-node state (`running`, `finished`, `error`), by node id.
    case progressState(promptID: String, nodes: [String: String])
    /// A node produced UI output, e.g. the images `SaveImage` wrote.
    case executed(promptID: String, node: String, images: [ImageReference])
    case executionSuccess(promptID: String)
    case executionError(promptID: String, node: String, nodeType: String, exceptionType: String, message: String)
    case executionInterrupted(promptID: String, node: String?)
    /// The server's feature flags (reply to a client's `feature_flags` frame).
    case featureFlags([String: JSONValue])
    /// A latent preview (binary types 1 and 4); `mimeType` is `image/jpeg` or `image/png`.
    case preview(mimeType: String, image: [UInt8], metadata: [String: JSONValue])
    /// Progress text of a node (binary type 3).
    case progressText(node: String, text: String)
    /// Any other text message (custom nodes may send their own types).
    case other(type: String, data: JSONValue)
    /// A binary frame of an unknown type.
    case unknownBinary(eventType: UInt32, payload: [UInt8])

    /// Decodes a text message; nil when it is not a JSON object with a `type`.
    public init?(text: String) {
        guard let json = try? JSONValue.decode(Array(text.utf8)), let type = json["type"]?.stringValue else { return nil }
        let data = json["data"] ?? .null
        let promptID = data["prompt_id"]?.stringValue
        switch type {
        case "status":
            self = .status(queueRemaining: data["status"]?["exec_info"]?["queue_remaining"]?.intValue ?? 0, sid: data["sid"]?.stringValue)
        case "execution_start": self = .executionStart(promptID: promptID ?? "")
        case "execution_cached":
            self = .executionCached(promptID: promptID ?? "", nodes: data["nodes"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        case "executing": self = .executing(promptID: promptID, node: data["node"]?.stringValue)
        case "progress":
            self = .progress(
                promptID: promptID, node: data["node"]?.stringValue, value: data["value"]?.intValue ?? 0, max: data["max"]?.intValue ?? 0)
        case "progress_state":
            self = .progressState(
                promptID: promptID ?? "", nodes: (data["nodes"]?.objectValue ?? [:]).mapValues { $0["state"]?.stringValue ?? "" })
        case "executed":
            self = .executed(promptID: promptID ?? "", node: data["node"]?.stringValue ?? "", images: ImageReference.list(data["output"]))
        case "execution_success": self = .executionSuccess(promptID: promptID ?? "")
        case "execution_error":
            self = .executionError(
                promptID: promptID ?? "", node: data["node_id"]?.stringValue ?? "", nodeType: data["node_type"]?.stringValue ?? "",
                exceptionType: data["exception_type"]?.stringValue ?? "", message: data["exception_message"]?.stringValue ?? "")
        case "execution_interrupted": self = .executionInterrupted(promptID: promptID ?? "", node: data["node_id"]?.stringValue)
        case "feature_flags": self = .featureFlags(data.objectValue ?? [:])
        default: self = .other(type: type, data: data)
        }
    }

    /// Decodes a binary frame: a 4-byte big-endian event type, then the payload (B.4).
    public init?(binary bytes: [UInt8]) {
        guard bytes.count >= 4 else { return nil }
        let eventType = Self.bigEndian(bytes[0..<4])
        let payload = Array(bytes[4...])
        switch eventType {
        case 1 where payload.count >= 4:
            let format = Self.bigEndian(payload[0..<4])
            self = .preview(mimeType: format == 2 ? "image/png" : "image/jpeg", image: Array(payload[4...]), metadata: [:])
        case 3 where payload.count >= 4:
            let length = Int(Self.bigEndian(payload[0..<4]))
            guard payload.count >= 4 + length else { return nil }
            self = .progressText(
                node: String(decoding: payload[4..<4 + length], as: UTF8.self),
                text: String(decoding: payload[(4 + length)...], as: UTF8.self))
        case 4 where payload.count >= 4:
            let length = Int(Self.bigEndian(payload[0..<4]))
            guard payload.count >= 4 + length else { return nil }
            let metadata = (try? JSONValue.decode(Array(payload[4..<4 + length])))?.objectValue ?? [:]
            self = .preview(
                mimeType: metadata["image_type"]?.stringValue ?? "image/png", image: Array(payload[(4 + length)...]), metadata: metadata)
        default:
            self = .unknownBinary(eventType: eventType, payload: payload)
        }
    }

    private static func bigEndian(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        bytes.prefix(4).reduce(0) { $0 << 8 | UInt32($1) }
    }
}

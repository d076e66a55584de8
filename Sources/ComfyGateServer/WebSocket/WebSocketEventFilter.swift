import ComfyGatePolicy
import NIOCore
import NIOWebSocket

/// Decides, frame by frame on the client's event loop, which of ComfyUI's websocket messages a non-admin's
/// socket gets, and records the output files their prompts announce (for their later `/view`).
///
/// ComfyUI sends a prompt's events to the socket of the prompt's `client_id`, which the gateway confines to the
/// owner; what it broadcasts anyway is cut here: `execution_interrupted` of another user's prompt, and
/// progress text (binary type 3), which names no prompt, unless this socket's user has the running prompt.
final class WebSocketEventFilter {
    private let caller: Caller
    private let isolation: Isolation
    /// The prompt of this socket's user that ComfyUI is running, as its events to this socket tell.
    private var runningOwnPrompt: String?

    init(caller: Caller, isolation: Isolation) {
        self.caller = caller
        self.isolation = isolation
    }

    /// Whether a frame from ComfyUI goes on to the client.
    func delivers(_ frame: WebSocketFrame) -> Bool {
        guard frame.fin else { return true }
        switch frame.opcode {
        case .text:
            return delivers(message: frame.unmaskedData.readableBytesView)
        case .binary:
            let data = frame.unmaskedData
            guard let eventType = data.getInteger(at: data.readerIndex, as: UInt32.self) else { return true }
            return eventType != Self.progressTextEvent || runningOwnPrompt != nil
        default:
            return true
        }
    }

    /// Binary event type of `send_progress_text`, broadcast by ComfyUI.
    static let progressTextEvent: UInt32 = 3

    private func delivers(message: ByteBufferView) -> Bool {
        switch Self.messageType(message) {
        case "execution_start":
            runningOwnPrompt = Self.promptID(in: message)
        case "execution_success", "execution_error":
            runningOwnPrompt = nil
        case "executing":
            if let json = try? PolicyJSON(parsing: message), json["data"]?["node"] == .null { runningOwnPrompt = nil }
        case "executed":
            if let output = ExecutedOutput(message: message) { isolation.recordOutputs(output.files, caller: caller) }
        case "execution_interrupted":
            guard let promptID = Self.promptID(in: message) else { return false }
            if promptID == runningOwnPrompt { runningOwnPrompt = nil }
            return isolation.policy.ownership.owner(ofPrompt: promptID) == caller.userID
        default:
            break
        }
        return true
    }

    /// The `type` of a `{"type": …, "data": …}` message. ComfyUI writes `type` first, so most messages are told
    /// apart without parsing them whole.
    static func messageType(_ message: ByteBufferView) -> String? {
        let prefix = Array(#"{"type": ""#.utf8)
        if message.starts(with: prefix) {
            let start = message.index(message.startIndex, offsetBy: prefix.count)
            if let end = message[start...].firstIndex(of: UInt8(ascii: "\"")) {
                let type = message[start..<end]
                if !type.contains(UInt8(ascii: "\\")) { return String(decoding: type, as: UTF8.self) }
            }
        }
        return (try? PolicyJSON(parsing: message))?["type"]?.stringValue
    }

    private static func promptID(in message: ByteBufferView) -> String? {
        (try? PolicyJSON(parsing: message))?["data"]?["prompt_id"]?.stringValue
    }
}

import ComfyGatePolicy
import NIOCore
import NIOWebSocket

/// Decides, frame by frame on the client's event loop, which of ComfyUI's websocket messages a non-admin's
/// socket gets, and records the output files their prompts announce (for their later `/view`).
///
/// ComfyUI sends a prompt's events to the socket of the prompt's `client_id`, which the gateway confines to the
/// owner; what it broadcasts anyway is cut here: `execution_interrupted` of another user's prompt, and
/// progress text (binary type 3), which names no prompt, unless this socket's user has the running prompt.
/// A message sent in fragments is held until its last fragment, then judged whole (ComfyUI does not fragment,
/// but nothing between it and the gateway may carry a message past the filter that way).
final class WebSocketEventFilter {
    private let caller: Caller
    private let isolation: Isolation
    /// The prompt of this socket's user that ComfyUI is running, as its events to this socket tell.
    private var runningOwnPrompt: String?
    /// The fragments so far of a message that is not complete yet.
    private var fragments: [WebSocketFrame] = []
    private var fragmentBytes = 0
    /// A fragmented message grew past ``maxFragmentedMessage``: its remaining fragments are dropped.
    private var droppingFragments = false

    /// The largest fragmented message held for judging; a larger one is not delivered.
    static let maxFragmentedMessage = 64 * 1024 * 1024

    init(caller: Caller, isolation: Isolation) {
        self.caller = caller
        self.isolation = isolation
    }

    /// What happens to a frame from ComfyUI.
    enum Admission {
        /// It goes on to the client.
        case deliver
        /// Nothing goes on now: the frame is dropped, or held as a fragment of a message not complete yet.
        case withhold
        /// It completes a fragmented message that may be delivered: these fragments (it among them) go on.
        case deliverFragments([WebSocketFrame])
        /// It goes on rewritten: this text message in its place.
        case deliverInstead([UInt8])
    }

    /// Judges the next frame from ComfyUI. Control frames between a message's fragments go on at once.
    func admit(_ frame: WebSocketFrame) -> Admission {
        switch frame.opcode {
        case .text, .binary, .continuation:
            break
        default:
            return .deliver
        }
        guard !frame.fin || !fragments.isEmpty || droppingFragments else {
            if frame.opcode == .text, let status = ownStatus(frame.unmaskedData.readableBytesView) {
                return .deliverInstead(status)
            }
            return delivers(opcode: frame.opcode, payload: frame.unmaskedData) ? .deliver : .withhold
        }
        if droppingFragments {
            droppingFragments = !frame.fin
            return .withhold
        }
        fragments.append(frame)
        fragmentBytes += frame.length
        if fragmentBytes > Self.maxFragmentedMessage {
            fragments = []
            fragmentBytes = 0
            droppingFragments = !frame.fin
            return .withhold
        }
        guard frame.fin else { return .withhold }
        let message = fragments
        fragments = []
        fragmentBytes = 0
        var payload = ByteBuffer()
        for fragment in message {
            var data = fragment.unmaskedData
            payload.writeBuffer(&data)
        }
        if message[0].opcode == .text, let status = ownStatus(payload.readableBytesView) { return .deliverInstead(status) }
        return delivers(opcode: message[0].opcode, payload: payload) ? .deliverFragments(message) : .withhold
    }

    /// A `status` message with `queue_remaining` counting this socket's user's own jobs, queued or out at
    /// ComfyUI, in place of ComfyUI's count of everyone's; nil for any other message.
    private func ownStatus(_ message: ByteBufferView) -> [UInt8]? {
        guard Self.messageType(message) == "status", var status = try? PolicyJSON(parsing: message),
            var execInfo = status["data"]?["status"]?["exec_info"], execInfo.members != nil
        else { return nil }
        execInfo["queue_remaining"] = .number(String(isolation.waitingJobs.count(of: caller.userID)))
        var data = status["data"]!
        var inner = data["status"]!
        inner["exec_info"] = execInfo
        data["status"] = inner
        status["data"] = data
        return status.serializedAsComfyUI()
    }

    /// Whether a whole message from ComfyUI goes on to the client.
    private func delivers(opcode: WebSocketOpcode, payload: ByteBuffer) -> Bool {
        switch opcode {
        case .text:
            return delivers(message: payload.readableBytesView)
        case .binary:
            guard let eventType = payload.getInteger(at: payload.readerIndex, as: UInt32.self) else { return true }
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

import Foundation
import Logging
import NIOCore
import Synchronization

/// Message queued for one websocket connection; the connection's writer task sends them in order.
enum StandInOutgoing: Sendable {
    case text(String)
    case binary(ByteBuffer)
    /// A text message as these frames: the first `text`, the rest `continuation`, the last with `fin`.
    case textFragments([ByteBuffer])
    case close(code: UInt16, reason: String?)
}

/// A queued prompt: `[number, prompt_id, prompt, extra_data, outputs_to_execute]`.
struct StandInQueueItem: Sendable {
    let number: StandInJSON
    let sortKey: Double
    let sequence: Int
    let promptId: String
    let prompt: StandInJSON
    let extraData: StandInJSON
    let outputs: [String]

    var tuple: StandInJSON { [number, .string(promptId), prompt, extraData, .array(outputs.map { .string($0) })] }
    var clientId: String? { extraData["client_id"]?.stringValue }
}

/// Everything mutable in the stand-in, behind one lock. Synchronous so that ordering of websocket
/// messages follows the order of state changes exactly.
final class StandInState: Sendable {
    struct Connection {
        let sid: String
        let continuation: AsyncStream<StandInOutgoing>.Continuation
        var recordIndex: Int
        var sawFirstText = false
        var supportsPreviewMetadata = false
    }

    struct RequestRecord {
        var method: String
        var path: String
        var query: String?
        var headers: [ComfyUIStandIn.Header]
        var bodyByteCount: Int
        var status: Int
    }

    struct WebSocketRecord {
        var sid: String
        var path: String
        var query: String?
        var headers: [ComfyUIStandIn.Header]
        var frames: [ComfyUIStandIn.RecordedFrame] = []
        var isOpen = true
        var flags: StandInJSON?
    }

    struct Inner {
        var pending: [StandInQueueItem] = []
        var running: StandInQueueItem?
        var history: [(String, StandInJSON)] = []
        var number = 0
        var sequence = 0
        var interruptRequested = false
        /// Set by ``ComfyUIStandIn/holdExecution()``: each node waits, running, until released or interrupted.
        var executionHeld = false
        var freeRequests: [StandInJSON] = []
        /// Routing table sid → connection id (a newer socket with the same clientId replaces the old one).
        var sockets: [String: Int] = [:]
        /// Every open connection by id.
        var connections: [Int: Connection] = [:]
        var nextConnectionId = 0
        var requests: [RequestRecord] = []
        var webSockets: [WebSocketRecord] = []
        var passwordHash: String?
        /// ComfyUI-Login session cookie values that are logged in (never revoked, as the encrypted cookie).
        var sessions: Set<String> = []
        /// `UserManager.users` (id, name) in insertion order, as `users.json` keeps them.
        var users: [(id: String, name: String)] = []
        /// Node signature → outputs/ui of the previous prompt (ComfyUI's classic cache).
        var cache: [String: StandInExecutor.NodeResult] = [:]
        var tempCounter = 0
        /// Node currently executing (resent to a reconnecting client of the running prompt).
        var runningNode: String?
    }

    let inner: Mutex<Inner>
    let options: ComfyUIStandIn.Options
    /// ``ComfyUIStandIn/Options/webRoot`` with its symbolic links resolved.
    let webRoot: String?
    let files: StandInFileStore
    let catalog = StandInNodeCatalog.standard
    let logger: Logger
    let workerWake: AsyncStream<Void>.Continuation
    let workerStream: AsyncStream<Void>

    init(options: ComfyUIStandIn.Options, webRoot: String?, files: StandInFileStore, logger: Logger) {
        var initial = Inner()
        initial.passwordHash = options.login?.passwordHash
        initial.users = options.multiUser ? options.users.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } : [("default", "default")]
        self.inner = Mutex(initial)
        if !options.multiUser {
            // An install whose front end has stored settings once: `GET /users` answers `"migrated": true`.
            try? FileManager.default.createDirectory(atPath: files.userDirectory + "/default", withIntermediateDirectories: true)
        }
        self.options = options
        self.webRoot = webRoot
        self.files = files
        self.logger = logger
        (self.workerStream, self.workerWake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    var featureFlags: StandInJSON {
        ["supports_preview_metadata": true, "max_upload_size": .int(options.maxUploadSize)]
    }

    // MARK: websocket messages

    static func message(_ type: String, _ data: StandInJSON) -> String {
        StandInJSON.object([("type", .string(type)), ("data", data)]).serialized
    }

    /// `send_sync(event, data, sid)`: sid nil = broadcast to every routed socket.
    func send(_ type: String, _ data: StandInJSON, to sid: String?) {
        let text = Self.message(type, data)
        inner.withLock { state in
            Self.deliver(.text(text), to: sid, in: &state)
        }
    }

    static func deliver(_ message: StandInOutgoing, to sid: String?, in state: inout Inner) {
        if let sid {
            if let id = state.sockets[sid], let connection = state.connections[id] {
                connection.continuation.yield(message)
            }
        } else {
            for id in state.sockets.values.sorted() { state.connections[id]?.continuation.yield(message) }
        }
    }

    static func queueRemaining(_ state: Inner) -> Int { state.pending.count + (state.running == nil ? 0 : 1) }

    /// `queue_updated()`: broadcast the status message.
    static func broadcastStatus(in state: inout Inner) {
        let text = message("status", ["status": ["exec_info": ["queue_remaining": .int(queueRemaining(state))]]])
        deliver(.text(text), to: nil, in: &state)
    }

    /// Registers a new websocket connection; its first message (status with sid) is queued before it is routable.
    func openConnection(
        sid: String, path: String, query: String?, headers: [ComfyUIStandIn.Header],
        continuation: AsyncStream<StandInOutgoing>.Continuation
    ) -> Int {
        inner.withLock { state in
            let id = state.nextConnectionId
            state.nextConnectionId += 1
            state.webSockets.append(WebSocketRecord(sid: sid, path: path, query: query, headers: headers))
            state.connections[id] = Connection(sid: sid, continuation: continuation, recordIndex: state.webSockets.count - 1)
            state.sockets[sid] = id
            let status = Self.message(
                "status", ["status": ["exec_info": ["queue_remaining": .int(Self.queueRemaining(state))]], "sid": .string(sid)])
            continuation.yield(.text(status))
            if let running = state.running, running.clientId == sid, let last = state.runningNode {
                continuation.yield(.text(Self.message("executing", ["node": .string(last)])))
            }
            return id
        }
    }

    func closeConnection(_ id: Int) {
        inner.withLock { state in
            guard let connection = state.connections.removeValue(forKey: id) else { return }
            connection.continuation.finish()
            state.webSockets[connection.recordIndex].isOpen = false
            if state.sockets[connection.sid] == id { state.sockets[connection.sid] = nil }
        }
    }

    /// Records a client frame; answers the first text frame if it is `feature_flags`.
    func received(_ frame: ComfyUIStandIn.RecordedFrame, on id: Int) {
        inner.withLock { state in
            guard var connection = state.connections[id] else { return }
            state.webSockets[connection.recordIndex].frames.append(frame)
            guard case .text(let text) = frame, !connection.sawFirstText else { return }
            connection.sawFirstText = true
            if let json = try? StandInJSON.parse(text), json["type"]?.stringValue == "feature_flags", let data = json["data"] {
                state.webSockets[connection.recordIndex].flags = data
                connection.supportsPreviewMetadata = data["supports_preview_metadata"]?.isTruthy ?? false
                connection.continuation.yield(.text(Self.message("feature_flags", featureFlags)))
            }
            state.connections[id] = connection
        }
    }

    // MARK: requests

    func recordRequest(_ record: RequestRecord) -> Int {
        inner.withLock { state in
            state.requests.append(record)
            return state.requests.count - 1
        }
    }

    func completeRequest(_ index: Int, bodyByteCount: Int, status: Int) {
        inner.withLock { state in
            state.requests[index].bodyByteCount = bodyByteCount
            state.requests[index].status = status
        }
    }
}


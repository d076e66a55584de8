import AsyncHTTPClient
import ComfyGateCore
import ComfyGateTestSupport
import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import NIOWebSocket
import Synchronization
import WSClient

/// Polls an asynchronous condition every 20 ms until it holds or `timeout` has passed, and answers whether it held.
func eventuallyAsync(within timeout: Duration = .seconds(20), _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}

/// One signed-in caller of a test gateway: their user and token, and requests made as them.
struct Member: Sendable {
    let gate: GatewayHarness
    let user: User
    let token: String

    var id: String { user.id }
    var name: String { user.name }
    var auth: (String, String) { ("Authorization", "Bearer \(token)") }

    func get(_ path: String, headers: [(String, String)] = []) async throws -> TestResponse {
        try await TestHTTP.send(.GET, gate.baseURL + path, headers: [auth] + headers)
    }

    func post(_ path: String, json: String, headers: [(String, String)] = []) async throws -> TestResponse {
        try await TestHTTP.send(.POST, gate.baseURL + path, headers: [auth, ("Content-Type", "application/json")] + headers, body: json)
    }

    /// `POST /prompt` with a workflow body; the answer.
    func queue(_ body: String) async throws -> TestResponse {
        try await post("/prompt", json: body)
    }

    /// `POST /prompt` that must be accepted; the prompt id.
    func queueAccepted(_ body: String) async throws -> String {
        let answer = try await queue(body)
        guard answer.status == 200, let id = try StandInJSON.parse(answer.text)["prompt_id"]?.stringValue else {
            throw IsolationTestError.unexpected("POST /prompt as \(name) answered \(answer.status): \(answer.text)")
        }
        return id
    }

    /// `POST /upload/image` of one file, as the front end sends it.
    func upload(_ bytes: [UInt8], name fileName: String, subfolder: String? = nil, overwrite: Bool = true) async throws -> TestResponse {
        let boundary = "----isolation\(UInt32.random(in: 0...UInt32.max))"
        var body: [UInt8] = []
        func field(_ name: String, _ value: String) {
            body += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n\(value)\r\n".utf8)
        }
        body += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"image\"; filename=\"\(fileName)\"\r\n".utf8)
        body += Array("Content-Type: image/png\r\n\r\n".utf8) + bytes + Array("\r\n".utf8)
        if overwrite { field("overwrite", "true") }
        if let subfolder { field("subfolder", subfolder) }
        field("type", "input")
        body += Array("--\(boundary)--\r\n".utf8)
        var request = HTTPClientRequest(url: gate.baseURL + "/upload/image")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        request.headers.add(name: "Content-Type", value: "multipart/form-data; boundary=\(boundary)")
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await TestHTTP.client.execute(request, timeout: .seconds(30))
        let collected = try await response.body.collect(upTo: 1 << 20)
        return TestResponse(status: Int(response.status.code), headers: response.headers, body: collected)
    }

    /// Opens a websocket as this caller.
    func listen(clientID: String? = nil, path: String = "/ws") async throws -> WebSocketListener {
        let query = clientID.map { "?clientId=" + $0 } ?? ""
        return try await WebSocketListener.open(gate.webSocketURL + path + query, token: token)
    }
}

enum IsolationTestError: Error, CustomStringConvertible {
    case unexpected(String)

    var description: String {
        switch self {
        case .unexpected(let text): text
        }
    }
}

extension GatewayHarness {
    /// Waits until the gateway has asked ComfyUI at start whether it runs with `--multi-user` (`GET /users`), then
    /// forgets the recorded requests: from here ComfyUI sees only what the test causes, and the fast path knows
    /// the `comfy-user` of every caller.
    func settleStartupProbe() async throws {
        _ = try await eventually(within: .seconds(10)) {
            standIn.recordedRequests.contains { $0.method == "GET" && $0.path == "/users" && $0.status != 0 }
        }
        try await Task.sleep(for: .milliseconds(20))
        standIn.clearRecordings()
    }

    /// A user with a token, as a ``Member``.
    func member(_ name: String, role: Role = .user) async throws -> Member {
        let (user, token) = try await makeUser(name, role: role)
        return Member(gate: self, user: user, token: token)
    }

    /// ComfyUI's own `GET /history/{id}` entry (asked directly), once the prompt is done.
    func finishedEntry(_ promptID: String, within timeout: Duration = .seconds(20)) async throws -> StandInJSON {
        var entry: StandInJSON?
        _ = try await eventuallyAsync(within: timeout) {
            let answer = try await TestHTTP.send(.GET, "\(standIn.baseURL)/history/\(promptID)")
            entry = try StandInJSON.parse(answer.text)[promptID]
            return entry != nil
        }
        guard let entry else { throw IsolationTestError.unexpected("prompt \(promptID) did not finish") }
        return entry
    }

    /// ComfyUI's own `GET /queue` (asked directly): the ids running and pending, in queue order.
    func comfyQueue() async throws -> (running: [String], pending: [String]) {
        let queue = try StandInJSON.parse(try await TestHTTP.send(.GET, "\(standIn.baseURL)/queue").text)
        func ids(_ list: String) -> [String] {
            (queue[list]?.arrayValue ?? []).compactMap { $0.arrayValue?.dropFirst().first?.stringValue }
        }
        return (ids("queue_running"), ids("queue_pending"))
    }

    /// Waits until ComfyUI runs the prompt; throws once it finished without being seen running (its nodes were too
    /// quick for the test), or after 20 s.
    func waitUntilRunning(_ promptID: String) async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            if try await comfyQueue().running == [promptID] { return }
            if try await comfyHistoryIDs().contains(promptID) {
                throw IsolationTestError.unexpected("prompt \(promptID) finished before it was seen running")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw IsolationTestError.unexpected("prompt \(promptID) never ran")
    }

    /// ComfyUI's own history ids (asked directly), oldest first.
    func comfyHistoryIDs() async throws -> [String] {
        let history = try StandInJSON.parse(try await TestHTTP.send(.GET, "\(standIn.baseURL)/history").text)
        return (history.objectValue ?? []).map(\.0)
    }

    /// Requests ComfyUI received for a path.
    func recorded(_ method: String, _ path: String) -> [ComfyUIStandIn.RecordedRequest] {
        standIn.recordedRequests.filter { $0.method == method && $0.path == path }
    }
}

/// Workflows in ComfyUI's API format, built from the stand-in's model-free nodes.
enum Workflow {
    /// `EmptyImage` → `SaveImage` for each of `saves` (each one node more to run), with optional extra top-level JSON.
    static func save(prefix: String = "out", color: Int = 1, saves: Int = 1, clientID: String? = nil, extra: String = "") -> String {
        var nodes = [#""1": {"class_type": "EmptyImage", "inputs": {"width": 4, "height": 4, "batch_size": 1, "color": \#(color)}}"#]
        for index in 0..<saves {
            nodes.append(#""\#(index + 2)": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "\#(prefix)"}}"#)
        }
        return body(nodes: nodes, clientID: clientID, extra: extra)
    }

    /// `LoadImage(image)` → `SaveImage(prefix)` and `PreviewImage`.
    static func load(_ image: String, prefix: String = "loaded", clientID: String? = nil) -> String {
        body(nodes: [
            #""1": {"class_type": "LoadImage", "inputs": {"image": "\#(image)"}}"#,
            #""2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "\#(prefix)"}}"#,
            #""3": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}"#,
        ], clientID: clientID)
    }

    static func body(nodes: [String], clientID: String? = nil, extra: String = "") -> String {
        let client = clientID.map { #""client_id": "\#($0)", "# } ?? ""
        return "{\(client)\(extra)\"prompt\": {\(nodes.joined(separator: ", "))}}"
    }
}

/// A PNG's width, from its IHDR chunk.
func pngWidth(_ bytes: some Collection<UInt8>) -> Int? {
    let bytes = Array(bytes)
    guard bytes.count >= 24, bytes[0..<8] == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] else { return nil }
    return bytes[16..<20].reduce(0) { $0 << 8 | Int($1) }
}

/// A websocket client kept open in the background that logs what it receives, until ``stop()`` or the server closes it.
struct WebSocketListener: Sendable {
    final class Log: Sendable {
        let messages = Mutex<[WebSocketMessage]>([])
        /// How the connection ended: the close frame the server sent (if any), or the error.
        let ending = Mutex<Result<WebSocketCloseFrame?, any Error>?>(nil)
    }

    let log: Log
    private let stopSignal: AsyncStream<Void>.Continuation
    private let task: Task<Void, Never>

    static let logger: Logger = {
        var logger = Logger(label: "isolation-ws")
        logger.logLevel = .critical
        return logger
    }()

    /// Connects and waits for ComfyUI's first message (the `status` naming the socket's `sid`).
    static func open(_ url: String, token: String) async throws -> WebSocketListener {
        let log = Log()
        let (stop, stopSignal) = AsyncStream<Void>.makeStream()
        let configuration = WebSocketClientConfiguration(
            maxFrameSize: 16 << 20, additionalHeaders: [.authorization: "Bearer \(token)"], autoPing: .disabled
        )
        let task = Task {
            do {
                let close = try await WebSocketClient.connect(url: url, configuration: configuration, logger: logger) { inbound, outbound, _ in
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask {
                            for await _ in stop { break }
                            if !Task.isCancelled { try await outbound.close(.normalClosure, reason: nil) }
                        }
                        for try await message in inbound.messages(maxSize: 16 << 20) {
                            log.messages.withLock { $0.append(message) }
                        }
                        group.cancelAll()
                    }
                }
                log.ending.withLock { $0 = .success(close) }
            } catch {
                log.ending.withLock { $0 = .failure(error) }
            }
        }
        let listener = WebSocketListener(log: log, stopSignal: stopSignal, task: task)
        _ = try await eventually(within: .seconds(20)) { !log.messages.withLock(\.isEmpty) || log.ending.withLock { $0 != nil } }
        if case .failure(let error)? = log.ending.withLock({ $0 }) { throw error }
        guard listener.sid != nil else {
            await listener.stop()
            throw IsolationTestError.unexpected("no status message on \(url)")
        }
        return listener
    }

    /// Closes the websocket (normal closure) and waits for its end.
    func stop() async {
        stopSignal.yield()
        stopSignal.finish()
        await task.value
    }

    /// Waits for the server to end the connection; the close frame it sent, nil if none.
    func ended() async throws -> WebSocketCloseFrame? {
        await task.value
        return try log.ending.withLock { $0 }?.get()
    }

    var isOpen: Bool { log.ending.withLock { $0 == nil } }

    /// The text messages so far, parsed.
    var texts: [StandInJSON] {
        log.messages.withLock { messages in
            messages.compactMap { message in
                guard case .text(let text) = message else { return nil }
                return try? StandInJSON.parse(text)
            }
        }
    }

    /// The binary messages so far.
    var binaries: [[UInt8]] {
        log.messages.withLock { messages in
            messages.compactMap { message in
                guard case .binary(let buffer) = message else { return nil }
                return Array(buffer.readableBytesView)
            }
        }
    }

    /// The `sid` ComfyUI named the socket with in its first message.
    var sid: String? { texts.first { $0["type"] == "status" }?["data"]?["sid"]?.stringValue }

    /// The messages of a type, optionally only those about one prompt.
    func messages(_ type: String, promptID: String? = nil) -> [StandInJSON] {
        texts.filter { $0["type"]?.stringValue == type && (promptID == nil || $0["data"]?["prompt_id"]?.stringValue == promptID) }
    }

    /// Every message about a prompt, of any type.
    func messages(aboutPrompt promptID: String) -> [StandInJSON] {
        texts.filter { $0["data"]?["prompt_id"]?.stringValue == promptID }
    }

    /// Whether ComfyUI's `executing` with node null (the prompt finished) arrived for the prompt.
    func sawFinish(of promptID: String) -> Bool {
        messages("executing", promptID: promptID).contains { $0["data"]?["node"] == .null }
    }

    /// Whether a marker broadcast by ``broadcastMarker(_:in:)`` arrived.
    func sawMarker(_ marker: String) -> Bool {
        messages("isolation_marker").contains { $0["data"]?["marker"]?.stringValue == marker }
    }
}

/// Broadcasts a marker message to every socket and waits until each listener has it: whatever ComfyUI sent them
/// before has then arrived too (or was withheld by the gateway).
func broadcastMarker(_ marker: String, in gate: GatewayHarness, to listeners: [WebSocketListener]) async throws {
    gate.standIn.broadcast(text: #"{"type": "isolation_marker", "data": {"marker": "\#(marker)"}}"#)
    guard try await eventually(within: .seconds(20), { listeners.allSatisfy { $0.sawMarker(marker) } }) else {
        throw IsolationTestError.unexpected("marker \(marker) did not reach every websocket")
    }
}

/// An HTTP answer read off a raw connection.
struct RawAnswer: Sendable, CustomStringConvertible {
    let status: Int
    let head: String
    let body: [UInt8]

    var text: String { String(decoding: body, as: UTF8.self) }
    /// The `error` of a JSON error answer.
    var error: String? { (try? StandInJSON.parse(body))?["error"]?.stringValue }
    var description: String { "\(status) \(text.prefix(200))" }

    /// Parses `HTTP/1.1 <status> …` with a body by `Content-Length`, chunked, or up to the end (none for `HEAD` and
    /// `101`).
    init?(_ bytes: [UInt8], isHead: Bool = false) {
        guard let (head, status, framing, rest) = Self.split(bytes) else { return nil }
        self.head = head
        self.status = status
        switch framing {
        case _ where isHead || status == 101: body = []
        case .length(let length): body = Array(rest.prefix(length))
        case .chunked: body = Self.dechunk(rest)?.body ?? rest
        case .toEnd: body = rest
        }
    }

    private enum Framing {
        case length(Int), chunked, toEnd
    }

    /// Whether `bytes` hold one whole answer.
    static func isComplete(_ bytes: [UInt8], isHead: Bool) -> Bool {
        guard let (_, status, framing, rest) = split(bytes) else { return false }
        switch framing {
        case _ where isHead || status == 101: return true
        case .length(let length): return rest.count >= length
        case .chunked: return dechunk(rest)?.complete ?? false
        case .toEnd: return false
        }
    }

    private static func split(_ bytes: [UInt8]) -> (String, Int, Framing, [UInt8])? {
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        guard let end = bytes.indices.first(where: { bytes[$0...].starts(with: separator) }) else { return nil }
        let head = String(decoding: bytes[..<end], as: UTF8.self)
        let parts = head.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, let status = Int(parts[1]) else { return nil }
        let fields = head.split(separator: "\r\n").dropFirst().map { $0.lowercased() }
        let framing: Framing
        if let length = fields.first(where: { $0.hasPrefix("content-length:") }).flatMap({ Int($0.dropFirst(15).trimmingCharacters(in: .whitespaces)) }) {
            framing = .length(length)
        } else if fields.contains(where: { $0.hasPrefix("transfer-encoding:") && $0.contains("chunked") }) {
            framing = .chunked
        } else {
            framing = .toEnd
        }
        return (head, status, framing, Array(bytes[(end + 4)...]))
    }

    /// A chunked body decoded, and whether its last chunk has arrived; nil when malformed.
    private static func dechunk(_ bytes: [UInt8]) -> (body: [UInt8], complete: Bool)? {
        var out: [UInt8] = []
        var index = 0
        while index < bytes.count {
            guard let lineEnd = bytes[index...].firstIndex(of: UInt8(ascii: "\r")) else { return (out, false) }
            let sizeText = String(decoding: bytes[index..<lineEnd], as: UTF8.self).split(separator: ";").first ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else { return nil }
            if size == 0 { return (out, true) }
            let start = lineEnd + 2
            guard start + size <= bytes.count else { return (out, false) }
            out += bytes[start..<(start + size)]
            index = start + size + 2
        }
        return (out, false)
    }
}

enum RawHTTP {
    /// Sends a request on a fresh connection and reads one whole answer (by its `Content-Length` or chunked framing,
    /// none for `HEAD`), without waiting for the connection to close.
    static func exchange(port: Int, _ request: String, isHead: Bool = false) async throws -> RawAnswer {
        let connection = try RawConnection(port: port, timeoutSeconds: 15)
        try await connection.write(request)
        let bytes = await connection.readBytes { RawAnswer.isComplete($0, isHead: isHead) }
        guard let answer = RawAnswer(bytes, isHead: isHead) else {
            throw IsolationTestError.unexpected("no HTTP answer to \(request.prefix(80)): \(String(decoding: bytes, as: UTF8.self).prefix(200))")
        }
        return answer
    }

    /// Sends a websocket handshake for `target`; the status and, unless it is 101, the whole answer.
    static func handshake(port: Int, target: String, token: String) async throws -> RawAnswer {
        try await exchange(
            port: port,
            "GET \(target) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer \(token)\r\n\r\n"
        )
    }
}

/// A ComfyUI stand-in for one thing the real one never does on purpose: it accepts websockets (for the handshake key
/// `x3JJHMbDL1EzLkh9GBhXDw==` only), sends one `status` message, and drops the TCP connection without a close frame
/// when told. Any other request gets `200 {"storage":"server","migrated":true}`.
final class DroppingWebSocketUpstream: Sendable {
    private let connections = Mutex<[any Channel]>([])

    /// Drops every accepted websocket connection, without a close frame.
    func dropAll() {
        for channel in connections.withLock({ $0 }) { channel.close(promise: nil) }
    }

    static func with<T: Sendable>(_ body: (_ upstream: DroppingWebSocketUpstream, _ baseURL: String) async throws -> T) async throws -> T {
        let upstream = DroppingWebSocketUpstream()
        return try await LoopbackServer.with(setUp: { child in
            try child.pipeline.syncOperations.addHandler(HeadReader(upstream: upstream))
        }) { port in
            try await body(upstream, "http://127.0.0.1:\(port)")
        }
    }

    private final class HeadReader: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        let upstream: DroppingWebSocketUpstream
        private var pending = ""
        private var upgraded = false

        init(upstream: DroppingWebSocketUpstream) {
            self.upstream = upstream
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard !upgraded else { return }
            pending += String(buffer: unwrapInboundIn(data))
            guard pending.contains("\r\n\r\n") else { return }
            if pending.lowercased().contains("upgrade: websocket") {
                upgraded = true
                let status = Array(#"{"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 0}}, "sid": "dropper"}}"#.utf8)
                var answer = ByteBuffer(string: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    + "Sec-WebSocket-Accept: HSmrc0sMlYUkAGmm5OPpG2HaGWk=\r\n\r\n")
                answer.writeBytes([0x81, UInt8(status.count)] + status)
                context.writeAndFlush(wrapOutboundOut(answer), promise: nil)
                let channel = context.channel
                upstream.connections.withLock { $0.append(channel) }
            } else {
                let body = #"{"storage":"server","migrated":true}"#
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(string:
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
                )), promise: nil)
                context.close(promise: nil)
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}

/// The websocket frames in bytes a server sent (unmasked): opcode and payload of each whole frame.
func webSocketFrames(_ bytes: [UInt8]) -> [(opcode: UInt8, payload: [UInt8])] {
    var frames: [(UInt8, [UInt8])] = []
    var index = 0
    while index + 2 <= bytes.count {
        let opcode = bytes[index] & 0x0F
        var length = Int(bytes[index + 1] & 0x7F)
        var start = index + 2
        if length == 126, start + 2 <= bytes.count {
            length = Int(bytes[start]) << 8 | Int(bytes[start + 1])
            start += 2
        } else if length == 127, start + 8 <= bytes.count {
            length = bytes[start..<(start + 8)].reduce(0) { $0 << 8 | Int($1) }
            start += 8
        }
        guard start + length <= bytes.count else { break }
        frames.append((opcode, Array(bytes[start..<(start + length)])))
        index = start + length
    }
    return frames
}

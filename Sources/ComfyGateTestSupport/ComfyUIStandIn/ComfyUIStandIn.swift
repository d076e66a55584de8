import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle
import Synchronization

/// A faithful in-process fake of a ComfyUI 0.3.64 server (optionally with ComfyUI-Login), bound to 127.0.0.1.
///
/// Obtain one with ``withComfyUIStandIn(_:_:)``. The members below are the test controls: they are plain
/// Swift calls, never extra HTTP routes.
public final class ComfyUIStandIn: Sendable {
    public let options: Options
    /// The bound TCP port.
    public let port: Int
    let state: StandInState

    init(options: Options, port: Int, state: StandInState) {
        self.options = options
        self.port = port
        self.state = state
    }

    /// Whether it serves https (``Options/tlsCertFile`` and ``Options/tlsKeyFile``).
    public var isSecure: Bool { options.tlsCertFile != nil && options.tlsKeyFile != nil }
    /// `http://127.0.0.1:<port>` (`https` with TLS)
    public var baseURL: String { (isSecure ? "https" : "http") + "://127.0.0.1:\(port)" }
    /// `ws://127.0.0.1:<port>` (`wss` with TLS)
    public var webSocketBaseURL: String { (isSecure ? "wss" : "ws") + "://127.0.0.1:\(port)" }

    // MARK: recordings

    /// Every HTTP request received (including websocket handshakes), in arrival order.
    public var recordedRequests: [RecordedRequest] {
        state.inner.withLock { s in
            s.requests.map {
                RecordedRequest(
                    method: $0.method, path: $0.path, query: $0.query, headers: $0.headers, bodyByteCount: $0.bodyByteCount,
                    status: $0.status)
            }
        }
    }

    /// Every websocket connection accepted, in order, with the frames each client sent.
    public var recordedWebSockets: [RecordedWebSocket] {
        state.inner.withLock { s in
            s.webSockets.map {
                RecordedWebSocket(
                    sid: $0.sid, path: $0.path, query: $0.query, handshakeHeaders: $0.headers, receivedFrames: $0.frames,
                    isOpen: $0.isOpen, clientFeatureFlags: $0.flags)
            }
        }
    }

    /// Forget the recorded HTTP requests (websocket records are kept: open connections still append to them).
    public func clearRecordings() {
        state.inner.withLock { s in
            s.requests.removeAll()
        }
    }

    /// Open websocket connections.
    public var connectedWebSocketCount: Int { state.inner.withLock { $0.connections.count } }

    /// Bodies of `POST /free` received so far.
    public var freeRequests: [StandInJSON] { state.inner.withLock { $0.freeRequests } }

    /// The current ComfyUI-Login token (line 1 of `login/PASSWORD`), nil when no password is set.
    public var loginPasswordHash: String? { state.inner.withLock { $0.passwordHash } }

    // MARK: websocket controls

    /// Sends a text message to every routed socket (ComfyUI's `send_sync(…, sid=None)`), or to one client id.
    public func broadcast(text: String, to clientId: String? = nil) {
        state.inner.withLock { StandInState.deliver(.text(text), to: clientId, in: &$0) }
    }

    /// Sends a text message in fragments of `fragmentSize` bytes, as ComfyUI never does (aiohttp sends each message
    /// in one frame) but a proxy between it and its clients may.
    public func broadcast(text: String, inFragmentsOf fragmentSize: Int, to clientId: String? = nil) {
        let bytes = Array(text.utf8)
        let parts = stride(from: 0, to: bytes.count, by: fragmentSize).map {
            ByteBuffer(bytes: bytes[$0..<min($0 + fragmentSize, bytes.count)])
        }
        state.inner.withLock { StandInState.deliver(.textFragments(parts), to: clientId, in: &$0) }
    }

    /// Sends a binary frame: 4-byte big-endian `eventType` followed by `payload` (B.4).
    public func broadcastBinary(eventType: UInt32, payload: [UInt8], to clientId: String? = nil) {
        let frame = Self.binaryFrame(eventType: eventType, payload: payload)
        state.inner.withLock { StandInState.deliver(.binary(ByteBuffer(bytes: frame)), to: clientId, in: &$0) }
    }

    /// The bytes of a binary event frame.
    public static func binaryFrame(eventType: UInt32, payload: [UInt8]) -> [UInt8] {
        var frame: [UInt8] = []
        frame.appendBigEndian(eventType)
        frame += payload
        return frame
    }

    /// The preview image ``sendPreview(size:promptId:nodeId:to:)`` sends: a `size`×`size` PNG.
    public static func previewImage(size: Int) -> [UInt8] {
        StandInPNG.solidImage(width: size, height: size, color: 0x3366CC)
    }

    /// Sends a latent-preview frame as ComfyUI does: type 4 (`PREVIEW_IMAGE_WITH_METADATA`: 4-byte metadata length,
    /// metadata JSON, PNG bytes) to sockets that negotiated `supports_preview_metadata`, otherwise type 1
    /// (`PREVIEW_IMAGE`: 4-byte format 2 = PNG, PNG bytes). The image is ``previewImage(size:)``.
    public func sendPreview(size: Int, promptId: String = "", nodeId: String = "", to clientId: String? = nil) {
        let image = Self.previewImage(size: size)
        var legacy: [UInt8] = []
        legacy.appendBigEndian(2)
        legacy += image
        let metadata: StandInJSON = [
            "node_id": .string(nodeId), "prompt_id": .string(promptId), "display_node_id": .string(nodeId),
            "parent_node_id": .string(nodeId), "real_node_id": .string(nodeId), "image_type": "image/png",
        ]
        let metadataBytes = Array(metadata.serialized.utf8)
        var withMetadata: [UInt8] = []
        withMetadata.appendBigEndian(UInt32(metadataBytes.count))
        withMetadata += metadataBytes + image
        let type1 = ByteBuffer(bytes: Self.binaryFrame(eventType: 1, payload: legacy))
        let type4 = ByteBuffer(bytes: Self.binaryFrame(eventType: 4, payload: withMetadata))
        state.inner.withLock { s in
            let targets: [Int] = clientId.map { sid in s.sockets[sid].map { [$0] } ?? [] } ?? s.sockets.values.sorted()
            for id in targets {
                guard let connection = s.connections[id] else { continue }
                connection.continuation.yield(.binary(connection.supportsPreviewMetadata ? type4 : type1))
            }
        }
    }

    /// Sends a binary `TEXT` frame (type 3) as ComfyUI's `send_progress_text` does: 4-byte big-endian length of the
    /// node id, then node id and text in UTF-8; to every socket unless a client id is given (B.4, G.6).
    public func sendProgressText(_ text: String, nodeId: String, to clientId: String? = nil) {
        let node = Array(nodeId.utf8)
        var payload: [UInt8] = []
        payload.appendBigEndian(UInt32(node.count))
        broadcastBinary(eventType: BinaryEventType.text.rawValue, payload: payload + node + Array(text.utf8), to: clientId)
    }

    /// Sends `progress` (`{"value", "max", "prompt_id", "node"}`) as `main.hijack_progress` does during a node: to the
    /// running prompt's client, or to every socket when it was queued without `client_id` (B.2, G.6). No-op when idle.
    public func sendProgress(value: Int, max: Int) {
        state.inner.withLock { s in
            guard let running = s.running else { return }
            let data: StandInJSON = [
                "value": .int(value), "max": .int(max), "prompt_id": .string(running.promptId), "node": s.runningNode.map { .string($0) } ?? .null,
            ]
            StandInState.deliver(.text(StandInState.message("progress", data)), to: running.clientId, in: &s)
        }
    }

    /// Holds execution as a long GPU step would: from now on each node the stand-in starts stays running (its
    /// `executing` sent, its prompt in `queue_running`) until ``releaseExecution()`` or an interrupt, so tests see a
    /// running prompt and a pending queue for exactly as long as they look.
    public func holdExecution() {
        state.inner.withLock { $0.executionHeld = true }
    }

    /// Lets held and later nodes run to their end.
    public func releaseExecution() {
        state.inner.withLock { $0.executionHeld = false }
    }

    /// Closes every open websocket with this close code and reason.
    public func closeAllWebSockets(code: UInt16 = 1000, reason: String? = nil) {
        state.inner.withLock { s in
            for connection in s.connections.values { connection.continuation.yield(.close(code: code, reason: reason)) }
        }
    }

    // MARK: files

    /// Puts a file into input/output/temp (e.g. an image a workflow will load).
    public func addFile(_ bytes: [UInt8], name: String, subfolder: String = "", type: FileType = .input) throws {
        try state.files.write(bytes, type: type, subfolder: subfolder, name: name)
    }

    /// Contents of a stored file (not of virtual files), nil when missing.
    public func fileContents(name: String, subfolder: String = "", type: FileType = .output) -> [UInt8]? {
        state.files.read(type: type, subfolder: subfolder, name: name)
    }

    /// The users map (`users.json`): id → name.
    public var users: [String: String] {
        state.inner.withLock { Dictionary($0.users.map { ($0.id, $0.name) }, uniquingKeysWith: { _, last in last }) }
    }

    /// Contents of a file in a user's data directory (`user/<id>/<path>`), nil when missing.
    public func userDataContents(user: String, path: String) -> [UInt8]? {
        FileManager.default.contents(atPath: state.files.userDirectory + "/" + user + "/" + path).map { [UInt8]($0) }
    }

    /// Names of the files directly in a directory (virtual files included for output).
    public func files(in type: FileType, subfolder: String = "") -> [String] {
        state.files.list(type, subfolder: subfolder)
    }
}

/// Runs a ComfyUI stand-in on `127.0.0.1:<ephemeral port>` (or ``ComfyUIStandIn/Options/port``) for the duration of `body`, then shuts it down
/// gracefully (websockets are closed with 1001 first) and deletes its files.
public func withComfyUIStandIn<T: Sendable>(
    _ options: ComfyUIStandIn.Options = .init(),
    _ body: (ComfyUIStandIn) async throws -> T
) async throws -> T {
    var logger = Logger(label: "comfyui-standin")
    logger.logLevel = options.logLevel
    let webRoot = try options.webRoot.map { path in
        guard let resolved = StandInStaticFiles.resolvedDirectory(path) else { throw StandInWebRootError(path: path) }
        return resolved
    }
    let files = try StandInFileStore(virtualFiles: options.virtualFiles)
    defer { files.removeAll() }
    let state = StandInState(options: options, webRoot: webRoot, files: files, logger: logger)

    let (portStream, portContinuation) = AsyncStream<Int>.makeStream()
    var server = HTTPServerBuilder.http1WebSocketUpgrade(
        webSocketRouter: StandInApp.makeRouter(state: state, upgradesOnly: true),
        configuration: .init(ws: .init(maxFrameSize: options.webSocketMaxFrameSize, autoPing: .disabled, closeTimeout: .seconds(2))))
    if let certFile = options.tlsCertFile, let keyFile = options.tlsKeyFile {
        // main.py: `ssl_ctx.load_cert_chain(certfile=args.tls_certfile, keyfile=args.tls_keyfile)` on the one site.
        let tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(certFile).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: keyFile, format: .pem)))
        server = try .tls(server, tlsConfiguration: tls)
    }
    let app = Application(
        router: StandInApp.makeRouter(state: state, upgradesOnly: false),
        server: server,
        configuration: .init(address: .hostname("127.0.0.1", port: options.port), serverName: nil),
        onServerRunning: { channel in
            portContinuation.yield(channel.localAddress?.port ?? 0)
            portContinuation.finish()
        },
        logger: logger
    )
    let serviceGroup = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))

    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await serviceGroup.run() }
        let executor = Task { await StandInExecutor(state: state).run() }
        group.addTask { await executor.value }
        // As ComfyUI's process ends: a prompt being executed stops where it is and never reaches the history.
        func stop() async {
            state.inner.withLock { s in
                for connection in s.connections.values { connection.continuation.yield(.close(code: 1001, reason: nil)) }
            }
            executor.cancel()
            state.workerWake.finish()
            await serviceGroup.triggerGracefulShutdown()
        }
        var ports = portStream.makeAsyncIterator()
        guard let port = await ports.next(), port > 0 else {
            await stop()
            try await group.waitForAll()
            throw StandInStartError()
        }
        let standIn = ComfyUIStandIn(options: options, port: port, state: state)
        do {
            let result = try await body(standIn)
            await stop()
            try await group.waitForAll()
            return result
        } catch {
            await stop()
            try? await group.waitForAll()
            throw error
        }
    }
}

/// The server did not report a bound port.
public struct StandInStartError: Error {}

/// ``ComfyUIStandIn/Options/webRoot`` is not a directory (aiohttp's static route refuses it, so ComfyUI would not start).
public struct StandInWebRootError: Error, CustomStringConvertible {
    public let path: String
    public var description: String { "the stand-in's web root \(path) is not a directory" }
}

enum StandInApp {
    static func makeRouter(state: StandInState, upgradesOnly: Bool) -> Router<StandInContext> {
        let router = Router(context: StandInContext.self)
        router.add(middleware: StandInRecordingMiddleware(state: state, upgradesOnly: upgradesOnly))
        router.add(middleware: StandInErrorMiddleware())
        router.add(middleware: StandInCacheControlMiddleware())
        if let origin = state.options.corsOrigin {
            router.add(middleware: StandInCORSMiddleware(allowedOrigin: origin))
        } else {
            router.add(middleware: StandInOriginOnlyMiddleware(rejectCrossSite: state.options.rejectCrossSiteFetch))
        }
        if state.options.login != nil { router.add(middleware: StandInLoginMiddleware(state: state)) }
        if upgradesOnly {
            StandInWebSocket.register(on: router, state: state)
        } else {
            let routes = StandInRouteTable()
            StandInRoutes.register(on: routes, state: state)
            if state.options.login != nil { StandInLoginRoutes.register(on: routes, state: state) }
            routes.register(on: router, staticFilesTakeGET: state.webRoot != nil)
            // Added after every route, so it wraps only the answer to requests that no route takes.
            if let webRoot = state.webRoot { router.add(middleware: StandInStaticFiles.Fallback(root: webRoot)) }
        }
        return router
    }
}

import NIOCore
import NIOWebSocket

/// Relays websocket frames between a client and ComfyUI inside their channel pipelines, on their shared event
/// loop: no task and no thread hop per frame, one flush per read batch.
///
/// One handler sits in the client's pipeline, one in its *primary* upstream's (the backend whose handshake
/// answered the client) and one in each of its *tributaries*' (other backends, joined with the same path and
/// query, so under the same `clientId`, to carry the events of the jobs they run). Frames pass as they are — text,
/// binary, continuation, ping, pong and close, with their close codes — so client and primary see each other's
/// close code. The client's messages go to every upstream, its pings, pongs and close to the primary (its close
/// to the tributaries too; a tributary that joins later gets the client's `feature_flags` first). Frames to ComfyUI are masked, as a client's must be; frames to the client are not, as
/// a server's must not be; an unmasked frame from the client ends the relay with `1002`. Every upstream's frames
/// towards a non-admin client pass an ``WebSocketEventFilter`` of their own first. Messages from different
/// upstreams never interleave: while one upstream's message is half sent, the others' frames wait (and their
/// reads are held); a tributary's fragmented message goes only once complete, so a tributary that ends never
/// leaves the client half a message. A client that stops taking bytes stops the reads on all its upstreams, a
/// primary that stops taking bytes the client's reads.
///
/// A tributary answers its backend's pings itself; when it closes or fails it leaves and the client's socket goes
/// on. When the primary's connection ends without a close frame, the client gets `1011`. Once a close frame has
/// passed between client and primary, or either connection has ended, every connection is closed at the latest
/// after `closeTimeout`.
final class WebSocketRelay: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    /// Whether frames written by this side are masked: true on a connection to ComfyUI.
    private let masksWrites: Bool
    private let closeTimeout: TimeAmount
    /// On an upstream's side: its backend (``UpstreamWebSocketConnector/description``); empty on the client's.
    private let backend: String
    private var context: ChannelHandlerContext?
    /// On the client's side: the primary's side. On an upstream's side: the client's.
    private var partner: WebSocketRelay?
    /// On the client's side: the tributaries' sides.
    private var tributaries: [WebSocketRelay] = []
    /// On an upstream's side: whether it is a tributary, whose end does not end the client's socket.
    private var isTributary = false
    /// Frames that arrived before this side was paired (or attached).
    private var early: [WebSocketFrame] = []
    private var hasUnflushedWrites = false
    private var readHeld = false
    private var closing = false
    /// The client broke the protocol: this side relays nothing more.
    private var protocolViolated = false
    /// On the client's side: makes the filter each upstream's events pass (nil: the client gets everything).
    var makeFilter: (() -> WebSocketEventFilter)?
    /// On an upstream's side: what of its events the client may get (nil: everything).
    private var filter: WebSocketEventFilter?
    /// On the client's side: the upstream whose message to the client is half sent.
    private var messageOwner: WebSocketRelay?
    /// On an upstream's side: its frames for the client, past the filter, not sent yet.
    private var waiting: [WebSocketFrame] = []
    /// On the client's side: a message from the client is half received.
    private var clientMessageOpen = false
    /// On a tributary's side: it joined while a message from the client was half relayed, whose rest it does not get.
    private var skipsClientMessage = false
    /// On the client's side: the client's first message, when it is ComfyUI's `feature_flags` (which ComfyUI reads
    /// only as a socket's first message): a tributary that joins later gets it first.
    private var featureFlags: WebSocketFrame?
    /// On the client's side: whether the client has sent a message yet.
    private var clientHasSentMessage = false

    /// - Parameter backend: on an upstream's side, its backend (what ``isJoined(to:)`` compares).
    init(masksWrites: Bool, closeTimeout: TimeAmount, backend: String = "") {
        self.masksWrites = masksWrites
        self.closeTimeout = closeTimeout
        self.backend = backend
    }

    /// Joins the client's side and its primary upstream's side; both must run on the same event loop. Frames that
    /// arrived early are relayed now.
    static func pair(client: WebSocketRelay, upstream: WebSocketRelay) {
        client.partner = upstream
        upstream.partner = client
        upstream.filter = client.makeFilter?()
        client.takeEarlyFrames()
        upstream.takeEarlyFrames()
        client.flushIfNeeded()
        upstream.flushIfNeeded()
        let bothOpen = [client, upstream].allSatisfy { $0.context?.channel.isActive ?? false }
        if !bothOpen { client.closeBoth() }
    }

    /// On the client's side: joins a tributary, an upstream connection opened on this event loop with this
    /// socket's path and query. It is closed instead when this socket is closing or already has its backend.
    func attach(tributary: WebSocketRelay) {
        guard !closing, !protocolViolated, partner != nil, context?.channel.isActive == true, !isJoined(to: tributary.backend) else {
            tributary.context?.close(promise: nil)
            return
        }
        tributary.partner = self
        tributary.isTributary = true
        tributary.filter = makeFilter?()
        tributary.skipsClientMessage = clientMessageOpen
        if let featureFlags { tributary.send(featureFlags) }
        tributaries.append(tributary)
        tributary.takeEarlyFrames()
        flushIfNeeded()
        tributary.flushIfNeeded()
        if tributary.context?.channel.isActive != true { tributary.leave() }
    }

    /// On the client's side: whether an upstream of this socket is connected to `backend`.
    func isJoined(to backend: String) -> Bool {
        upstreams.contains { $0.backend == backend }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// On the client's side: the primary's side and the tributaries'.
    private var upstreams: [WebSocketRelay] {
        (partner.map { [$0] } ?? []) + tributaries
    }

    /// The client's side, its primary's and its tributaries'.
    private var allSides: [WebSocketRelay] {
        guard let client = masksWrites ? partner : self else { return [self] }
        return [client] + client.upstreams
    }

    // MARK: Frames

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard !protocolViolated else { return }
        if !masksWrites, frame.maskKey == nil {
            return refuseUnmaskedFrame(context)
        }
        guard partner != nil else { return early.append(frame) }
        masksWrites ? fromUpstream(frame) : fromClient(frame)
    }

    private func takeEarlyFrames() {
        let frames = early
        early = []
        for frame in frames { masksWrites ? fromUpstream(frame) : fromClient(frame) }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        for side in masksWrites ? [partner].compactMap({ $0 }) : upstreams { side.flushIfNeeded() }
        context.fireChannelReadComplete()
    }

    /// On the client's side: a frame from the client goes to the primary; its messages and its close to the
    /// tributaries too.
    private func fromClient(_ frame: WebSocketFrame) {
        partner?.send(frame)
        switch frame.opcode {
        case .text, .binary, .continuation:
            if !clientHasSentMessage, frame.opcode == .text, frame.fin,
                WebSocketEventFilter.messageType(frame.unmaskedData.readableBytesView) == "feature_flags"
            {
                featureFlags = frame
            }
            clientHasSentMessage = true
            clientMessageOpen = !frame.fin
            for tributary in tributaries {
                if tributary.skipsClientMessage, frame.opcode == .continuation {
                    tributary.skipsClientMessage = !frame.fin
                } else {
                    tributary.send(frame)
                }
            }
        case .connectionClose:
            for tributary in tributaries { tributary.send(frame) }
            closeBothLater()
        default:
            break
        }
    }

    /// On an upstream's side: a frame from ComfyUI goes to the client as far as the filter lets it, after what
    /// this upstream sent before and once no other upstream's message is half sent.
    private func fromUpstream(_ frame: WebSocketFrame) {
        guard let client = partner else { return }
        if isTributary {
            switch frame.opcode {
            case .ping:
                send(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData))
                flushIfNeeded()
                return
            case .pong:
                return
            case .connectionClose:
                // The backend ends this tributary: its close is answered and the client's socket goes on without it.
                send(frame)
                flushIfNeeded()
                leave()
                return
            default:
                break
            }
        }
        switch filter?.admit(frame) ?? .deliver {
        case .deliver: waiting.append(frame)
        case .withhold: break
        case .deliverFragments(let fragments): waiting += fragments
        case .deliverInstead(let message): waiting.append(Self.textFrame(message))
        }
        client.drain()
        if frame.opcode == .connectionClose { closeBothLater() }
    }

    /// On the client's side: sends what may go now, each upstream's frames in their order. A data frame goes only
    /// while no other upstream's message is half sent; a tributary's fragmented message only once complete.
    private func drain() {
        var sent = true
        while sent {
            sent = false
            for source in upstreams where messageOwner == nil || messageOwner === source {
                while let frame = source.waiting.first {
                    if [.text, .binary, .continuation].contains(frame.opcode) {
                        guard messageOwner == nil || messageOwner === source else { break }
                        if source.isTributary, !frame.fin, messageOwner == nil,
                            !source.waiting.contains(where: { $0.opcode == .continuation && $0.fin })
                        {
                            break
                        }
                        messageOwner = frame.fin ? nil : source
                    }
                    source.waiting.removeFirst()
                    send(frame)
                    sent = true
                }
            }
        }
        if messageOwner == nil {
            for upstream in upstreams { upstream.resumeReads() }
        }
    }

    /// Sends the client a message of the gateway's own (its job queue's `status`, say), between ComfyUI's
    /// messages; dropped while one of ComfyUI's is half sent or the relay is closing.
    func deliverGatewayMessage(_ message: [UInt8]) {
        guard !closing, messageOwner == nil, context != nil else { return }
        send(Self.textFrame(message))
        flushIfNeeded()
    }

    private static func textFrame(_ message: [UInt8]) -> WebSocketFrame {
        WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(bytes: message))
    }

    /// Writes a frame with the masking this side needs.
    private func send(_ incoming: WebSocketFrame) {
        guard let context else { return }
        var frame = incoming
        // NIO's decoder leaves payloads masked and its encoder masks whenever a key is set: write the unmasked
        // payload, with a key towards ComfyUI and none towards the client.
        if let key = frame.maskKey {
            frame.data = frame.unmaskedData
            frame.maskKey = masksWrites ? key : nil
        } else if masksWrites {
            frame.maskKey = .random()
        }
        context.write(wrapOutboundOut(frame), promise: nil)
        hasUnflushedWrites = true
    }

    private func flushIfNeeded() {
        guard hasUnflushedWrites, let context else { return }
        hasUnflushedWrites = false
        context.flush()
    }

    /// RFC 6455 §5.1: a client's frames must be masked, and a server closes the connection on one that is
    /// not. The client gets `1002 protocol error`, ComfyUI `1001 going away`; nothing more is relayed.
    private func refuseUnmaskedFrame(_ context: ChannelHandlerContext) {
        protocolViolated = true
        early = []
        context.writeAndFlush(wrapOutboundOut(Self.closeFrame(code: .protocolError, masked: false)), promise: nil)
        for upstream in upstreams {
            guard let upstreamContext = upstream.context else { continue }
            upstream.protocolViolated = true
            upstreamContext.writeAndFlush(upstream.wrapOutboundOut(Self.closeFrame(code: .goingAway, masked: true)), promise: nil)
        }
        closeBothLater()
    }

    // MARK: Backpressure

    /// Holds this side's reads while their frames cannot go on: the other side takes no more bytes, or (on an
    /// upstream's side) another upstream's message to the client is half sent.
    func read(context: ChannelHandlerContext) {
        if holdsReads {
            readHeld = true
        } else {
            context.read()
        }
    }

    private var holdsReads: Bool {
        guard let partner else { return false }
        if let partnerContext = partner.context, !partnerContext.channel.isWritable { return true }
        return masksWrites && partner.messageOwner != nil && partner.messageOwner !== self
    }

    private func resumeReads() {
        guard readHeld, !holdsReads, let context else { return }
        readHeld = false
        context.read()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            for side in masksWrites ? [partner].compactMap({ $0 }) : upstreams { side.resumeReads() }
        }
        context.fireChannelWritabilityChanged()
    }

    // MARK: Ends

    func channelInactive(context: ChannelHandlerContext) {
        if isTributary {
            leave()
        } else if let partner, partner.context != nil {
            if masksWrites, !closing, !partner.protocolViolated {
                // ComfyUI went away without a close frame: the client learns it from a close code, not a dropped socket.
                partner.send(Self.closeFrame(code: .unexpectedServerError, masked: false))
            }
            // Whatever was relayed is delivered before the other connections end.
            for side in allSides where side !== self {
                side.flushIfNeeded()
                side.context?.close(mode: .output, promise: nil)
            }
            partner.closeBothLater()
        }
        context.fireChannelInactive()
    }

    /// On a tributary's side: leaves the client's socket, which goes on without it, and closes its connection.
    private func leave() {
        guard let client = partner else { return }
        partner = nil
        client.tributaries.removeAll { $0 === self }
        waiting = []
        context?.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        isTributary ? leave() : closeBoth()
    }

    /// Sends `1001 going away` both ways (graceful shutdown) and closes every side once the close handshake
    /// is done or `closeTimeout` has passed.
    func goAway() {
        end(clientCode: .goingAway)
    }

    /// Ends the relay because the client's credential no longer holds (revoked token, ended session, disabled
    /// user): the client gets `1008 policy violation`, ComfyUI `1001 going away`.
    func endForPolicy() {
        end(clientCode: .policyViolation)
    }

    private func end(clientCode: WebSocketErrorCode) {
        guard !closing else { return }
        for side in allSides {
            guard let context = side.context else { continue }
            let code = side.masksWrites ? WebSocketErrorCode.goingAway : clientCode
            context.writeAndFlush(side.wrapOutboundOut(Self.closeFrame(code: code, masked: side.masksWrites)), promise: nil)
        }
        closeBothLater()
    }

    private func closeBothLater() {
        guard !closing, let context else { return }
        for side in allSides { side.closing = true }
        context.eventLoop.assumeIsolated().scheduleTask(in: closeTimeout) { [self] in closeBoth() }
    }

    private func closeBoth() {
        for side in allSides {
            side.flushIfNeeded()
            side.context?.close(promise: nil)
        }
    }

    static func closeFrame(code: WebSocketErrorCode, masked: Bool) -> WebSocketFrame {
        var data = ByteBuffer()
        data.write(webSocketErrorCode: code)
        return WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: masked ? .random() : nil, data: data)
    }
}

import NIOCore
import NIOWebSocket

/// Relays websocket frames between a client and ComfyUI inside their channel pipelines, on their shared event
/// loop: no task and no thread hop per frame, one flush per read batch.
///
/// One handler sits in each of the two pipelines, paired with the other. Frames pass as they are — text,
/// binary, continuation, ping, pong and close, with their close codes — so each side sees the other's close
/// code. Frames to ComfyUI are masked, as a client's must be; frames to the client are not, as a server's must
/// not be; an unmasked frame from the client ends the relay with `1002`. Frames towards a non-admin client pass its
/// ``WebSocketEventFilter`` first. A side that stops taking bytes stops the reads on the other side. When ComfyUI's
/// connection ends without a close frame, the client gets `1011`. Once a close frame has passed or either
/// connection has ended, both are closed at the latest after `closeTimeout`.
final class WebSocketRelay: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    /// Whether frames written by this side are masked: true on the connection to ComfyUI.
    private let masksWrites: Bool
    private let closeTimeout: TimeAmount
    private var context: ChannelHandlerContext?
    private var partner: WebSocketRelay?
    /// Frames that arrived before the two sides were paired.
    private var early: [WebSocketFrame] = []
    private var hasUnflushedWrites = false
    private var readHeld = false
    private var closing = false
    /// The client broke the protocol: this side relays nothing more.
    private var protocolViolated = false
    /// On the client's side: what of ComfyUI's events the client may get (nil: everything).
    var filter: WebSocketEventFilter?
    /// A message written by this side still lacks fragments: nothing of the gateway's may go in between.
    private var midMessage = false

    init(masksWrites: Bool, closeTimeout: TimeAmount) {
        self.masksWrites = masksWrites
        self.closeTimeout = closeTimeout
    }

    /// Joins the client's side and ComfyUI's side; both must run on the same event loop. Frames that arrived
    /// early are relayed now.
    static func pair(client: WebSocketRelay, upstream: WebSocketRelay) {
        client.partner = upstream
        upstream.partner = client
        for side in [client, upstream] {
            let early = side.early
            side.early = []
            for frame in early { upstream === side ? client.relay(frame) : upstream.relay(frame) }
        }
        client.flushIfNeeded()
        upstream.flushIfNeeded()
        let bothOpen = [client, upstream].allSatisfy { $0.context?.channel.isActive ?? false }
        if !bothOpen { client.closeBoth() }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    // MARK: Frames

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard !protocolViolated else { return }
        if !masksWrites, frame.maskKey == nil {
            return refuseUnmaskedFrame(context)
        }
        guard let partner else { return early.append(frame) }
        partner.relay(frame)
        if frame.opcode == .connectionClose { closeBothLater() }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.flushIfNeeded()
        context.fireChannelReadComplete()
    }

    /// Passes on a frame that came from the other side, as far as the event filter lets it.
    private func relay(_ incoming: WebSocketFrame) {
        switch filter?.admit(incoming) ?? .deliver {
        case .deliver: send(incoming)
        case .withhold: break
        case .deliverFragments(let fragments): fragments.forEach(send)
        case .deliverInstead(let message): send(Self.textFrame(message))
        }
    }

    /// Sends the client a message of the gateway's own (its job queue's `status`, say), between ComfyUI's
    /// messages; dropped while one of ComfyUI's is half sent or the relay is closing.
    func deliverGatewayMessage(_ message: [UInt8]) {
        guard !closing, !midMessage, context != nil else { return }
        send(Self.textFrame(message))
        flushIfNeeded()
    }

    private static func textFrame(_ message: [UInt8]) -> WebSocketFrame {
        WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(bytes: message))
    }

    /// Writes a frame with the masking this side needs.
    private func send(_ incoming: WebSocketFrame) {
        guard let context else { return }
        if [.text, .binary, .continuation].contains(incoming.opcode) { midMessage = !incoming.fin }
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
        if let partner, let partnerContext = partner.context {
            partner.protocolViolated = true
            partnerContext.writeAndFlush(partner.wrapOutboundOut(Self.closeFrame(code: .goingAway, masked: true)), promise: nil)
        }
        closeBothLater()
    }

    // MARK: Backpressure

    /// Holds this side's reads while the other side cannot take more bytes.
    func read(context: ChannelHandlerContext) {
        if let partner, let partnerContext = partner.context, !partnerContext.channel.isWritable {
            readHeld = true
        } else {
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, let partner, partner.readHeld, let partnerContext = partner.context {
            partner.readHeld = false
            partnerContext.read()
        }
        context.fireChannelWritabilityChanged()
    }

    // MARK: Ends

    func channelInactive(context: ChannelHandlerContext) {
        if let partner, let partnerContext = partner.context {
            if masksWrites, !closing, !partner.protocolViolated {
                // ComfyUI went away without a close frame: the client learns it from a close code, not a dropped socket.
                partnerContext.write(partner.wrapOutboundOut(Self.closeFrame(code: .unexpectedServerError, masked: false)), promise: nil)
                partner.hasUnflushedWrites = true
            }
            partner.flushIfNeeded()
            // Whatever was relayed is delivered before the other side's connection ends.
            partnerContext.close(mode: .output, promise: nil)
            partner.closeBothLater()
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        closeBoth()
    }

    /// Sends `1001 going away` both ways (graceful shutdown) and closes both sides once the close handshake
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
        for side in [self, partner].compactMap({ $0 }) {
            guard let context = side.context else { continue }
            let code = side.masksWrites ? WebSocketErrorCode.goingAway : clientCode
            context.writeAndFlush(side.wrapOutboundOut(Self.closeFrame(code: code, masked: side.masksWrites)), promise: nil)
        }
        closeBothLater()
    }

    private func closeBothLater() {
        guard !closing, let context else { return }
        closing = true
        partner?.closing = true
        context.eventLoop.assumeIsolated().scheduleTask(in: closeTimeout) { [self] in closeBoth() }
    }

    private func closeBoth() {
        for side in [self, partner].compactMap({ $0 }) {
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

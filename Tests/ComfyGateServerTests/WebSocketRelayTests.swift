@testable import ComfyGateServer
import NIOCore
import NIOEmbedded
import NIOWebSocket
import Testing

/// The relay between one client and several upstreams, frame by frame in embedded channels on one event loop.
@Suite struct WebSocketRelayTests {
    /// Counts the reads an upstream's relay lets through to its connection.
    final class ReadCounter: ChannelOutboundHandler {
        typealias OutboundIn = WebSocketFrame
        var reads = 0

        func read(context: ChannelHandlerContext) {
            reads += 1
            context.read()
        }
    }

    /// A client side paired with a primary and joined by a tributary.
    struct Sides {
        let client: EmbeddedChannel
        let primary: EmbeddedChannel
        let tributary: EmbeddedChannel
        let clientRelay: WebSocketRelay
        let primaryReads = ReadCounter()
        let tributaryReads = ReadCounter()

        init(attachTributary: Bool = true) throws {
            let loop = EmbeddedEventLoop()
            clientRelay = WebSocketRelay(masksWrites: false, closeTimeout: .seconds(5))
            let primaryRelay = WebSocketRelay(masksWrites: true, closeTimeout: .seconds(5), backend: "ws://primary")
            client = EmbeddedChannel(handler: clientRelay, loop: loop)
            primary = EmbeddedChannel(handlers: [primaryReads, primaryRelay], loop: loop)
            tributary = EmbeddedChannel(
                handlers: [tributaryReads, WebSocketRelay(masksWrites: true, closeTimeout: .seconds(5), backend: "ws://tributary")], loop: loop)
            for channel in [client, primary, tributary] {
                _ = channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 8188))
            }
            WebSocketRelay.pair(client: clientRelay, upstream: primaryRelay)
            if attachTributary { try attach() }
        }

        func attach() throws {
            clientRelay.attach(tributary: try tributary.pipeline.syncOperations.handler(type: WebSocketRelay.self))
        }

        /// Frames the client got, as `text`/`continuation`/`ping`/`close` with their payload and `…` when not final.
        func clientGot() throws -> [String] {
            try WebSocketRelayTests.frames(client)
        }
    }

    /// A frame as NIO's decoder passes it on: a client's with its payload still masked.
    static func frame(_ opcode: WebSocketOpcode, _ text: String, fin: Bool = true, masked: Bool = false) -> WebSocketFrame {
        var data = ByteBuffer(string: text)
        let key: WebSocketMaskingKey? = masked ? .random() : nil
        if let key { data.webSocketMask(key) }
        return WebSocketFrame(fin: fin, opcode: opcode, maskKey: key, data: data)
    }

    static func frames(_ channel: EmbeddedChannel) throws -> [String] {
        var frames: [String] = []
        // Payloads as written: unmasked, with the key the frame encoder applies (none towards the client).
        while let frame = try channel.readOutbound(as: WebSocketFrame.self) {
            let names: [WebSocketOpcode: String] = [.text: "text", .continuation: "continuation", .ping: "ping", .connectionClose: "close"]
            frames.append((names[frame.opcode] ?? "other") + " " + String(buffer: frame.data) + (frame.fin ? "" : "…"))
        }
        return frames
    }

    @Test func messagesOfDifferentUpstreamsNeverInterleave() throws {
        let sides = try Sides()
        try sides.primary.writeInbound(Self.frame(.text, "a", fin: false))
        try sides.tributary.writeInbound(Self.frame(.text, "T"))
        try sides.tributary.writeInbound(Self.frame(.text, "x", fin: false))
        try sides.tributary.writeInbound(Self.frame(.continuation, "y"))
        #expect(try sides.clientGot() == ["text a…"], "the tributary's messages wait for the primary's to end")
        try sides.primary.writeInbound(Self.frame(.continuation, "b"))
        #expect(try sides.clientGot() == ["continuation b", "text T", "text x…", "continuation y"])
    }

    @Test func aTributarySendsOnlyWholeMessagesAndItsEndLeavesTheClientOpen() throws {
        let sides = try Sides()
        try sides.tributary.writeInbound(Self.frame(.text, "half", fin: false))
        try sides.primary.writeInbound(Self.frame(.text, "p"))
        #expect(try sides.clientGot() == ["text p"], "half a tributary's message does not hold the primary's")
        try sides.tributary.writeInbound(Self.frame(.connectionClose, ""))
        #expect(try Self.frames(sides.tributary).first == "close ", "the tributary's close is answered")
        #expect(!sides.tributary.isActive)
        try sides.primary.writeInbound(Self.frame(.text, "q"))
        #expect(try sides.clientGot() == ["text q"], "the client got no close and still gets the primary's events")
        #expect(sides.client.isActive)
    }

    @Test func theClientsMessagesReachEveryUpstreamAndALateTributaryGetsFeatureFlagsFirst() throws {
        let sides = try Sides(attachTributary: false)
        let featureFlags = #"{"type":"feature_flags","data":{"supports_preview_metadata":true}}"#
        try sides.client.writeInbound(Self.frame(.text, featureFlags, masked: true))
        try sides.attach()
        try sides.client.writeInbound(Self.frame(.text, "later", masked: true))
        try sides.client.writeInbound(Self.frame(.ping, "p", masked: true))
        #expect(try Self.frames(sides.primary) == ["text \(featureFlags)", "text later", "ping p"])
        #expect(try Self.frames(sides.tributary) == ["text \(featureFlags)", "text later"], "pings are the primary's to answer")
    }

    @Test func aClientThatCannotKeepUpHoldsReadsOnEveryUpstream() throws {
        let sides = try Sides()
        sides.client.isWritable = false
        sides.client.pipeline.fireChannelWritabilityChanged()
        sides.primary.read()
        sides.tributary.read()
        #expect(sides.primaryReads.reads == 0 && sides.tributaryReads.reads == 0)
        sides.client.isWritable = true
        sides.client.pipeline.fireChannelWritabilityChanged()
        #expect(sides.primaryReads.reads == 1 && sides.tributaryReads.reads == 1, "both resume")

        // While the primary's message is half sent, the tributary's reads wait for its end.
        try sides.primary.writeInbound(Self.frame(.text, "a", fin: false))
        sides.tributary.read()
        #expect(sides.tributaryReads.reads == 1)
        try sides.primary.writeInbound(Self.frame(.continuation, "b"))
        #expect(sides.tributaryReads.reads == 2)
    }
}

import Logging
import NIOCore
import NIOWebSocket
import ServiceLifecycle

/// Relays frames between a client and ComfyUI until either side closes.
///
/// Frames pass as they are — text, binary, continuation, ping, pong and close, with their close codes — so
/// each side sees the other's close code. Frames to ComfyUI are masked, as a client's must be; frames to
/// the client are not, as a server's must not be. On graceful shutdown both sides get a
/// `1001 going away` close frame.
enum WebSocketRelay {
    static func run(
        client: NIOAsyncChannel<WebSocketFrame, WebSocketFrame>,
        upstream: NIOAsyncChannel<WebSocketFrame, WebSocketFrame>,
        closeTimeout: Duration,
        logger: Logger
    ) async {
        do {
            try await client.executeThenClose { clientInbound, clientOutbound in
                try await upstream.executeThenClose { upstreamInbound, upstreamOutbound in
                    try await withGracefulShutdownHandler {
                        try await withThrowingTaskGroup(of: Void.self) { group in
                            group.addTask {
                                try await pump(from: clientInbound, to: upstreamOutbound, maskOutgoing: true)
                            }
                            group.addTask {
                                try await pump(from: upstreamInbound, to: clientOutbound, maskOutgoing: false)
                            }
                            // One side has finished: give the other the close handshake's time, then stop.
                            _ = try await group.next()
                            group.addTask {
                                try await Task.sleep(for: closeTimeout)
                                throw CancellationError()
                            }
                            _ = try? await group.next()
                            group.cancelAll()
                        }
                    } onGracefulShutdown: {
                        clientOutbound.finishAfterWriting(closeFrame(code: .goingAway, masked: false))
                        upstreamOutbound.finishAfterWriting(closeFrame(code: .goingAway, masked: true))
                    }
                }
            }
        } catch {
            logger.debug("websocket relay ended", metadata: ["error": "\(error)"])
        }
    }

    /// Copies frames until the inbound side ends, then half-closes the outbound side.
    private static func pump(
        from inbound: NIOAsyncChannelInboundStream<WebSocketFrame>,
        to outbound: NIOAsyncChannelOutboundWriter<WebSocketFrame>,
        maskOutgoing: Bool
    ) async throws {
        defer { outbound.finish() }
        for try await frame in inbound {
            var frame = frame
            // NIO's decoder leaves payloads masked and its encoder masks whenever a key is set: forward the
            // unmasked payload, with a key towards ComfyUI (a client must mask) and none towards the client.
            if let key = frame.maskKey {
                frame.data = frame.unmaskedData
                frame.maskKey = maskOutgoing ? key : nil
            } else if maskOutgoing {
                frame.maskKey = .random()
            }
            try await outbound.write(frame)
            if frame.opcode == .connectionClose { return }
        }
    }

    static func closeFrame(code: WebSocketErrorCode, masked: Bool) -> WebSocketFrame {
        var data = ByteBuffer()
        data.write(webSocketErrorCode: code)
        return WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: masked ? .random() : nil, data: data)
    }
}

extension NIOAsyncChannelOutboundWriter where OutboundOut == WebSocketFrame {
    /// Writes a last frame without waiting, then finishes; used from synchronous shutdown handlers.
    func finishAfterWriting(_ frame: WebSocketFrame) {
        let writer = self
        Task {
            try? await writer.write(frame)
            writer.finish()
        }
    }
}

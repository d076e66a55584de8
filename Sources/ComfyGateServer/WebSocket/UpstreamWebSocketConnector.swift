import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// Opens a websocket to ComfyUI for a client that is being upgraded, reusing the client's
/// `Sec-WebSocket-Key` so ComfyUI's `Sec-WebSocket-Accept` is also valid for the client.
struct UpstreamWebSocketConnector: Sendable, CustomStringConvertible {
    /// An upstream websocket, ready for frames.
    struct Connection: Sendable {
        let channel: any Channel
        /// ComfyUI's half of the relay, waiting to be paired with the client's.
        let relay: NIOLoopBound<WebSocketRelay>
        /// Headers of ComfyUI's 101 answer.
        let responseHeaders: HTTPHeaders
    }

    enum Failure: Error {
        /// ComfyUI answered the handshake without switching protocols.
        case refused
        /// No connection could be made; the cause, shortened.
        case unreachable(String)
    }

    /// `ws://host:port`, for messages.
    var description: String { "ws://\(authority)" }

    private enum UpgradeResult: Sendable {
        case upgraded(Connection)
        case refused
    }

    let host: String
    /// `host:port` sent as `Host`.
    let authority: String
    let port: Int
    let connectTimeout: TimeInterval
    let maxFrameSize: Int
    /// How long a closing websocket may take to finish its close handshake.
    let closeTimeout: TimeAmount

    /// Connects and performs the handshake for `pathAndQuery` with the given (already cleaned) headers.
    func connect(pathAndQuery: String, headers: HTTPFields, key: String, on eventLoop: any EventLoop) async throws -> Connection {
        var requestHeaders = HTTPHeaders()
        requestHeaders.add(name: "Host", value: authority)
        for field in headers { requestHeaders.add(name: field.name.rawName, value: field.value) }
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: pathAndQuery, headers: requestHeaders)
        let maxFrameSize = self.maxFrameSize
        let closeTimeout = self.closeTimeout
        let upgradeResult: EventLoopFuture<UpgradeResult>
        do {
            upgradeResult = try await ClientBootstrap(group: eventLoop)
                .connectTimeout(.milliseconds(Int64(connectTimeout * 1000)))
                .channelOption(.socketOption(.so_reuseaddr), value: 1)
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                // Previews are frames of hundreds of KiB: read them in few large reads, not many 64 KiB ones.
                .channelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 4096, maximum: 1 << 20))
                .connect(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let upgrader = NIOTypedWebSocketClientUpgrader<UpgradeResult>(
                            requestKey: key,
                            maxFrameSize: maxFrameSize,
                            enableAutomaticErrorHandling: true,
                            upgradePipelineHandler: { channel, response in
                                channel.eventLoop.makeCompletedFuture {
                                    let relay = WebSocketRelay(masksWrites: true, closeTimeout: closeTimeout)
                                    try channel.pipeline.syncOperations.addHandler(relay)
                                    return .upgraded(Connection(
                                        channel: channel, relay: NIOLoopBound(relay, eventLoop: channel.eventLoop),
                                        responseHeaders: response.headers
                                    ))
                                }
                            }
                        )
                        var configuration = NIOUpgradableHTTPClientPipelineConfiguration(
                            upgradeConfiguration: NIOTypedHTTPClientUpgradeConfiguration(
                                upgradeRequestHead: head,
                                upgraders: [upgrader],
                                notUpgradingCompletionHandler: { channel in
                                    channel.close(promise: nil)
                                    return channel.eventLoop.makeSucceededFuture(.refused)
                                }
                            )
                        )
                        configuration.leftOverBytesStrategy = .forwardBytes
                        return try channel.pipeline.syncOperations.configureUpgradableHTTPClientPipeline(configuration: configuration)
                    }
                }
        } catch {
            let text = "\(error)"
            throw Failure.unreachable(text.contains("connectionRefused") || text.contains("Connection refused") ? "connection refused" : String(text.prefix(200)))
        }
        let result: UpgradeResult
        do {
            result = try await upgradeResult.get()
        } catch {
            throw Failure.refused
        }
        switch result {
        case .upgraded(let connection): return connection
        case .refused: throw Failure.refused
        }
    }
}

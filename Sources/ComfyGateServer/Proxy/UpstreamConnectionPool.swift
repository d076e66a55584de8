import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A connection to ComfyUI and the handler that runs its exchanges.
final class UpstreamConnection: Sendable {
    let channel: any Channel
    let handler: NIOLoopBound<UpstreamConnectionHandler>

    init(channel: any Channel, handler: NIOLoopBound<UpstreamConnectionHandler>) {
        self.channel = channel
        self.handler = handler
    }

    var eventLoop: any EventLoop { channel.eventLoop }

    /// Runs `body` with the handler on the connection's event loop, after every call submitted before it.
    func onLoop(_ body: @escaping @Sendable (UpstreamConnectionHandler) -> Void) {
        let handler = handler
        channel.eventLoop.execute { body(handler.value) }
    }
}

/// Keep-alive connections to ComfyUI, kept per event loop so an exchange runs on the thread that serves its
/// client whenever it can. Connections come back when an answer ends and leave when ComfyUI closes them.
final class UpstreamConnectionPool: Sendable {
    private struct Idle {
        var byLoop: [ObjectIdentifier: [UpstreamConnection]] = [:]
        var isShutDown = false
    }

    let host: String
    let port: Int
    private let group: MultiThreadedEventLoopGroup
    private let connectTimeout: TimeAmount
    private let readTimeout: TimeAmount
    private let maxIdlePerLoop: Int
    private let idle = Mutex(Idle())

    init(host: String, port: Int, group: MultiThreadedEventLoopGroup, connectTimeout: TimeAmount, readTimeout: TimeAmount, maxIdlePerLoop: Int = 256) {
        self.host = host
        self.port = port
        self.group = group
        self.connectTimeout = connectTimeout
        self.readTimeout = readTimeout
        self.maxIdlePerLoop = maxIdlePerLoop
    }

    /// An idle connection on the current event loop (or any loop when the caller is not on one), else a new one.
    /// - Returns: the connection, and whether it carried an exchange before.
    func acquire() async throws -> (connection: UpstreamConnection, reused: Bool) {
        let loop = MultiThreadedEventLoopGroup.currentEventLoop ?? group.any()
        if let idle = takeIdle(on: loop) { return (idle, true) }
        return (try await connect(on: loop), false)
    }

    /// An idle connection on `loop`, without waiting; nil when there is none.
    func takeIdle(on loop: any EventLoop) -> UpstreamConnection? {
        let key = ObjectIdentifier(loop)
        return idle.withLock { idle in
            while let connection = idle.byLoop[key]?.popLast() {
                if connection.channel.isActive { return connection }
            }
            return nil
        }
    }

    /// Opens a new connection on `loop`.
    func connect(on loop: any EventLoop) async throws -> UpstreamConnection {
        try await connectFuture(on: loop).get()
    }

    /// Opens a new connection on `loop`; the future completes on that loop.
    func connectFuture(on loop: any EventLoop) -> EventLoopFuture<UpstreamConnection> {
        let readTimeout = readTimeout
        return ClientBootstrap(group: loop)
            .connectTimeout(connectTimeout)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    let key = ObjectIdentifier(channel)
                    let handler = UpstreamConnectionHandler(
                        readTimeout: readTimeout,
                        onClosed: { [weak self] in self?.forget(channel: key, loop: channel.eventLoop) }
                    )
                    try channel.pipeline.syncOperations.addHTTPClientHandlers(leftOverBytesStrategy: .forwardBytes)
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .connect(host: host, port: port)
            .flatMapThrowing { [weak self] channel in
                let handler = try channel.pipeline.syncOperations.handler(type: UpstreamConnectionHandler.self)
                let connection = UpstreamConnection(channel: channel, handler: NIOLoopBound(handler, eventLoop: channel.eventLoop))
                handler.onReusable = { [weak self] in self?.release(connection) }
                return connection
            }
    }

    /// Takes a connection back after an answer ended; closes it when the pool is full or shut down.
    private func release(_ connection: UpstreamConnection) {
        let key = ObjectIdentifier(connection.eventLoop)
        let kept = idle.withLock { idle in
            guard !idle.isShutDown, idle.byLoop[key, default: []].count < maxIdlePerLoop else { return false }
            idle.byLoop[key, default: []].append(connection)
            return true
        }
        if !kept { connection.channel.close(promise: nil) }
    }

    private func forget(channel: ObjectIdentifier, loop: any EventLoop) {
        let key = ObjectIdentifier(loop)
        idle.withLock { idle in
            idle.byLoop[key]?.removeAll { ObjectIdentifier($0.channel) == channel }
        }
    }

    /// Closes the idle connections and every connection that becomes idle from now on.
    func shutdown() async {
        let connections = idle.withLock { idle in
            idle.isShutDown = true
            defer { idle.byLoop = [:] }
            return idle.byLoop.values.flatMap { $0 }
        }
        for connection in connections {
            try? await connection.channel.close()
        }
    }
}

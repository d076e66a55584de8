import NIOCore
import NIOPosix

/// A TCP server on a free loopback port for the length of a test body, closed afterwards however the body ends.
enum LoopbackServer {
    /// Runs `body` with the server's port; each accepted connection is set up by `setUp` on its event loop (adding
    /// its handlers), or left without any when there is none.
    static func with<T: Sendable>(
        setUp: (@Sendable (any Channel) throws -> Void)? = nil,
        _ body: (_ port: Int) async throws -> T
    ) async throws -> T {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { child in child.eventLoop.makeCompletedFuture { try setUp?(child) } }
            .bind(host: "127.0.0.1", port: 0).get()
        do {
            let result = try await body(channel.localAddress?.port ?? 0)
            try await channel.close()
            return result
        } catch {
            try? await channel.close()
            throw error
        }
    }
}

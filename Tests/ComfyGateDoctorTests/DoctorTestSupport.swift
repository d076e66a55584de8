import ComfyGateDoctor
import ComfyGateTestSupport
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A TCP server on 127.0.0.1 that misbehaves on purpose.
enum MisbehavingServer {
    enum Behaviour: Sendable {
        /// Accepts, then closes without sending a byte (curl's "Empty reply from server").
        case closeWithoutResponse
        /// Accepts and never answers.
        case silent
    }

    static func with<T>(_ behaviour: Behaviour, _ body: (Int) async throws -> T) async throws -> T {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { child in
                switch behaviour {
                case .closeWithoutResponse:
                    // Read the request first, as Docker's port proxy does, then close.
                    return child.eventLoop.makeCompletedFuture { try child.pipeline.syncOperations.addHandler(CloseOnReadHandler()) }
                case .silent:
                    return child.eventLoop.makeSucceededVoidFuture()
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        do {
            let result = try await body(channel.localAddress!.port!)
            try await channel.close()
            return result
        } catch {
            try? await channel.close()
            throw error
        }
    }

    /// A port nothing listens on (bound, then released).
    /// A port that refuses connections while the returned value lives (see ``RefusingPort``).
    static func closedPort() throws -> RefusingPort {
        try RefusingPort()
    }
}

private final class CloseOnReadHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.close(promise: nil)
    }
}

/// Runs the doctor with a short timeout.
func runDoctor(
    _ url: String, token: String? = nil, timeout: Duration = .seconds(30), generate: Bool = false, models: ModelRequirements? = nil
) async -> DoctorReport {
    await Doctor(configuration: DoctorConfiguration(url: url, token: token, timeout: timeout, generate: generate, models: models)).run()
}

extension DoctorReport {
    func status(_ id: CheckID) -> CheckStatus? { self[id]?.status }
    func cause(_ id: CheckID) -> String? { self[id]?.diagnosis?.code }
    /// Every check, for failure messages.
    var dump: String { TerminalRenderer(colour: false).render(self) }
}

/// Lines collected from a callback.
final class Lines: Sendable {
    private let items = Mutex<[String]>([])
    func append(_ line: String) { items.withLock { $0.append(line) } }
    var all: [String] { items.withLock { $0 } }
}

/// One-off HTTP calls the tests make themselves.
enum HTTPProbe {
    static func postForm(_ url: String, _ form: String) async throws -> Int {
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(redirectConfiguration: .disallow))
        defer { _ = client.shutdown() }
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.body = .bytes(ByteBuffer(string: form))
        let response = try await client.execute(request, timeout: .seconds(5))
        return Int(response.status.code)
    }
}

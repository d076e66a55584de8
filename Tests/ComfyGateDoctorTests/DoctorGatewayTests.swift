import ComfyGateCore
import ComfyGateDoctor
import ComfyGateServer
import ComfyGateSQLite
import ComfyGateTestSupport
import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import Testing

/// The gateway in front of a stand-in, with one user and one token (a trimmed copy of the server tests' harness).
private func withGateway<T: Sendable>(
    upstream: String? = nil, options: ComfyUIStandIn.Options = .init(),
    _ body: @Sendable (_ baseURL: String, _ token: String, _ standIn: ComfyUIStandIn) async throws -> T
) async throws -> T {
    try await withComfyUIStandIn(options) { standIn in
        let store = try SQLiteStore.inMemory()
        var configuration = GatewayConfiguration(listenHost: "127.0.0.1", listenPort: 0, upstream: URL(string: upstream ?? standIn.baseURL)!)
        configuration.upstreamConnectTimeout = 10  // generous: these bound hangs on a loaded machine, not speed
        configuration.upstreamTimeout = 30
        let components = Gateway.Components(configuration: configuration, store: store)
        let accounts = AccountService(store: store, hasher: components.hasher)
        let hash = try await accounts.hasher.hash("correct-horse-battery", cost: 4)
        try await store.insertUser(User(name: "alice", role: .user, passwordHash: hash, createdAt: Date()))
        let token = try await accounts.createToken(userName: "alice", name: "doctor", expiresIn: nil).token
        var logger = Logger(label: "doctor-gateway-test")
        logger.logLevel = .critical
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let application = try await Gateway.buildApplication(
            components: components, logger: logger,
            onServerRunning: { channel in
                continuation.yield(channel.localAddress?.port ?? 0)
                continuation.finish()
            })
        let group = ServiceGroup(configuration: .init(services: [application], gracefulShutdownSignals: [], logger: logger))
        return try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var iterator = ports.makeAsyncIterator()
            let port = await iterator.next() ?? 0
            defer { tasks.cancelAll() }
            do {
                let result = try await body("http://127.0.0.1:\(port)", token, standIn)
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
                return result
            } catch {
                await group.triggerGracefulShutdown()
                try? await tasks.waitForAll()
                throw error
            }
        }
    }
}

@Suite("doctor against ComfyGate in front of the stand-in", .timeLimit(.minutes(2)))
struct DoctorGatewayTests {
    @Test func healthyGatewayPassesTheHTTPChecks() async throws {
        try await withGateway { url, token, _ in
            let report = await runDoctor(url, token: token)
            #expect(report.target == .comfyGate, "\(report.dump)")
            for id in [CheckID.tcpConnect, .httpAnswer, .target, .authEnforced, .tokenAccepted, .wrongTokenRefused, .loginPage] {
                #expect(report.status(id) == .pass, "\(id): \(report.dump)")
            }
            #expect(report[.authEnforced]?.evidence.contains(#"HTTP 401 {"error":"authentication required"}"#) == true)
            #expect(report[.loginPage]?.evidence.contains("→ /login?next=/") == true)
            #expect(!report.dump.contains(token))
        }
    }

    @Test func websocketAndGenerationThroughTheGateway() async throws {
        try await withGateway { url, token, _ in
            let report = await runDoctor(url, token: token, generate: true)
            #expect(report.status(.webSocket) == .pass, "\(report.dump)")
            #expect(report.status(.generation) == .pass, "\(report.dump)")
            #expect(report.exitCode == 0)
        }
    }

    @Test(arguments: [
        (["main.py", "--listen", "127.0.0.1", "--port", "8188"], "shared_user_data"),
        (["main.py", "--listen", "127.0.0.1", "--port", "8188", "--multi-user"], nil),
    ])
    func comfyUIWithoutMultiUserWarnsThatUserDataIsShared(argv: [String], cause: String?) async throws {
        var options = ComfyUIStandIn.Options()
        options.argv = argv
        options.devices = [.init(name: "cuda:0 NVIDIA RTX 3090", type: "cuda", index: 0, vramTotal: 25_769_803_776, vramFree: 24_696_061_952)]
        try await withGateway(options: options) { url, token, _ in
            let report = await runDoctor(url, token: token)
            #expect(report.status(.comfyUIFacts) == (cause == nil ? .pass : .warn), "\(report.dump)")
            #expect(report.cause(.comfyUIFacts) == cause)
            #expect(report[.comfyUIFacts]?.evidence.contains(cause == nil ? "user data per user" : "user data shared") == true)
            #expect(report.exitCode == 0)
        }
    }

    @Test(arguments: [
        ("cgt_AAAAAAAAAAAA_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "gateway_token_refused"),
        ("$2b$12$ubd9tM4L2pvqB/peVpwvyuASqddG9WVoNj0NaAPHYyH57LW.vVjr.", "gateway_token_is_hash"),
    ])
    func refusedTokensNameTheCause(token: String, cause: String) async throws {
        try await withGateway { url, _, _ in
            let report = await runDoctor(url, token: token)
            #expect(report.status(.tokenAccepted) == .fail && report.cause(.tokenAccepted) == cause, "\(report.dump)")
            #expect(report.exitCode == 1)
        }
    }

    @Test func gatewayWhoseComfyUIIsDownSaysSo() async throws {
        let refusing = try MisbehavingServer.closedPort()
        let closed = refusing.port
        try await withGateway(upstream: "http://127.0.0.1:\(closed)") { url, token, _ in
            let report = await runDoctor(url, token: token)
            #expect(report.target == .comfyGate)
            #expect(report.status(.tokenAccepted) == .fail && report.cause(.tokenAccepted) == "gateway_upstream_unreachable", "\(report.dump)")
        }
        withExtendedLifetime(refusing) {}
    }
}

import ComfyGateSQLite
@testable import ComfyGateServer
import ComfyGateTestSupport
import Foundation
import Hummingbird
import Logging
import NIOCore
import Testing

@Suite struct UpstreamWithoutUserRoutesTests {
    /// A ComfyUI whose `GET /users` answers 404 (one from before its user routes, or behind a proxy that does not pass
    /// them) is one shared user directory: the gateway says so once, and the fast path may serve every caller without
    /// asking ComfyUI again (while ComfyUI's user mode is unknown, every request takes the router).
    @Test func aComfyUIWithoutUserRoutesSharesOneUserDirectory() async throws {
        let records = LogRecords()
        try await Self.withUpstreamWithoutUserRoutes { upstream in
            let transport = PooledUpstreamTransport(upstream: try #require(URL(string: upstream)), connectTimeout: 10, readTimeout: 10)
            let users = ComfyUIUsers(
                transport: transport, store: try SQLiteStore.inMemory(), logger: Logger(label: "users-test") { _ in records.handler() })
            #expect(users.cachedHeader(for: "someone") == nil, "unknown before ComfyUI is asked")
            #expect(await users.probe() == .shared)
            #expect(users.cachedHeader(for: "someone") == .some(nil), "what the fast path asks: no comfy-user header to add")
            await transport.shutdown()

            try await withGateway(upstream: upstream, logger: Logger(label: "gateway-test") { _ in records.handler() }) { gate in
                let (user, token) = try await gate.makeUser("alice")
                let alice = Member(gate: gate, user: user, token: token)
                let told = try await eventually(within: .seconds(10)) {
                    records.messages.filter { $0.contains("ComfyUI has no user routes") }.count == 2
                }
                #expect(told, "said once by each: \(records.messages)")
                let answer = try await alice.get("/system_stats")
                #expect(answer.status == 200 && answer.text.contains("comfyui_version"))
                #expect(!records.messages.contains { $0.contains("--multi-user") })
                #expect(records.messages.filter { $0.contains("ComfyUI has no user routes") }.count == 2)
            }
        }
    }

    /// Runs `body` with the URL of a server that answers `GET /system_stats` as ComfyUI does and 404 to anything else.
    static func withUpstreamWithoutUserRoutes(_ body: @Sendable (String) async throws -> Void) async throws {
        let router = Router()
        router.get("/system_stats") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: #"{"system": {"comfyui_version": "0.3.64"}, "devices": []}"#)))
        }
        try await withLoopbackServer(router, label: "upstream-without-user-routes") { port in
            try await body("http://127.0.0.1:\(port)")
        }
    }
}

import AsyncHTTPClient
import ComfyGateTestSupport
import ComfyGateCore
import Foundation
import NIOCore
import NIOHTTP1
import Testing

/// `serve` under the descriptor limit attackers aim at: more half-open connections than descriptors.
@Suite(.serialized) struct ServeConnectionLimitTests {
    /// 300 connections that send half a request head, against a gateway allowed 256 descriptors: it stays up,
    /// refuses what is over its cap, and once the head timeout has closed the half-open ones, answers again.
    @Test func halfOpenConnectionsBeyondTheDescriptorLimitNeitherCrashNorLockOutForGood() async throws {
        let directory = try AccountCommandTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try await withComfyUIStandIn { standIn in
            try await ServeProcess.running(
                ["--data", directory.path, "--upstream", standIn.baseURL],
                // Long enough that the 300 connections are all open at once even on a loaded machine (opening
                // them can take seconds), short enough that the places come back well within the wait below.
                environment: ["COMFYGATE_REQUEST_HEAD_TIMEOUT": "15s"],
                launcher: ["/usr/bin/prlimit", "--nofile=256:256", "--"]
            ) { gate in
                let (_, token) = try #require(ServeCommandTests.credentials(in: gate.standardOutput))
                #expect(gate.standardError.contains("max_connections=96"), "the cap follows the descriptor limit: \(gate.standardError)")

                var halfOpen: [RawConnection] = []
                for _ in 0..<300 {
                    let connection = try RawConnection(port: gate.port, timeoutSeconds: 5)
                    try? await connection.write("GET /queue HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                    halfOpen.append(connection)
                }
                #expect(gate.process.isRunning, "the gateway survives the flood")

                var answered = false
                let deadline = ContinuousClock.now + .seconds(60)
                while !answered, ContinuousClock.now < deadline {
                    var request = HTTPClientRequest(url: "http://127.0.0.1:\(gate.port)/system_stats")
                    request.headers.add(name: "Authorization", value: "Bearer \(token)")
                    answered = (try? await ServeCommandTests.client.execute(request, timeout: .seconds(10)).status.code) == 200
                    if !answered { try await Task.sleep(for: .milliseconds(250)) }
                }
                #expect(answered, "an authenticated request is answered once the head timeout has reclaimed places")
                #expect(gate.process.isRunning)
                #expect(gate.standardError.contains("connection cap reached"))
                halfOpen.removeAll()
                #expect(await gate.stop() == 0, "and it still stops gracefully")
            }
        }
    }
}

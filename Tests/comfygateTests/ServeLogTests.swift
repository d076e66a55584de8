import AsyncHTTPClient
import ComfyGateTestSupport
import Foundation
import NIOCore
import NIOHTTP1
import Testing

@Suite struct ServeLogTests {
    /// A user name holding a line break and a whole forged record stays inside the `user` field of one line.
    @Test func aUserNameCannotForgeALogRecord() async throws {
        let directory = try AccountCommandTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try await withComfyUIStandIn { standIn in
            try await ServeProcess.running(["--data", directory.path, "--upstream", standIn.baseURL]) { gate in
                let forged = "eve\ntime=2025-01-01T00:00:00.000Z level=info label=comfygate msg=\"login.succeeded\" user=admin\r\u{2028}x"
                let encoded = try #require(forged.addingPercentEncoding(withAllowedCharacters: .alphanumerics))
                var login = HTTPClientRequest(url: "http://127.0.0.1:\(gate.port)/login")
                login.method = .POST
                login.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
                login.body = .bytes(ByteBuffer(string: "username=\(encoded)&password=wrong-password"))
                #expect(try await ServeCommandTests.client.execute(login, timeout: .seconds(60)).status.code == 401)

                var waited = 0
                while !gate.standardError.contains("login.failed") && waited < 100 {
                    try await Task.sleep(for: .milliseconds(50))
                    waited += 1
                }
                // Split wherever a terminal or a log viewer could start a new line.
                let lines = gate.standardError.unicodeScalars.split { $0 == "\n" || $0 == "\r" || $0 == "\u{2028}" }
                    .map { String(Substring($0)) }
                #expect(lines.allSatisfy { $0.hasPrefix("time=") && !$0.hasPrefix("time=2025-01-01") }, "\(lines)")
                let failed = lines.filter { $0.contains(#"msg="login.failed""#) }
                #expect(failed.count == 1, "\(lines)")
                #expect(failed.first?.contains(#"user="eve\ntime=2025-01-01T00:00:00.000Z level=info"#) == true, "\(lines)")
                #expect(!lines.contains { $0.contains("login.succeeded") && !$0.contains(#"user="eve\n"#) })
            }
        }
    }
}

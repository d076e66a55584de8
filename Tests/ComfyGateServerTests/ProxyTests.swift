import ComfyGateCore
import ComfyGateSQLite
import NIOHTTP1
import ComfyGateTestSupport
import Foundation
import NIOCore
import Testing

@Suite struct ProxyTests {
    @Test func methodsPathsQueriesAndBodiesPassThrough() async throws {
        try await withGateway { gate in
            let (alice, token) = try await gate.makeUser("alice")
            let auth = ("Authorization", "Bearer \(token)")
            let history = try await TestHTTP.send(.GET, "\(gate.baseURL)/api/history?max_items=2&offset=0", headers: [auth])
            #expect(history.status == 200)
            let prompt = """
                {"client_id":"c1","prompt":{"1":{"class_type":"EmptyImage","inputs":{"width":8,"height":8,"batch_size":1,"color":255}},\
                "2":{"class_type":"SaveImage","inputs":{"images":["1",0],"filename_prefix":"proxy"}}}}
                """
            let posted = try await TestHTTP.send(.POST, "\(gate.baseURL)/prompt", headers: [auth, ("Content-Type", "application/json")], body: prompt)
            #expect(posted.status == 200)
            let promptID = try #require(try posted.json()["prompt_id"] as? String)
            let invalid = try await TestHTTP.send(.POST, "\(gate.baseURL)/prompt", headers: [auth], body: #"{"prompt":{"1":{"class_type":"NoSuchNode","inputs":{}}}}"#)
            #expect(invalid.status == 400, "ComfyUI's own answers pass through unchanged")
            let missing = try await TestHTTP.send(.DELETE, "\(gate.baseURL)/no/such/route?x=1", headers: [auth])
            #expect(missing.status == 404 || missing.status == 405)

            let requests = gate.comfyUIRequests
            #expect(!requests.contains { $0.path.hasSuffix("/history") }, "the gateway answers history from its jobs")
            // Prompts reach ComfyUI from the gateway's job queue.
            let promptRequest = try #require(gate.standIn.recordedRequests.first { $0.path == "/prompt" && $0.method == "POST" })
            #expect(promptRequest.bodyByteCount > prompt.utf8.count, "the prompt went on rewritten")
            // ComfyUI's own record of the prompt (asked directly) carries its owner and alice's own client id.
            var extraData: [String: Any] = [:]
            for _ in 0..<300 where extraData.isEmpty {
                let entry = try await TestHTTP.send(.GET, "\(gate.standIn.baseURL)/history/\(promptID)").json()[promptID]
                extraData = ((entry as? [String: Any])?["prompt"] as? [Any])?[3] as? [String: Any] ?? [:]
                if extraData.isEmpty { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(extraData["comfygate_owner"] as? String == alice.id)
            #expect(extraData["client_id"] as? String == alice.id + "~c1")
            #expect(requests.contains { $0.method == "DELETE" && $0.path == "/no/such/route" && $0.query == "x=1" })
        }
    }

    @Test func credentialsAndComfyUserNeverReachComfyUI() async throws {
        try await withGateway { gate in
            let (_, token) = try await gate.makeUser("alice", password: "correct-horse-battery")
            let login = try await BrowserLoginTests.login(gate, user: "alice", password: "correct-horse-battery")
            let cookie = try #require(BrowserLoginTests.sessionCookie(login))
            _ = try await TestHTTP.send(.GET, "\(gate.baseURL)/prompt?a=1&token=\(token)&b=2", headers: [("comfy-user", "admin")])
            _ = try await TestHTTP.send(.GET, "\(gate.baseURL)/queue", headers: [("Authorization", "Bearer \(token)"), ("Comfy-User", "x")])
            _ = try await TestHTTP.send(.GET, "\(gate.baseURL)/system_stats", headers: [("Cookie", "theme=dark; \(cookie); lang=fr")])
            let requests = gate.comfyUIRequests
            #expect(requests.count == 3)
            for request in requests {
                for header in request.headers {
                    #expect(header.name.lowercased() != "authorization")
                    #expect(header.name.lowercased() != "comfy-user")
                    #expect(!header.value.contains(token))
                    #expect(!header.value.contains("comfygate_session"))
                }
                #expect(request.headerValues("X-Forwarded-For") == ["127.0.0.1"])
                #expect(request.headerValues("X-Forwarded-Proto") == ["http"])
                #expect(request.headerValues("Host") == ["127.0.0.1:\(gate.standIn.port)"])
            }
            #expect(requests[0].query == "a=1&b=2")
            #expect(requests[2].headerValues("Cookie") == ["theme=dark; lang=fr"])
        }
    }

    @Test func forwardedHeadersFromUntrustedClientsAreReplaced() async throws {
        try await withGateway { gate in
            let (_, token) = try await gate.makeUser("alice")
            _ = try await TestHTTP.send(.GET, "\(gate.baseURL)/queue", headers: [
                ("Authorization", "Bearer \(token)"), ("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-Proto", "https"),
            ])
            let request = try #require(gate.comfyUIRequests.first)
            #expect(request.headerValues("X-Forwarded-For") == ["127.0.0.1"])
            #expect(request.headerValues("X-Forwarded-Proto") == ["http"])
        }
    }

    @Test func browserWritesPassComfyUIsOriginCheck() async throws {
        try await withGateway { gate in
            let (_, token) = try await gate.makeUser("alice", role: .admin)
            // A browser on the gateway's origin: Origin is the gateway, Host is the gateway.
            let response = try await TestHTTP.send(.POST, "\(gate.baseURL)/free", headers: [
                ("Authorization", "Bearer \(token)"), ("Origin", gate.baseURL), ("Sec-Fetch-Site", "same-origin"),
            ], body: #"{"unload_models":false,"free_memory":false}"#)
            #expect(response.status == 200)
            let request = try #require(gate.comfyUIRequests.first { $0.path == "/free" })
            #expect(request.headerValues("Origin") == [gate.standIn.baseURL])
            #expect(request.headerValues("Sec-Fetch-Site").isEmpty)
        }
    }

    @Test func unreachableUpstreamGivesA502NamingIt() async throws {
        let refusing = try RefusingPort()
        let closedPort = refusing.port
        try await withGateway(upstream: "http://127.0.0.1:\(closedPort)") { gate in
            let (_, token) = try await gate.makeUser("alice")
            let response = try await TestHTTP.send(.GET, "\(gate.baseURL)/system_stats", headers: [("Authorization", "Bearer \(token)")])
            #expect(response.status == 502)
            let body = try response.json()
            #expect(body["error"] as? String == "upstream unreachable")
            #expect(body["upstream"] as? String == "http://127.0.0.1:\(closedPort)")
            #expect((body["cause"] as? String)?.isEmpty == false)
            let ready = try await TestHTTP.send(.GET, "\(gate.baseURL)/readyz")
            #expect(ready.status == 503)
            #expect(try await TestHTTP.send(.GET, "\(gate.baseURL)/healthz").status == 200)
        }
        withExtendedLifetime(refusing) {}
    }

    @Test func silentUpstreamGivesA504() async throws {
        try await SilentServer.with { port in
            try await withGateway(upstream: "http://127.0.0.1:\(port)", configure: { $0.upstreamTimeout = 1 }) { gate in
                let (_, token) = try await gate.makeUser("alice")
                let response = try await TestHTTP.send(.GET, "\(gate.baseURL)/system_stats", headers: [("Authorization", "Bearer \(token)")])
                #expect(response.status == 504)
                #expect(try response.json()["error"] as? String == "upstream timed out")
            }
        }
    }

    @Test func healthAndReadinessNeedNoCredentials() async throws {
        try await withGateway { gate in
            let health = try await TestHTTP.send(.GET, "\(gate.baseURL)/healthz")
            #expect(health.status == 200)
            #expect(try health.json()["status"] as? String == "ok")
            let ready = try await TestHTTP.send(.GET, "\(gate.baseURL)/readyz")
            #expect(ready.status == 200)
            #expect(try ready.json()["status"] as? String == "ready")
            let backends = try #require(try ready.json()["backends"] as? [[String: Any]])
            #expect(backends.map { $0["name"] as? String } == ["comfyui"])
            #expect(backends.first?["state"] as? String == "up")
        }
    }

    @Test func expectContinueIsAnsweredBeforeTheBody() async throws {
        try await withGateway { gate in
            let (_, token) = try await gate.makeUser("alice", role: .admin)
            let connection = try RawConnection(port: gate.port, timeoutSeconds: 30)
            let body = #"{"unload_models":false,"free_memory":false}"#
            try await connection.write(
                "POST /free HTTP/1.1\r\nHost: 127.0.0.1:\(gate.port)\r\nAuthorization: Bearer \(token)\r\n"
                    + "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nExpect: 100-continue\r\n\r\n"
            )
            let interim = await connection.read(until: "\r\n\r\n")
            #expect(interim.hasPrefix("HTTP/1.1 100 Continue"), "got: \(interim.prefix(40))")
            try await connection.write(body)
            let final = await connection.read(until: "\r\n\r\n")
            #expect(final.contains("HTTP/1.1 200"), "got: \(final.prefix(60))")
            let request = try #require(gate.comfyUIRequests.first { $0.path == "/free" })
            #expect(request.headerValues("Expect").isEmpty)
            #expect(request.bodyByteCount == body.utf8.count)
        }
    }
}

/// A TCP server that accepts connections and never answers.
enum SilentServer {
    static func with<T: Sendable>(_ body: (Int) async throws -> T) async throws -> T {
        try await LoopbackServer.with(body)
    }
}

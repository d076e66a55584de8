import ComfyGateCore
import ComfyGateServer
import ComfyGateTestSupport
import Foundation
import NIOHTTP1
import Testing

/// Connections that hold a place without using it, too many connections, and requests that are not HTTP.
@Suite struct ClientConnectionTests {
    @Test func aHalfSentHeadGets408AndTheConnectionClosesAfterTheHeadTimeout() async throws {
        // The timeout runs from the accept: it must outlast the moment between connecting and writing, which a loaded
        // machine can stretch past a second (the gateway then rightly closes a connection that sent nothing, silently).
        try await withGateway(configure: { $0.requestHeadTimeout = 3 }) { gate in
            let connection = try RawConnection(port: gate.port, timeoutSeconds: 20)
            try await connection.write("GET /queue HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            let started = ContinuousClock.now
            let (text, closed) = await connection.readToEnd()
            #expect(closed, "the gateway closes the connection")
            #expect(text.hasPrefix("HTTP/1.1 408"), "got: \(text.prefix(40))")
            #expect(ContinuousClock.now - started < .seconds(15), "closed by the head timeout, not the read timeout")
            #expect(gate.comfyUIRequests.isEmpty)
        }
    }

    @Test func aConnectionThatSendsNothingIsClosedAfterTheHeadTimeout() async throws {
        try await withGateway(configure: { $0.requestHeadTimeout = 1 }) { gate in
            let connection = try RawConnection(port: gate.port, timeoutSeconds: 20)
            let (text, closed) = await connection.readToEnd()
            #expect(closed)
            #expect(text.isEmpty, "nothing was asked, nothing is answered")
        }
    }

    @Test func anIdleKeptAliveConnectionIsClosedAfterTheKeepAliveTimeout() async throws {
        try await withGateway(configure: { $0.keepAliveTimeout = 1 }) { gate in
            let connection = try RawConnection(port: gate.port, timeoutSeconds: 20)
            try await connection.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            let (text, closed) = await connection.readToEnd()
            #expect(text.hasPrefix("HTTP/1.1 200"))
            #expect(text.hasSuffix(#"{"status":"ok"}"#), "the answer is complete before the close")
            #expect(closed)
        }
    }

    @Test func aBodyThatStopsComingIsClosedAfterTheBodyTimeout() async throws {
        try await withGateway(configure: { $0.requestBodyTimeout = 1 }) { gate in
            let (_, token) = try await gate.makeUser("alice")
            let connection = try RawConnection(port: gate.port, timeoutSeconds: 20)
            try await connection.write(
                "POST /upload/image HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n"
                    + "Content-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n0123456789"
            )
            let started = ContinuousClock.now
            let (_, closed) = await connection.readToEnd()
            #expect(closed)
            #expect(ContinuousClock.now - started < .seconds(8), "closed by the body timeout, not the upstream's read timeout")
        }
    }

    @Test func connectionsOverTheCapAreClosedAtOnceAndPlacesComeBack() async throws {
        try await withGateway(configure: { $0.maxConnections = 3 }) { gate in
            let (_, token) = try await gate.makeUser("alice")
            var held = try (0..<3).map { _ in try RawConnection(port: gate.port, timeoutSeconds: 20) }
            // Each held connection has been answered once, so the gateway has surely accepted and counted it (a
            // kept-alive connection keeps its place); the next one is closed unread.
            for connection in held {
                try await connection.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                let answer = await connection.read(until: #"{"status":"ok"}"#)
                try #require(answer.hasPrefix("HTTP/1.1 200"), "got: \(answer.prefix(40))")
            }
            var refused = false
            for _ in 0..<10 where !refused {
                let extra = try RawConnection(port: gate.port, timeoutSeconds: 5)
                try? await extra.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                let (text, closed) = await extra.readToEnd()
                refused = closed && text.isEmpty
                if !refused { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(refused, "a fourth connection is closed without an answer")

            held.removeAll()
            var answered = false
            for _ in 0..<100 where !answered {
                let response = try? await TestHTTP.send(.GET, "\(gate.baseURL)/queue", headers: [("Authorization", "Bearer \(token)")])
                answered = response?.status == 200
                if !answered { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(answered, "closed connections give their places back")
        }
    }

    /// `Connection: close`, in any spelling of the token: one answer, then the connection closes. Checked on the fast
    /// path (a bodiless request with a cached credential) and on the Hummingbird path (an empty chunked body).
    @Test(arguments: [false, true], ["close", "Keep-Alive, Close"])
    func connectionCloseEndsTheConnectionAfterOneAnswer(hummingbirdPath: Bool, connectionField: String) async throws {
        try await withGateway { gate in
            let (_, token) = try await gate.makeUser("alice")
            try await gate.settleStartupProbe()
            let framing = hummingbirdPath ? "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" : "\r\n"
            let request = "GET /system_stats HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n"
                + "Connection: \(connectionField)\r\n" + framing
            // A bodiless request takes the fast path once its credential is cached: the first one fills the cache,
            // the ones right after it find it there.
            let attempts = 3
            for _ in 0..<attempts {
                let connection = try RawConnection(port: gate.port, timeoutSeconds: 20)
                try await connection.write(request)
                let (text, closed) = await connection.readToEnd()
                #expect(closed, "closed after the answer, not left open until the read timeout")
                #expect(text.hasPrefix("HTTP/1.1 200"), "got: \(text.prefix(60))")
                #expect(text.lowercased().contains("\r\nconnection: close\r\n"), "the answer says it closes")
            }
            #expect(gate.comfyUIRequests.map(\.path) == Array(repeating: "/system_stats", count: attempts))
        }
    }

    /// `GET /é` as raw UTF-8: no client may send those bytes unencoded. The first request on a connection and a
    /// later one take different routes through the pipeline, so both are checked.
    @Test(arguments: [false, true])
    func rawNonASCIIInTheTargetGets400AndTheConnectionCloses(afterAnotherRequest: Bool) async throws {
        try await withGateway { gate in
            let (_, token) = try await gate.makeUser("alice")
            let connection = try RawConnection(port: gate.port, timeoutSeconds: 20)
            if afterAnotherRequest {
                try await connection.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                _ = await connection.read(until: #"{"status":"ok"}"#)
            }
            try await connection.write(Array("GET /".utf8) + [0xC3, 0xA9] + Array(" HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n\r\n".utf8))
            let (text, closed) = await connection.readToEnd()
            #expect(text.hasPrefix("HTTP/1.1 400"), "got: \(text.prefix(60))")
            #expect(closed)
            #expect(gate.comfyUIRequests.isEmpty, "never forwarded")
        }
    }

    /// What the HTTP parser lets through but no request target may hold: a fragment.
    @Test(arguments: ["/queue#top", "/?a=1#frag", "/ws#x"])
    func targetsThatAreNotPathsGet400(_ target: String) async throws {
        try await withGateway { gate in
            let (_, token) = try await gate.makeUser("alice")
            let connection = try RawConnection(port: gate.port, timeoutSeconds: 20)
            try await connection.write("GET \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n\r\n")
            let (text, closed) = await connection.readToEnd()
            #expect(text.hasPrefix("HTTP/1.1 400"), "got: \(text.prefix(60))")
            #expect(text.contains("request target"))
            #expect(closed)
            #expect(gate.comfyUIRequests.isEmpty, "never forwarded")
        }
    }

    @Test func aMalformedHeadGets400AndTheConnectionCloses() async throws {
        try await withGateway { gate in
            let connection = try RawConnection(port: gate.port, timeoutSeconds: 20)
            try await connection.write("GET / HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n")
            let (text, closed) = await connection.readToEnd()
            #expect(text.hasPrefix("HTTP/1.1 400"), "got: \(text.prefix(60))")
            #expect(closed)
        }
    }

    /// A chunk size that overflows, in the body of an authenticated upload: the client's error, answered 400 —
    /// never a 502 that blames ComfyUI.
    @Test func aChunkSizeOverflowGets400NotBadGateway() async throws {
        try await withGateway { gate in
            let (_, token) = try await gate.makeUser("alice")
            let connection = try RawConnection(port: gate.port, timeoutSeconds: 20)
            try await connection.write(
                "POST /upload/image HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n"
                    + "Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + "5\r\nhello\r\nFFFFFFFFFFFFFFFFFFFFFFFF\r\n"
            )
            let (text, closed) = await connection.readToEnd()
            #expect(text.hasPrefix("HTTP/1.1 400"), "got: \(text.prefix(60))")
            #expect(!text.contains("upstream"))
            #expect(closed)
        }
    }

    @Test func theDefaultCapFollowsTheDescriptorLimit() {
        #expect(ConnectionLimits.defaultMaxConnections(fileDescriptorLimit: 1024) == 480)
        #expect(ConnectionLimits.defaultMaxConnections(fileDescriptorLimit: 256) == 96)
        #expect(ConnectionLimits.defaultMaxConnections(fileDescriptorLimit: 20) == 8)
        #expect(ConnectionLimits.defaultMaxConnections(fileDescriptorLimit: 1 << 20) == 16_384)
    }
}

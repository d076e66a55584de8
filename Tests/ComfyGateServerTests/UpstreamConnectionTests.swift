import ComfyGateTestSupport
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

/// How the gateway's pooled connections to ComfyUI behave when ComfyUI or the client does something unusual.
@Suite struct UpstreamConnectionTests {
    @Test func keepAliveConnectionsCarryManyRequests() async throws {
        try await ScriptedUpstream.with(answer: { ScriptedUpstream.json($0) }) { upstream, baseURL in
            try await withGateway(upstream: baseURL) { gate in
                let (_, token) = try await gate.makeUser("alice")
                for index in 0..<20 {
                    let response = try await TestHTTP.send(.GET, "\(gate.baseURL)/embeddings/\(index)", headers: [("Authorization", "Bearer \(token)")])
                    #expect(response.status == 200)
                    #expect(response.text == #"{"path":"/embeddings/\#(index)"}"#)
                }
                #expect(upstream.requestCount == 20)
                #expect(upstream.requestConnectionCount <= NIOSingletons.groupLoopCountSuggestion, "at most one connection per event loop")
            }
        }
    }

    @Test func anUpstreamClosingIdleConnectionsLosesNoRequest() async throws {
        // Every connection is closed right after its answer, without `Connection: close`: as a keep-alive timeout does.
        try await ScriptedUpstream.with(answer: { ScriptedUpstream.json($0, thenClose: true) }) { upstream, baseURL in
            try await withGateway(upstream: baseURL) { gate in
                let (_, token) = try await gate.makeUser("alice")
                for index in 0..<20 {
                    let response = try await TestHTTP.send(.GET, "\(gate.baseURL)/view/\(index)", headers: [("Authorization", "Bearer \(token)")])
                    #expect(response.status == 200)
                    #expect(response.text == #"{"path":"/view/\#(index)"}"#)
                }
                #expect(upstream.connectionCount >= 20, "a closed connection is never used again")
            }
        }
    }

    @Test func aClientLeavingMidAnswerDoesNotSpoilTheNextExchange() async throws {
        let large = 32 << 20
        // Built once, here: an answer built inside `answer` would hold up the event loop it runs on.
        var largeAnswer = ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: \(large)\r\n\r\n")
        largeAnswer.writeRepeatingByte(0x61, count: large)
        let answer: @Sendable (String) -> ScriptedUpstream.Answer = { [largeAnswer] path in
            path == "/large" ? ScriptedUpstream.Answer(bytes: largeAnswer, thenClose: false) : ScriptedUpstream.json(path)
        }
        try await ScriptedUpstream.with(answer: answer) { upstream, baseURL in
            try await withGateway(upstream: baseURL) { gate in
                let (_, token) = try await gate.makeUser("alice")
                for _ in 0..<3 {
                    let connection = try RawConnection(port: gate.port, timeoutSeconds: 30)
                    try await connection.write("GET /large HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n\r\n")
                    let head = await connection.read(until: "\r\n\r\n")
                    #expect(head.hasPrefix("HTTP/1.1 200"), "got: \(head.prefix(40))")
                }
                for index in 0..<10 {
                    let response = try await TestHTTP.send(.GET, "\(gate.baseURL)/small/\(index)", headers: [("Authorization", "Bearer \(token)")])
                    #expect(response.status == 200)
                    #expect(response.text == #"{"path":"/small/\#(index)"}"#, "an answer never carries the rest of an abandoned one")
                }
                #expect(upstream.requestCount == 13)
            }
        }
    }

    @Test func largeAnswersStreamCompletelyOneAfterAnother() async throws {
        let size = 8 << 20
        // Built once, here: an answer built inside `answer` would hold up the event loop it runs on.
        var viewAnswer = ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: \(size)\r\n\r\n")
        viewAnswer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { bytes in
            for index in 0..<(size / 4) { bytes.storeBytes(of: UInt32(index).bigEndian, toByteOffset: index * 4, as: UInt32.self) }
            return size
        }
        let answer: @Sendable (String) -> ScriptedUpstream.Answer = { [viewAnswer] path in
            path == "/view" ? ScriptedUpstream.Answer(bytes: viewAnswer, thenClose: false) : ScriptedUpstream.json(path)
        }
        try await ScriptedUpstream.with(answer: answer) { _, baseURL in
            try await withGateway(upstream: baseURL) { gate in
                let (_, token) = try await gate.makeUser("alice")
                let authorization = [("Authorization", "Bearer \(token)")]
                // Back to back, so that most go the fast path (credential cached) and reuse one upstream connection.
                for _ in 0..<4 {
                    let response = try await TestHTTP.send(.GET, "\(gate.baseURL)/view", headers: authorization)
                    #expect(response.status == 200)
                    #expect(response.body.readableBytes == size)
                    var body = response.body
                    #expect(body.getInteger(at: body.readerIndex + size - 4, as: UInt32.self) == UInt32(size / 4 - 1))
                    #expect(body.readInteger(as: UInt32.self) == 0)
                }
            }
        }
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
        try await ScriptedUpstream.with(answer: { ScriptedUpstream.json($0) }) { upstream, baseURL in
            try await withGateway(upstream: baseURL) { gate in
                let (_, token) = try await gate.makeUser("alice")
                // The first request fills the cache, so the later ones can take the fast path.
                #expect(try await TestHTTP.send(.GET, "\(gate.baseURL)/warm", headers: [("Authorization", "Bearer \(token)")]).status == 200)
                let connection = try RawConnection(port: gate.port, timeoutSeconds: 30)
                let paths = ["/a", "/healthz", "/b", "/login", "/c"]
                try await connection.write(paths.map { "GET \($0) HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n\r\n" }.joined())
                let received = await connection.read(until: #"{"path":"/c"}"#)
                let order = [#"{"path":"/a"}"#, #"{"status":"ok"}"#, #"{"path":"/b"}"#, "<form", #"{"path":"/c"}"#].map {
                    received.range(of: $0)?.lowerBound
                }
                #expect(order.allSatisfy { $0 != nil }, "every request is answered: \(received.suffix(300))")
                let positions = order.compactMap { $0 }
                #expect(positions == positions.sorted(), "answers come in the order of the requests")
                #expect(upstream.requestCount == 4, "the gateway's own routes never reach ComfyUI")
            }
        }
    }
}

import ComfyGateCore
import ComfyGateTestSupport
import ComfyGateSQLite
import NIOHTTP1
import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOWebSocket
import Synchronization
import Testing
import WSClient

@Suite struct WebSocketTests {
    static let logger = Logger(label: "ws-test")

    static func configuration(headers: HTTPFields = [:]) -> WebSocketClientConfiguration {
        WebSocketClientConfiguration(maxFrameSize: 16 << 20, additionalHeaders: headers, autoPing: .disabled)
    }

    @Test func textFramesFlowBothWaysWithTheBearerHeader() async throws {
        try await withGateway { gate in
            let (alice, token) = try await gate.makeUser("alice")
            // ComfyUI knows the socket by the client id in alice's own namespace, and tells the client that id.
            let sid = alice.id + "~abc123"
            let received = Mutex<[String]>([])
            try await WebSocketClient.connect(
                url: "\(gate.webSocketURL)/ws?clientId=abc123",
                configuration: Self.configuration(headers: [.authorization: "Bearer \(token)"]),
                logger: Self.logger
            ) { inbound, outbound, _ in
                var messages = inbound.messages(maxSize: 1 << 20).makeAsyncIterator()
                guard case .text(let first) = try await messages.next() else { return }
                received.withLock { $0.append(first) }
                try await outbound.write(.text(#"{"type":"feature_flags","data":{"supports_preview_metadata":true}}"#))
                guard case .text(let reply) = try await messages.next() else { return }
                received.withLock { $0.append(reply) }
                try await outbound.close(.normalClosure, reason: nil)
            }
            let messages = received.withLock { $0 }
            #expect(messages.count == 2)
            #expect(messages.first?.contains(#""sid": "\#(sid)""#) == true, "ComfyUI's first message names the socket")
            #expect(messages.last?.contains("feature_flags") == true)
            let socket = try #require(gate.comfyUIWebSockets.first)
            #expect(socket.sid == sid)
            #expect(socket.query == "clientId=\(sid)")
            #expect(!socket.handshakeHeaders.contains { $0.name.lowercased() == "authorization" })
            #expect(socket.receivedFrames.contains { if case .text(let text) = $0 { text.contains("feature_flags") } else { false } })
        }
    }

    @Test func largeBinaryFramesPassIntactBothWays() async throws {
        try await withGateway { gate in
            let (alice, token) = try await gate.makeUser("alice")
            let upload = (0..<(300 * 1024)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            // A 256 KiB JPEG-typed preview frame (B.4: event type 1, image format 1, then the image bytes).
            let payload = [0, 0, 0, 1] + (0..<(256 * 1024)).map { UInt8(truncatingIfNeeded: $0 &* 7) }
            let expected = ComfyUIStandIn.binaryFrame(eventType: 1, payload: payload)
            let preview = Mutex<[UInt8]>([])
            try await WebSocketClient.connect(
                url: "\(gate.webSocketURL)/api/ws?clientId=bin&token=\(token)",
                configuration: Self.configuration(),
                logger: Self.logger
            ) { inbound, outbound, _ in
                var messages = inbound.messages(maxSize: 16 << 20).makeAsyncIterator()
                _ = try await messages.next()  // status
                gate.standIn.broadcastBinary(eventType: 1, payload: payload, to: alice.id + "~bin")
                while let message = try await messages.next() {
                    if case .binary(let buffer) = message {
                        preview.withLock { $0 = Array(buffer.readableBytesView) }
                        break
                    }
                }
                try await outbound.write(.binary(ByteBuffer(bytes: upload)))
                try await outbound.write(.text("after-binary"))
                // Wait until the stand-in has the frames, then close.
                for _ in 0..<200 where !(gate.comfyUIWebSockets.first?.receivedFrames.contains(.text("after-binary")) ?? false) {
                    try await Task.sleep(for: .milliseconds(10))
                }
                try await outbound.close(.normalClosure, reason: nil)
            }
            #expect(preview.withLock { $0 } == expected, "the preview frame arrives byte for byte")
            let socket = try #require(gate.comfyUIWebSockets.first)
            #expect(socket.receivedFrames.contains(.binary(upload)))
            #expect(!(socket.query ?? "").contains("token"))
        }
    }

    @Test func upstreamCloseCodesReachTheClient() async throws {
        try await withGateway { gate in
            let (_, token) = try await gate.makeUser("alice")
            let closeFrame = try await WebSocketClient.connect(
                url: "\(gate.webSocketURL)/ws?clientId=closer",
                configuration: Self.configuration(headers: [.authorization: "Bearer \(token)"]),
                logger: Self.logger
            ) { inbound, _, _ in
                var messages = inbound.messages(maxSize: 1 << 20).makeAsyncIterator()
                _ = try await messages.next()
                gate.standIn.closeAllWebSockets(code: 4001, reason: "policy")
                while try await messages.next() != nil {}
            }
            #expect(closeFrame?.closeCode == .unknown(4001))
            #expect(closeFrame?.reason == "policy")
        }
    }

    @Test func clientCloseClosesTheUpstreamSocket() async throws {
        try await withGateway { gate in
            let (_, token) = try await gate.makeUser("alice")
            try await WebSocketClient.connect(
                url: "\(gate.webSocketURL)/ws?clientId=leaver&token=\(token)",
                configuration: Self.configuration(),
                logger: Self.logger
            ) { inbound, outbound, _ in
                var messages = inbound.messages(maxSize: 1 << 20).makeAsyncIterator()
                _ = try await messages.next()
                #expect(gate.standIn.connectedWebSocketCount == 1)
                try await outbound.close(.goingAway, reason: nil)
            }
            #expect(try await eventually { gate.standIn.connectedWebSocketCount == 0 })
        }
    }

    @Test func gracefulShutdownClosesBothSidesWithGoingAway() async throws {
        try await withGateway { gate in
            let (_, token) = try await gate.makeUser("alice")
            let closeFrame = try await WebSocketClient.connect(
                url: "\(gate.webSocketURL)/ws?clientId=stopping&token=\(token)",
                configuration: Self.configuration(),
                logger: Self.logger
            ) { inbound, _, _ in
                var messages = inbound.messages(maxSize: 1 << 20).makeAsyncIterator()
                _ = try await messages.next()
                await gate.shutdown()
                while try await messages.next() != nil {}
            }
            #expect(closeFrame?.closeCode == .goingAway)
            #expect(try await eventually { gate.standIn.connectedWebSocketCount == 0 }, "ComfyUI's side is closed too")
        }
    }

    @Test func unauthenticatedUpgradesAreRefusedWithA401() async throws {
        try await withGateway { gate in
            let connection = try RawConnection(port: gate.port)
            try await connection.write(Self.handshake(path: "/ws?clientId=x", port: gate.port))
            let answer = await connection.read(until: "}")
            #expect(answer.hasPrefix("HTTP/1.1 401"), "got \(answer.prefix(40))")
            #expect(answer.contains("authentication required"))
            #expect(gate.comfyUIWebSockets.isEmpty)
        }
    }

    @Test func crossSiteCookieUpgradesAreRefused() async throws {
        try await withGateway { gate in
            _ = try await gate.makeUser("alice", password: "correct-horse-battery")
            let cookie = try #require(BrowserLoginTests.sessionCookie(
                try await BrowserLoginTests.login(gate, user: "alice", password: "correct-horse-battery")))
            let evil = try RawConnection(port: gate.port)
            try await evil.write(Self.handshake(path: "/ws", port: gate.port, extra: "Cookie: \(cookie)\r\nOrigin: http://evil.example\r\n"))
            #expect(await evil.read(until: "\r\n\r\n").hasPrefix("HTTP/1.1 403"))
            let same = try RawConnection(port: gate.port)
            try await same.write(Self.handshake(path: "/ws", port: gate.port, extra: "Cookie: \(cookie)\r\nOrigin: \(gate.baseURL)\r\n"))
            let answer = await same.read(until: "\r\n\r\n")
            #expect(answer.hasPrefix("HTTP/1.1 101"), "got \(answer.prefix(40))")
            #expect(answer.lowercased().contains("sec-websocket-accept: hsmrc0smlyukagmm5oppg2hagwk="))
        }
    }

    @Test func anUnreachableUpstreamRefusesTheUpgrade() async throws {
        let refusing = try RefusingPort()
        try await withGateway(upstream: "http://127.0.0.1:\(refusing.port)") { gate in
            let (_, token) = try await gate.makeUser("alice")
            let connection = try RawConnection(port: gate.port)
            try await connection.write(Self.handshake(path: "/ws", port: gate.port, extra: "Authorization: Bearer \(token)\r\n"))
            let answer = await connection.read(until: "}")
            #expect(answer.hasPrefix("HTTP/1.1 502"), "got \(answer.prefix(40))")
        }
        withExtendedLifetime(refusing) {}
    }

    /// A handshake with the key `x3JJHMbDL1EzLkh9GBhXDw==`, whose accept value is `HSmrc0sMlYUkAGmm5OPpG2HaGWk=`.
    static func handshake(path: String, port: Int, extra: String = "") -> String {
        "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\nSec-WebSocket-Version: 13\r\n\(extra)\r\n"
    }

    /// aiohttp clients reuse pooled connections: a handshake after other requests on the same connection is
    /// upgraded like a first one, with the same policy (alice's client id is her own).
    @Test func aHandshakeOnAKeptAliveConnectionIsUpgraded() async throws {
        try await withGateway { gate in
            let (alice, token) = try await gate.makeUser("alice")
            let connection = try RawConnection(port: gate.port)
            let auth = "Authorization: Bearer \(token)\r\n"
            try await connection.write("GET /system_stats HTTP/1.1\r\nHost: 127.0.0.1\r\n\(auth)\r\n")
            #expect(await connection.read(until: "}").hasPrefix("HTTP/1.1 200"))
            try await connection.write(
                "GET /ws?clientId=pooled HTTP/1.1\r\nHost: 127.0.0.1\r\n\(auth)Connection: Upgrade\r\nUpgrade: websocket\r\n"
                    + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
            )
            let answer = await connection.read(until: "status")
            #expect(answer.contains("HTTP/1.1 101"), "upgraded: \(answer.prefix(200))")
            #expect(answer.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "the accept value answers the key")
            #expect(answer.contains("\(alice.id)~pooled"), "ComfyUI's first message names alice's own client id")
        }
    }
}

@testable import ComfyGateServer
import ComfyGateCore
import ComfyGateSQLite
import ComfyGateTestSupport
import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOSSL
import NIOWebSocket
import Synchronization
import Testing
import WSClient

/// ComfyUI backends behind https or a path prefix, and client websockets carried by several backends at once.
@Suite struct WebSocketBackendTests {
    // MARK: https and path prefixes

    @Test func aWssBackendWhoseCertificateIsTrustedCarriesEventsBothWays() async throws {
        let authority = try await TestCertificateAuthority.make()
        defer { authority.remove() }
        let issued = try await authority.issue(for: ["127.0.0.1"], as: "comfyui")
        var options = ComfyUIStandIn.Options()
        options.tlsCertFile = issued.certificateFile
        options.tlsKeyFile = issued.keyFile
        try await withComfyUIStandIn(options) { standIn in
            #expect(standIn.webSocketBaseURL.hasPrefix("wss://"))
            let backends = try Self.backends([standIn.baseURL], trusting: authority)
            try await withGateway(in: standIn, store: try SQLiteStore.inMemory(), webSocketBackends: backends.value) { gate in
                try await Self.expectEventsBothWays(gate, standIns: [standIn], clientID: "secure")
            }
        }
    }

    @Test func aBackendUnderAPathPrefixBehindNginxCarriesEventsBothWays() async throws {
        try await withComfyUIStandIn { standIn in
            try await withPrefixingReverseProxy(prefix: "/comfy", to: standIn.port) { proxyPort in
                // The configured upstream itself: the gateway builds its websocket connector from it.
                try await withGateway(in: standIn, store: try SQLiteStore.inMemory(), upstream: "http://127.0.0.1:\(proxyPort)/comfy/") { gate in
                    try await Self.expectEventsBothWays(gate, standIns: [standIn], clientID: "prefixed")
                    #expect(gate.comfyUIWebSockets.first?.path == "/ws", "nginx took the prefix off the gateway's /comfy/ws")
                }
            }
        }
    }

    @Test func aBackendWithAWrongCertificateIsRefusedWithA502() async throws {
        let authority = try await TestCertificateAuthority.make()
        defer { authority.remove() }
        let elsewhere = try await authority.issue(for: ["comfy.invalid"], as: "elsewhere")
        let here = try await authority.issue(for: ["127.0.0.1"], as: "here")
        for (issued, trusted) in [(here, false), (elsewhere, true)] {
            var options = ComfyUIStandIn.Options()
            options.tlsCertFile = issued.certificateFile
            options.tlsKeyFile = issued.keyFile
            try await withComfyUIStandIn(options) { standIn in
                // Untrusted: the system's trust roots, which do not hold the test authority. Trusted: a certificate
                // for another name.
                let backends = trusted ? try Self.backends([standIn.baseURL], trusting: authority).value : nil
                try await withGateway(in: standIn, store: try SQLiteStore.inMemory(), webSocketBackends: backends) { gate in
                    let (_, token) = try await gate.makeUser("alice")
                    let connection = try RawConnection(port: gate.port)
                    try await connection.write(WebSocketTests.handshake(path: "/ws", port: gate.port, extra: "Authorization: Bearer \(token)\r\n"))
                    let answer = await connection.read(until: "}")
                    #expect(answer.hasPrefix("HTTP/1.1 502"), "got \(answer.prefix(40))")
                    #expect(answer.contains("upstream unreachable") && answer.contains("TLS handshake failed"), "the cause is named: \(answer)")
                    #expect(gate.comfyUIWebSockets.isEmpty)
                }
            }
        }
    }

    // MARK: Several backends

    @Test func eventsOfThreeBackendsReachOneClientFilteredAndInOrder() async throws {
        try await withComfyUIStandIn { first in
            try await withComfyUIStandIn { second in
                try await withComfyUIStandIn { third in
                    let standIns = [first, second, third]
                    let backends = try Self.backends(standIns.map(\.baseURL))
                    try await withGateway(in: first, store: try SQLiteStore.inMemory(), webSocketBackends: backends.value) { gate in
                        let (alice, token) = try await gate.makeUser("alice")
                        let sid = alice.id + "~many"
                        try await Self.withClient(gate, path: "/ws?clientId=many", token: token) { received, outbound in
                            try await outbound.write(.text(Self.featureFlags))
                            #expect(try await Self.eventuallyJoined(standIns, sid: sid), "every backend has the client's socket")
                            for (index, standIn) in standIns.enumerated() {
                                // Broadcast to every socket: another user's interrupted prompt and progress text are
                                // cut for alice, from every backend as from one.
                                standIn.broadcast(text: Self.message("execution_interrupted", #"{"prompt_id": "bobs-prompt", "node_id": "1"}"#))
                                standIn.sendProgressText("bob's step", nodeId: "1")
                                for n in 0..<5 {
                                    standIn.broadcast(text: Self.message("note", #"{"from": \#(index), "n": \#(n)}"#), to: sid)
                                }
                                standIn.broadcastBinary(eventType: 1, payload: [0, 0, 0, 2, UInt8(index)], to: sid)
                            }
                            #expect(try await received.eventually { texts, binaries in
                                (0..<3).allSatisfy { index in texts.contains { $0.contains(#""from": \#(index), "n": 4"#) } } && binaries.count == 3
                            })
                            let texts = received.texts
                            for index in 0..<3 {
                                let notes = texts.filter { $0.contains(#""from": \#(index),"#) }
                                #expect(notes == (0..<5).map { Self.message("note", #"{"from": \#(index), "n": \#($0)}"#) }, "in order")
                            }
                            #expect(!texts.contains { $0.contains("bobs-prompt") }, "another user's interruption is cut")
                            #expect(!received.binaries.contains { $0.starts(with: [0, 0, 0, 3]) }, "progress text of another's prompt is cut")
                            #expect(Set(received.binaries) == Set((0..<3).map { [0, 0, 0, 1, 0, 0, 0, 2, UInt8($0)] }))
                            for standIn in standIns {
                                #expect(try await eventually {
                                    standIn.recordedWebSockets.contains { $0.sid == sid && $0.receivedFrames.contains(.text(Self.featureFlags)) }
                                }, "the client's feature_flags reach every backend")
                            }
                        }
                    }
                }
            }
        }
    }

    @Test func aBackendThatStopsIsDroppedAndOneThatComesBackIsAttached() async throws {
        try await withComfyUIStandIn { primary in
            let options = try Self.options(port: LoopbackPort.free())
            let tributaryURL = "http://127.0.0.1:\(options.port)"
            let backends = try Self.backends([primary.baseURL, tributaryURL])
            let tributary = try await BackgroundStandIn.start(options)
            try await withGateway(in: primary, store: try SQLiteStore.inMemory(), webSocketBackends: backends.value) { gate in
                let (alice, token) = try await gate.makeUser("alice")
                let sid = alice.id + "~rejoin"
                let closeFrame = try await Self.withClient(gate, path: "/ws?clientId=rejoin", token: token) { received, _ in
                    #expect(try await Self.eventuallyJoined([primary, tributary.standIn], sid: sid))
                    tributary.standIn.broadcast(text: Self.message("note", #"{"from": "tributary"}"#), to: sid)
                    #expect(try await received.eventually { texts, _ in texts.contains { $0.contains(#""from": "tributary""#) } })

                    // ComfyUI stops (closing its websockets with 1001): the client's socket stays open on the primary.
                    try await tributary.stop()
                    primary.broadcast(text: Self.message("note", #"{"from": "primary"}"#), to: sid)
                    #expect(try await received.eventually { texts, _ in texts.contains { $0.contains(#""from": "primary""#) } })
                    #expect(!received.isClosed)

                    // It is restarted on the same port and attached to the open sockets.
                    let restarted = try await BackgroundStandIn.start(options)
                    backends.openWebSockets?.attach(try Self.connector(tributaryURL))
                    #expect(try await Self.eventuallyJoined([restarted.standIn], sid: sid))
                    restarted.standIn.broadcast(text: Self.message("note", #"{"from": "restarted"}"#), to: sid)
                    #expect(try await received.eventually { texts, _ in texts.contains { $0.contains(#""from": "restarted""#) } })
                    try await restarted.stop()
                }
                #expect(closeFrame?.closeCode == .normalClosure, "the client closed its socket itself")
            }
        }
    }

    @Test func theClientSocketEndsWithItsPrimary() async throws {
        try await withComfyUIStandIn { tributary in
            let options = try Self.options(port: LoopbackPort.free())
            let primary = try await BackgroundStandIn.start(options)
            let backends = try Self.backends([primary.standIn.baseURL, tributary.baseURL])
            try await withGateway(in: tributary, store: try SQLiteStore.inMemory(), webSocketBackends: backends.value) { gate in
                let (alice, token) = try await gate.makeUser("alice")
                let closeFrame = try await Self.withClient(gate, path: "/ws?clientId=ends", token: token) { received, _ in
                    #expect(try await Self.eventuallyJoined([primary.standIn, tributary], sid: alice.id + "~ends"))
                    try await primary.stop()
                    #expect(try await eventually { received.isClosed })
                }
                // The stand-in closes with 1001, which reaches the client as the primary's close code.
                #expect(closeFrame?.closeCode == .goingAway)
            }
        }
    }

    // MARK: Support

    static func options(port: Int) -> ComfyUIStandIn.Options {
        var options = ComfyUIStandIn.Options()
        options.port = port
        return options
    }

    static let featureFlags = #"{"type":"feature_flags","data":{"supports_preview_metadata":false}}"#

    /// A message as ComfyUI writes it (`json.dumps` with its default separators).
    static func message(_ type: String, _ data: String) -> String {
        #"{"type": "\#(type)", "data": \#(data)}"#
    }

    /// A websocket connector to `url` as the gateway makes them, trusting `authority` for https.
    static func connector(_ url: String, trusting authority: TestCertificateAuthority? = nil) throws -> UpstreamWebSocketConnector {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let authority { tls.trustRoots = .file(authority.certificateFile) }
        return try Gateway.webSocketConnector(
            for: URL(string: url)!, configuration: GatewayConfiguration(listenHost: "127.0.0.1", listenPort: 0, upstream: URL(string: url)!),
            tlsConfiguration: tls)
    }

    /// Backends for client websockets, the first primary, and the gateway's open websockets once it is built.
    final class Backends: Sendable {
        private let connectors: [UpstreamWebSocketConnector]
        private let opened = Mutex<OpenWebSockets?>(nil)
        var openWebSockets: OpenWebSockets? { opened.withLock { $0 } }

        init(_ connectors: [UpstreamWebSocketConnector]) {
            self.connectors = connectors
        }

        var value: WebSocketBackends {
            WebSocketBackends(upstreams: { [connectors] in connectors }, opened: { [self] sockets in opened.withLock { $0 = sockets } })
        }
    }

    static func backends(_ urls: [String], trusting authority: TestCertificateAuthority? = nil) throws -> Backends {
        Backends(try urls.map { try connector($0, trusting: authority) })
    }

    /// Whether every stand-in has an open socket for `sid` within the usual time.
    static func eventuallyJoined(_ standIns: [ComfyUIStandIn], sid: String) async throws -> Bool {
        try await eventually { standIns.allSatisfy { $0.recordedWebSockets.contains { $0.sid == sid && $0.isOpen } } }
    }

    /// ComfyUI's first message names the socket; the client's message gets ComfyUI's `feature_flags` answer; a
    /// message ComfyUI sends to the client arrives.
    static func expectEventsBothWays(_ gate: GatewayHarness, standIns: [ComfyUIStandIn], clientID: String) async throws {
        let (alice, token) = try await gate.makeUser("alice")
        let sid = alice.id + "~" + clientID
        try await withClient(gate, path: "/ws?clientId=\(clientID)", token: token) { received, outbound in
            #expect(try await received.eventually { texts, _ in texts.contains { $0.contains(#""sid": "\#(sid)""#) } })
            try await outbound.write(.text(featureFlags))
            #expect(try await received.eventually { texts, _ in texts.contains { $0.contains(#""type": "feature_flags""#) } })
            for standIn in standIns { standIn.broadcast(text: message("note", #"{"hello": "\#(sid)"}"#), to: sid) }
            #expect(try await received.eventually { texts, _ in texts.contains { $0.contains(#""hello""#) } })
        }
        for standIn in standIns {
            #expect(standIn.recordedWebSockets.contains { $0.sid == sid && $0.receivedFrames.contains(.text(featureFlags)) })
        }
    }

    /// What a test client received.
    final class Received: Sendable {
        private let messages = Mutex<(texts: [String], binaries: [[UInt8]], closed: Bool)>(([], [], false))
        var texts: [String] { messages.withLock { $0.texts } }
        var binaries: [[UInt8]] { messages.withLock { $0.binaries } }
        var isClosed: Bool { messages.withLock { $0.closed } }

        func append(text: String) { messages.withLock { $0.texts.append(text) } }
        func append(binary: [UInt8]) { messages.withLock { $0.binaries.append(binary) } }
        func close() { messages.withLock { $0.closed = true } }

        /// Whether `condition` holds of the texts and binary messages within the usual time.
        func eventually(_ condition: ([String], [[UInt8]]) -> Bool) async throws -> Bool {
            try await ComfyGateTestSupport.eventually { messages.withLock { condition($0.texts, $0.binaries) } }
        }
    }

    /// Opens a client websocket through the gateway, read in the background, for as long as `body` runs; then
    /// closes it. Returns the close frame the gateway sent.
    @discardableResult
    static func withClient(
        _ gate: GatewayHarness, path: String, token: String,
        _ body: @escaping @Sendable (Received, WebSocketOutboundWriter) async throws -> Void
    ) async throws -> WebSocketCloseFrame? {
        let received = Received()
        return try await WebSocketClient.connect(
            url: gate.webSocketURL + path, configuration: WebSocketTests.configuration(headers: [.authorization: "Bearer \(token)"]),
            logger: WebSocketTests.logger
        ) { inbound, outbound, _ in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for try await message in inbound.messages(maxSize: 16 << 20) {
                        switch message {
                        case .text(let text): received.append(text: text)
                        case .binary(let buffer): received.append(binary: Array(buffer.readableBytesView))
                        }
                    }
                    received.close()
                }
                try await body(received, outbound)
                if !received.isClosed { try await outbound.close(.normalClosure, reason: nil) }
                try await group.waitForAll()
            }
        }
    }
}

/// A stand-in in a task of its own until ``stop()``: what a test needs to stop ComfyUI and start it again.
struct BackgroundStandIn: Sendable {
    let standIn: ComfyUIStandIn
    private let stopping: AsyncStream<Void>.Continuation
    private let task: Task<Void, any Error>

    static func start(_ options: ComfyUIStandIn.Options) async throws -> BackgroundStandIn {
        let (started, startedContinuation) = AsyncStream<ComfyUIStandIn>.makeStream()
        let (stop, stopping) = AsyncStream<Void>.makeStream()
        let task = Task {
            defer { startedContinuation.finish() }
            try await withComfyUIStandIn(options) { standIn in
                startedContinuation.yield(standIn)
                for await _ in stop {}
            }
        }
        var iterator = started.makeAsyncIterator()
        guard let standIn = await iterator.next() else {
            try await task.value
            throw DidNotStart()
        }
        return BackgroundStandIn(standIn: standIn, stopping: stopping, task: task)
    }

    struct DidNotStart: Error {}

    /// Shuts the stand-in down as ``withComfyUIStandIn(_:_:)`` does at its end (websockets closed with 1001).
    func stop() async throws {
        stopping.finish()
        try await task.value
    }
}

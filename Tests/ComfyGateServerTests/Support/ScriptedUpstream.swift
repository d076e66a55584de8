import Foundation
import NIOCore
import Synchronization

/// A bare HTTP/1.1 server that answers each bodiless request with canned bytes, for connection-level behaviour
/// the ComfyUI stand-in (a real HTTP server) never shows: closing keep-alive connections, huge answers.
final class ScriptedUpstream: Sendable {
    struct Answer: Sendable {
        var bytes: ByteBuffer
        /// Close the connection right after the answer, without saying so in a header.
        var thenClose: Bool
    }

    private let answer: @Sendable (_ path: String) -> Answer
    private let accepted = Atomic<Int>(0)
    private let requests = Atomic<Int>(0)
    private let carrying = Atomic<Int>(0)

    /// Connections accepted so far.
    var connectionCount: Int { accepted.load(ordering: .relaxed) }
    /// Connections that carried at least one of the requests ``requestCount`` counts (not only the gateway's own).
    var requestConnectionCount: Int { carrying.load(ordering: .relaxed) }
    /// Requests answered so far, less the gateway's start-up question whether ComfyUI runs with `--multi-user`
    /// (`GET /users`).
    var requestCount: Int { requests.load(ordering: .relaxed) }

    private init(answer: @escaping @Sendable (String) -> Answer) {
        self.answer = answer
    }

    /// A `200` with a JSON body naming the path.
    static func json(_ path: String, thenClose: Bool = false) -> Answer {
        let body = #"{"path":"\#(path)"}"#
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n"
        return Answer(bytes: ByteBuffer(string: head + body), thenClose: thenClose)
    }

    /// Runs `body` with the server listening on a free loopback port.
    static func with<T: Sendable>(
        answer: @escaping @Sendable (String) -> Answer,
        _ body: (_ server: ScriptedUpstream, _ baseURL: String) async throws -> T
    ) async throws -> T {
        let server = ScriptedUpstream(answer: answer)
        return try await LoopbackServer.with(setUp: { child in
            server.accepted.add(1, ordering: .relaxed)
            try child.pipeline.syncOperations.addHandler(RequestReader(server: server))
        }) { port in
            try await body(server, "http://127.0.0.1:\(port)")
        }
    }

    /// Splits the byte stream into request heads and answers each one.
    private final class RequestReader: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        let server: ScriptedUpstream
        private var pending = ""
        private var carried = false

        init(server: ScriptedUpstream) {
            self.server = server
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            pending += String(buffer: unwrapInboundIn(data))
            while let end = pending.range(of: "\r\n\r\n") {
                let head = pending[..<end.lowerBound]
                pending = String(pending[end.upperBound...])
                let path = head.split(separator: " ").dropFirst().first.map(String.init) ?? "/"
                // The gateway's own requests (whether ComfyUI runs --multi-user, whether it answers) are not the test's.
                if path != "/users" && !head.lowercased().contains("user-agent: comfygate-watch") {
                    server.requests.add(1, ordering: .relaxed)
                    if !carried { server.carrying.add(1, ordering: .relaxed) }
                    carried = true
                }
                let answer = server.answer(path)
                context.writeAndFlush(wrapOutboundOut(answer.bytes), promise: nil)
                if answer.thenClose {
                    context.close(promise: nil)
                    return
                }
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}

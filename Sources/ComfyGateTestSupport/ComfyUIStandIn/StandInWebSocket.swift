import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import NIOCore
import NIOWebSocket

/// `/ws` and `/api/ws` (section B).
enum StandInWebSocket {
    static func register(on router: Router<StandInContext>, state: StandInState) {
        for path in ["/api/ws", "/ws"] {
            router.ws(RouterPath(path)) { inbound, outbound, context in
                try await handle(inbound: inbound, outbound: outbound, context: context, state: state)
            }
        }
    }

    /// Sent to a plain GET of `/ws` (aiohttp's `WebSocketResponse.prepare` on a non-upgrade request).
    static func notAnUpgrade(_ request: Request) -> Response {
        let upgrade = request.headers[.upgrade].map { $0 } ?? "None"
        return StandInResponses.text(
            "No WebSocket UPGRADE hdr: \(upgrade)\n Can \"Upgrade\" only to \"WebSocket\".", status: .badRequest)
    }

    private static func handle(
        inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, context: WebSocketRouterContext<StandInContext>,
        state: StandInState
    ) async throws {
        let request = context.request
        let clientId = StandInLoginMiddleware.queryValue(request, "clientId") ?? ""
        let sid = clientId.isEmpty ? UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "") : clientId
        let headers = standInRecordedHeaders(request)
        let (stream, continuation) = AsyncStream<StandInOutgoing>.makeStream()
        let id = state.openConnection(
            sid: sid, path: request.uri.path, query: request.uri.query, headers: headers, continuation: continuation)
        defer { state.closeConnection(id) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for await message in stream {
                    switch message {
                    case .text(let text): try await outbound.write(.text(text))
                    case .binary(let buffer): try await outbound.write(.binary(buffer))
                    case .textFragments(let parts):
                        for (position, part) in parts.enumerated() {
                            let frame = WebSocketFrame(
                                fin: position == parts.count - 1, opcode: position == 0 ? .text : .continuation, data: part)
                            try await outbound.write(.custom(frame))
                        }
                    case .close(let code, let reason):
                        try await outbound.close(WebSocketErrorCode(codeNumber: Int(code)), reason: reason)
                        return
                    }
                }
            }
            let maxSize = state.options.webSocketMaxFrameSize
            for try await message in inbound.messages(maxSize: maxSize) {
                switch message {
                case .text(let text): state.received(.text(text), on: id)
                case .binary(let buffer): state.received(.binary(Array(buffer.readableBytesView)), on: id)
                }
            }
            group.cancelAll()
        }
    }
}

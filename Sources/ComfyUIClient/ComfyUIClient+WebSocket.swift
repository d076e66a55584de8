import Foundation
import HTTPTypes
import Logging
import NIOCore
import Synchronization
import NIOWebSocket
import WSClient
import WSCore

extension ComfyUIClient {
    /// Opens `/ws?clientId=<clientID>` with the client's credential, runs `body` with the session, then closes it.
    ///
    /// Submit prompts with the same `clientID` to receive their execution events (B.2).
    /// - Throws: ``ComfyUIClientError/webSocketUpgradeFailed`` when the handshake is refused (e.g. 401), transport
    ///   errors as they come, and whatever `body` throws.
    public func withEvents<T: Sendable>(
        clientID: String, _ body: @escaping @Sendable (ComfyUIEventSession) async throws -> T
    ) async throws -> T {
        var configuration = WebSocketClientConfiguration()
        configuration.maxFrameSize = 64 << 20
        if case .bearer(let token) = credential, let name = HTTPField.Name("Authorization") {
            configuration.additionalHeaders[name] = "Bearer \(token)"
        }
        let scheme = baseURL.lowercased().hasPrefix("https") ? "wss" : "ws"
        let address = url("/ws?clientId=" + Self.queryValue(clientID), scheme: scheme)
        let result = ResultBox<T>()
        do {
            try await WebSocketClient.connect(url: address, configuration: configuration, logger: logger) { inbound, outbound, _ in
                let session = ComfyUIEventSession(inbound: inbound, outbound: outbound)
                result.set(try await body(session))
                try await outbound.close(.normalClosure, reason: nil)
            }
        } catch let error as WebSocketClientError where error == .webSocketUpgradeFailed {
            throw ComfyUIClientError.webSocketUpgradeFailed
        }
        guard let value = result.get() else { throw ComfyUIClientError.webSocketClosed }
        return value
    }
}

/// An open `/ws` connection: iterate ``events`` (once), optionally send the `feature_flags` frame first.
public struct ComfyUIEventSession: Sendable {
    /// The typed events, in arrival order; ends when the server closes the connection. Iterate it only once.
    public let events: ComfyUIEvents
    let outbound: WebSocketOutboundWriter

    init(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter) {
        events = ComfyUIEvents(inbound: inbound)
        self.outbound = outbound
    }

    /// Sends `{"type": "feature_flags", "data": flags}` (only the first frame of a connection counts, B.1).
    public func sendFeatureFlags(_ flags: [String: JSONValue]) async throws {
        let text = String(decoding: try JSONValue.object(["type": "feature_flags", "data": .object(flags)]).encoded(), as: UTF8.self)
        try await outbound.write(.text(text))
    }
}

/// The events of a ``ComfyUIEventSession``. Frames that are not ComfyUI events are skipped.
public struct ComfyUIEvents: AsyncSequence, Sendable {
    public typealias Element = ComfyUIEvent
    let inbound: WebSocketInboundStream

    /// Iterates the connection's messages.
    public struct AsyncIterator: AsyncIteratorProtocol {
        var messages: WebSocketInboundMessageStream.AsyncIterator

        /// The next event, nil when the connection closed.
        public mutating func next() async throws -> ComfyUIEvent? {
            while let message = try await messages.next() {
                switch message {
                case .text(let text): if let event = ComfyUIEvent(text: text) { return event }
                case .binary(let buffer): if let event = ComfyUIEvent(binary: Array(buffer.readableBytesView)) { return event }
                }
            }
            return nil
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(messages: inbound.messages(maxSize: 64 << 20).makeAsyncIterator())
    }
}

/// Carries the body's result out of the websocket handler.
final class ResultBox<T: Sendable>: Sendable {
    private let value = Mutex<T?>(nil)
    func set(_ newValue: T) { value.withLock { $0 = newValue } }
    func get() -> T? { value.withLock { $0 } }
}

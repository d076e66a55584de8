extension ComfyUIStandIn {
    /// ComfyUI's three file directories (`type` in `/view` and uploads).
    public enum FileType: String, Sendable, CaseIterable {
        case input, output, temp
    }

    /// One header line as received (name as sent, value as sent).
    public struct Header: Sendable, Equatable, CustomStringConvertible {
        public let name: String
        public let value: String
        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
        public var description: String { "\(name): \(value)" }
    }

    /// A request as the stand-in saw it, in arrival order.
    public struct RecordedRequest: Sendable {
        public let method: String
        public let path: String
        /// Raw query string (without `?`), nil when the target has none.
        public let query: String?
        public let headers: [Header]
        /// Bytes of body the stand-in received (read by the handler or drained).
        public let bodyByteCount: Int
        /// Status the stand-in answered with.
        public let status: Int

        /// All values of a header, case-insensitive name match.
        public func headerValues(_ name: String) -> [String] {
            headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
        }
    }

    /// A frame received from a websocket client (after reassembly of fragments).
    public enum RecordedFrame: Sendable, Equatable {
        case text(String)
        case binary([UInt8])

        public var byteCount: Int {
            switch self {
            case .text(let s): return s.utf8.count
            case .binary(let b): return b.count
            }
        }
    }

    /// A websocket connection accepted by the stand-in.
    public struct RecordedWebSocket: Sendable {
        /// The `sid` (the `clientId` query value or a generated uuid hex).
        public let sid: String
        public let path: String
        public let query: String?
        public let handshakeHeaders: [Header]
        /// Frames the client sent, in order.
        public let receivedFrames: [RecordedFrame]
        /// Whether the connection is still open.
        public let isOpen: Bool
        /// The client's `feature_flags` data if its first text frame negotiated them.
        public let clientFeatureFlags: StandInJSON?
    }

    /// Binary websocket event types (B.4).
    public enum BinaryEventType: UInt32, Sendable {
        case previewImage = 1
        case unencodedPreviewImage = 2
        case text = 3
        case previewImageWithMetadata = 4
    }
}

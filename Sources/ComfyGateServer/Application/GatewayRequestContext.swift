public import ComfyGateCore
public import Hummingbird
import NIOCore

/// The per-request context: Hummingbird's core storage plus who the caller is and where it connects from.
public struct GatewayRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The authenticated identity, set by ``AuthenticationMiddleware``.
    public var identity: Identity?
    /// The peer's IP address as seen on the socket (before any `X-Forwarded-For`).
    public let peerAddress: String?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.peerAddress = source.channel.remoteAddress?.ipAddress
    }

    /// Request bodies are streamed to ComfyUI, never collected; this only bounds the few routes that read a form.
    public var maxUploadSize: Int { 64 * 1024 }
}

public import ComfyGateCore
public import ComfyGatePolicy
public import Hummingbird
import NIOCore

/// The per-request context: Hummingbird's core storage plus who the caller is and where it connects from.
public struct GatewayRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The authenticated identity, set by ``AuthenticationMiddleware``.
    public var identity: Identity?
    /// How the request goes to ComfyUI, as the access policy decided it (set with ``identity``).
    public var plan: ForwardPlan?
    /// The Comfy API v2 route and reach, when the access policy sent the request to that door.
    public var v2Request: V2Request?
    /// The gateway page the policy decided this request is for.
    public var page: PageRoute?
    /// The peer's IP address as seen on the socket (before any `X-Forwarded-For`).
    public let peerAddress: String?
    /// The client's connection, for interim answers.
    let channel: any Channel
    /// The route class and user, for the access log and metrics.
    let trace = RequestTrace()

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.peerAddress = source.channel.remoteAddress?.ipAddress
        self.channel = source.channel
    }

    /// Lets a client that sent `Expect: 100-continue` send its body: call once the request may go on.
    func proceedIfExpected(_ request: Request) {
        guard request.headers[.expect]?.lowercased() == "100-continue" else { return }
        channel.triggerUserOutboundEvent(ExpectContinueHandler.Proceed(), promise: nil)
    }

    /// Request bodies are streamed to ComfyUI, never collected; this only bounds the few routes that read a form.
    public var maxUploadSize: Int { 64 * 1024 }
}

/// What kind of route a request took, as the gateway's metrics and access log name it: a small fixed set, so that
/// counting by it stays cheap and bounded whatever paths clients send.
public enum RouteClass: String, Sendable, CaseIterable {
    /// Sent to ComfyUI as anything else.
    case comfyui
    /// `POST /prompt`: a job.
    case prompt
    /// `GET /view`: a file.
    case view
    /// `POST /upload/*`
    case upload
    /// A websocket handshake.
    case websocket
    /// The Comfy API v2 door.
    case v2
    /// One of the gateway's pages.
    case page
    /// `/login` and `/logout`.
    case login
    /// `/healthz`, `/readyz`, `/api/v2/health`.
    case health
    /// Answered by the gateway from the policy alone (`GET /users`, `{}` for another's history item).
    case gateway
    /// The gateway's own static files.
    case `static`
    /// `GET /metrics`
    case metrics
    /// Refused: without a credential that is accepted, or by the policy.
    case refused

    /// The class of a request the access policy decided (`path` without its query).
    public init(_ decision: AccessDecision, path: String) {
        self =
            switch decision {
            case .gatewayRoute: Self(gatewayRoute: path)
            case .refuse: .refused
            case .answer: .gateway
            case .comfyAPIv2: .v2
            case .page: .page
            case .metrics: .metrics
            case .forward(let plan): Self(forwarding: plan, path: path)
            }
    }

    /// The class of one of ``AccessPolicy/isGatewayRoute(path:)``'s routes.
    public init(gatewayRoute path: String) {
        self =
            if path.hasPrefix(AccessPolicy.gatewayStaticPrefix) { .static }
            else if path.hasPrefix("/login") || path.hasPrefix("/logout") { .login }
            else { .health }
    }

    /// The class of a request sent on to ComfyUI (also for an admin, whose requests pass as sent).
    public init(forwarding plan: ForwardPlan, path: String) {
        var route = Substring(path)
        if route.hasPrefix("/api/") { route = route.dropFirst(4) }
        self =
            if plan.body == .prompt { .prompt }
            else if plan.answer == .webSocket || route == "/ws" { .websocket }
            else if route == "/view" { .view }
            else if route.hasPrefix("/upload/") { .upload }
            else { .comfyui }
    }
}

/// What the gateway does with a request, as the ``AccessPolicy`` decides it.
public enum AccessDecision: Sendable, Equatable {
    /// One of the gateway's own routes (sign-in, health): never proxied, answered by the gateway's routes.
    case gatewayRoute
    /// Refused: the status and the one-line reason the client gets as `{"error": …}`.
    case refuse(PolicyRefusal)
    /// Answered by the gateway without ComfyUI: status and JSON body.
    case answer(status: Int, json: String)
    /// Answered by the gateway's Comfy API v2 door, from its jobs and assets; never sent to ComfyUI as such.
    case comfyAPIv2(V2Request)
    /// One of the gateway's web pages (account, gallery, admin) or its extension's JSON; never sent to ComfyUI.
    case page(PageRoute)
    /// Sent on to ComfyUI as the plan says.
    case forward(ForwardPlan)
    /// `GET /metrics`: the gateway's metrics in Prometheus' text format; never sent to ComfyUI.
    case metrics
}

/// How a request goes to ComfyUI and how its answer comes back.
public struct ForwardPlan: Sendable, Equatable {
    /// What happens to the request body on its way.
    public enum Body: Sendable, Equatable {
        /// Streamed as sent.
        case asSent
        /// `POST /prompt`: owner marked, client id confined, and for non-admins the prompt checked and rewritten;
        /// then a job in the gateway's queue.
        case prompt
        /// `POST /upload/*` of a non-admin: the form's `subfolder` confined to the user's folder, as it streams.
        case upload
        /// `POST /queue`: `clear` and `delete` limited to a non-admin's own prompts; held jobs cancelled in the
        /// gateway, the rest asked of ComfyUI.
        case queueControl
        /// `POST /history`: the same for history, whose entries the gateway keeps.
        case historyControl
        /// `POST /interrupt` of a non-admin: only the caller's own running prompt.
        case interrupt
    }

    /// What happens to ComfyUI's answer on its way back.
    public enum Answer: Sendable, Equatable {
        /// Streamed as sent.
        case asSent
        /// `GET /queue`: ComfyUI's items and the jobs the gateway holds, the caller's own only for a non-admin.
        case queue
        /// `GET /history`: the caller's own jobs' entries (all for admins), from the gateway's store, paged.
        case history(maxItems: String?, offset: String?)
        /// `GET /history/{id}`: the job's entry if it is the caller's, `{}` otherwise, from the gateway's store.
        case historyItem(promptID: String)
        /// [newer] `GET /api/jobs`: the caller's own jobs (all for admins), paged by the gateway.
        case jobs(limit: String?, offset: String?)
        /// [newer] `GET /api/jobs/{id}`: the job if it is the caller's, ComfyUI's 404 otherwise.
        case job
        /// `GET /object_info*`: upload inputs learnt; for non-admins, file lists cut to their own files.
        case objectInfo
        /// A websocket: events about other users' prompts withheld, outputs recorded for `/view`.
        case webSocket
        /// `GET /extensions`: ComfyUI's list of front-end extensions, with the gateway's own added.
        case extensions
    }

    /// The path and query ComfyUI gets (the gateway's `token` parameter never goes on).
    public var target: String
    public var body: Body
    public var answer: Answer

    public init(target: String, body: Body = .asSent, answer: Answer = .asSent) {
        self.target = target
        self.body = body
        self.answer = answer
    }

    /// Whether bytes pass unchanged both ways, so the fast path may carry a bodiless request.
    public var passesAsSent: Bool { body == .asSent && answer == .asSent }
}

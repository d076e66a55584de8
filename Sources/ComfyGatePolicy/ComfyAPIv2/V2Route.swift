/// A route of the Comfy API v2 door (`/api/v2/…`), which the gateway answers itself from its jobs and assets.
public enum V2Route: Sendable, Equatable {
    /// `POST /api/v2/jobs`
    case submitJob
    /// `GET /api/v2/jobs`
    case listJobs
    /// `GET /api/v2/jobs/{id}`
    case job(id: String)
    /// `GET /api/v2/jobs/{id}/workflow`
    case jobWorkflow(id: String)
    /// `POST /api/v2/jobs/{id}/cancel`
    case cancelJob(id: String)
    /// `GET /api/v2/jobs/{id}/events` (server-sent events)
    case jobEvents(id: String)
    /// `POST /api/v2/assets` (multipart upload)
    case uploadAsset
    /// `POST /api/v2/assets/from-hash`
    case assetFromHash
    /// `HEAD /api/v2/assets/by-hash/{hash}`
    case assetByHash(hash: String)
    /// `GET /api/v2/assets/{id}`
    case asset(id: String)
    /// `GET|HEAD /api/v2/assets/{id}/content`
    case assetContent(id: String)
    /// `DELETE /api/v2/assets/{id}`
    case deleteAsset(id: String)

    /// The path prefix of the door; `/api/v2/health` under it is one of the gateway's own routes.
    public static let prefix = "/api/v2"

    /// Whether a raw request path lies under the door.
    public static func isUnderDoor(path: String) -> Bool {
        path == prefix || path.hasPrefix(prefix + "/")
    }

    /// The route of a method and its path's parts after `/api/v2`; nil for anything the door does not serve.
    public init?(method: String, parts: ArraySlice<Substring>) {
        let parts = Array(parts.map(String.init))
        switch (method, parts.count, parts.first ?? "") {
        case ("POST", 1, "jobs"): self = .submitJob
        case ("GET", 1, "jobs"), ("HEAD", 1, "jobs"): self = .listJobs
        case ("GET", 2, "jobs"), ("HEAD", 2, "jobs"): self = .job(id: parts[1])
        case ("GET", 3, "jobs") where parts[2] == "workflow": self = .jobWorkflow(id: parts[1])
        case ("POST", 3, "jobs") where parts[2] == "cancel": self = .cancelJob(id: parts[1])
        case ("GET", 3, "jobs") where parts[2] == "events": self = .jobEvents(id: parts[1])
        case ("POST", 1, "assets"): self = .uploadAsset
        case ("POST", 2, "assets") where parts[1] == "from-hash": self = .assetFromHash
        case ("HEAD", 3, "assets") where parts[1] == "by-hash": self = .assetByHash(hash: parts[2])
        case ("GET", 2, "assets"), ("HEAD", 2, "assets"): self = .asset(id: parts[1])
        case ("GET", 3, "assets") where parts[2] == "content", ("HEAD", 3, "assets") where parts[2] == "content":
            self = .assetContent(id: parts[1])
        case ("DELETE", 2, "assets"): self = .deleteAsset(id: parts[1])
        default: return nil
        }
        if case .job(let id) = self, id.isEmpty { return nil }
    }

    /// Whether the route changes anything (a viewer may only read).
    public var changesState: Bool {
        switch self {
        case .submitJob, .cancelJob, .uploadAsset, .assetFromHash, .deleteAsset: true
        default: false
        }
    }
}

/// A request for the Comfy API v2 door, as the policy allows it.
public struct V2Request: Sendable, Equatable {
    public var route: V2Route
    /// Whether the caller may reach every user's jobs and assets by id (admins); lists always show the caller's own.
    public var reachesEveryone: Bool

    public init(route: V2Route, reachesEveryone: Bool) {
        self.route = route
        self.reachesEveryone = reachesEveryone
    }
}

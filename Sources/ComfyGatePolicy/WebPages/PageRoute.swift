/// The gateway's own web pages and the small JSON routes its ComfyUI extension reads: never forwarded to ComfyUI.
/// Every one needs a signed-in caller; the `/admin` ones an admin.
public enum PageRoute: Sendable, Equatable {
    /// `GET /account`: who you are, your tokens, sessions, password and usage.
    case account
    /// `POST /account/tokens`: a new API token of your own, shown once.
    case createToken
    /// `POST /account/tokens/{id}/revoke`
    case revokeOwnToken(id: String)
    /// `POST /account/password`
    case changePassword
    /// `POST /account/sessions/end-others`: signs out every other browser.
    case endOtherSessions
    /// `GET /gallery`: your own outputs, newest first (`?before=` pages).
    case gallery
    /// `POST /gallery/{job}/delete`: takes a job out of your gallery and history.
    case deleteFromGallery(jobID: String)
    /// `GET /comfygate/me`: the signed-in user, as JSON, for the extension inside ComfyUI.
    case me
    /// `GET /comfygate/jobs/{id}/workflow`: a job's graph in API format, for "open in ComfyUI".
    case jobWorkflow(jobID: String)
    /// `GET /admin`: users, tokens, the queue and the audit trail.
    case admin
    /// `POST /admin/users`
    case addUser
    /// `POST /admin/users/{name}`: change role, disable, enable or reset the password (the form's `action`).
    case changeUser(name: String)
    /// `POST /admin/tokens/{id}/revoke`
    case revokeToken(id: String)
    /// `POST /admin/tokens/import`: an existing bcrypt hash as a token of a user.
    case importToken
    /// `POST /admin/jobs/{id}/cancel`
    case cancelJob(id: String)
    /// `POST /admin/backends/{name}/drain` or `/enable`: take a backend out of dispatch, or back.
    case setBackendDrained(name: String, drained: Bool)

    /// The first segments of the paths the pages live under.
    static let roots: Set<Substring> = ["account", "gallery", "admin", "comfygate"]

    /// The page a method and path (its parts after the leading `/`) ask for: ``Match/outside`` for paths that are not
    /// the pages', ``Match/unknown`` for a page path nothing serves with that method.
    public static func match(method: String, parts: [Substring]) -> Match {
        guard let root = parts.first, roots.contains(root) else { return .outside }
        let rest = Array(parts.dropFirst())
        let route: PageRoute? =
            switch (method, root, rest.count) {
            case ("GET", "account", 0): .account
            case ("POST", "account", 1) where rest[0] == "tokens": .createToken
            case ("POST", "account", 3) where rest[0] == "tokens" && rest[2] == "revoke": .revokeOwnToken(id: String(rest[1]))
            case ("POST", "account", 1) where rest[0] == "password": .changePassword
            case ("POST", "account", 2) where rest == ["sessions", "end-others"]: .endOtherSessions
            case ("GET", "gallery", 0): .gallery
            case ("POST", "gallery", 2) where rest[1] == "delete": .deleteFromGallery(jobID: String(rest[0]))
            case ("GET", "comfygate", 1) where rest[0] == "me": .me
            case ("GET", "comfygate", 3) where rest[0] == "jobs" && rest[2] == "workflow": .jobWorkflow(jobID: String(rest[1]))
            case ("GET", "admin", 0): .admin
            case ("POST", "admin", 1) where rest[0] == "users": .addUser
            case ("POST", "admin", 2) where rest[0] == "users": .changeUser(name: String(rest[1]))
            case ("POST", "admin", 3) where rest[0] == "tokens" && rest[2] == "revoke": .revokeToken(id: String(rest[1]))
            case ("POST", "admin", 2) where rest == ["tokens", "import"]: .importToken
            case ("POST", "admin", 3) where rest[0] == "jobs" && rest[2] == "cancel": .cancelJob(id: String(rest[1]))
            case ("POST", "admin", 3) where rest[0] == "backends" && ["drain", "enable"].contains(rest[2]):
                .setBackendDrained(name: String(rest[1]), drained: rest[2] == "drain")
            default: nil
            }
        return route.map(Match.route) ?? .unknown
    }

    /// What ``match(method:parts:)`` found.
    public enum Match: Sendable, Equatable {
        case outside
        case unknown
        case route(PageRoute)
    }

    /// Only admins may use it.
    public var isAdminOnly: Bool {
        switch self {
        case .admin, .addUser, .changeUser, .revokeToken, .importToken, .cancelJob, .setBackendDrained: true
        default: false
        }
    }

    /// A form post that changes something: it must carry the session's anti-forgery token.
    public var isFormPost: Bool {
        switch self {
        case .account, .gallery, .me, .jobWorkflow, .admin: false
        default: true
        }
    }
}

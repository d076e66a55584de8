import ComfyGateCore
import ComfyGateJobs
import ComfyGatePolicy
import ComfyGateRequestParsing
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// Serves the pages the access policy sent here (``PageRoute``): the account, the gallery and the admin page, their
/// forms, and the JSON the extension inside ComfyUI reads. A form is accepted only from a browser session and only
/// with that session's anti-forgery token; after it, the browser is sent to the page again (post, redirect, get),
/// except where a secret is shown once (a new token, a one-time password), which is shown in the answer itself.
struct WebPages: RouterMiddleware {
    typealias Context = GatewayRequestContext

    let renderer: PageRenderer
    let store: any GatewayStore
    let accounts: AccountService
    let sessions: SessionManager
    let cookie: SessionCookie
    /// bcrypt for checking the current password when it changes.
    let loginHasher: PasswordHasher
    let jobs: JobQueue
    let pool: BackendPool
    let configuration: GatewayConfiguration
    let clientAddress: ClientAddressResolver

    /// The largest form read (an imported hash, a password change).
    static let maxForm = 16 * 1024

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let page = context.page, let identity = context.identity else { return try await next(request, context) }
        let cookieValue = PresentedCredential.cookie(named: cookie.name, in: request.headers)
        let viewer = PageRenderer.Viewer(identity: identity, cookieValue: identity.credential == .session ? cookieValue : nil)
        var form: [String: String] = [:]
        if page.isFormPost {
            guard let cookieValue = viewer.cookieValue else {
                return refused(viewer, .forbidden, "Forms need a browser session", "Sign in at /login; scripts use the command line.")
            }
            context.proceedIfExpected(request)
            form = LoginController.parseForm(String(buffer: try await request.body.collect(upTo: Self.maxForm)))
            guard SessionManager.formTokenMatches(form["csrf"] ?? "", cookieValue: cookieValue) else {
                return refused(viewer, .forbidden, "This form has expired", "Reload the page and send it again.")
            }
        }
        do {
            return try await serve(page, request: request, context: context, viewer: viewer, form: form)
        } catch let refusal as PageRefusal {
            return refused(viewer, refusal.status, refusal.heading, refusal.message)
        }
    }

    private func serve(_ page: PageRoute, request: Request, context: Context, viewer: PageRenderer.Viewer, form: [String: String])
        async throws -> Response
    {
        let query = request.uri.queryParameters
        switch page {
        case .account:
            return try await account(viewer, notice: Self.notices[query["notice"].map(String.init) ?? ""])
        case .createToken:
            return try await createToken(viewer, form: form, request: request)
        case .revokeOwnToken(let id):
            guard let token = try await store.token(id: id), token.userID == viewer.identity.userID else {
                throw PageRefusal(.notFound, "No such token", "It is not one of your tokens.")
            }
            try await accounts.revokeToken(id: id)
            return GatewayResponse.seeOther("/account?notice=token-revoked#tokens")
        case .changePassword:
            return try await changePassword(viewer, form: form, request: request, context: context)
        case .endOtherSessions:
            if let cookieValue = viewer.cookieValue {
                try await sessions.closeOthers(userID: viewer.identity.userID, keeping: cookieValue)
            }
            return GatewayResponse.seeOther("/account?notice=signed-out-elsewhere#sessions")
        case .gallery:
            return try await gallery(viewer, before: query["before"].map(String.init), notice: Self.notices[query["notice"].map(String.init) ?? ""])
        case .deleteFromGallery(let jobID):
            try await jobs.forgetHistory([jobID], by: viewer.identity.caller)
            return GatewayResponse.seeOther("/gallery?notice=deleted")
        case .me:
            return GatewayResponse.json(.ok, ["version": 1, "user": viewer.identity.userName, "role": viewer.identity.role.rawValue])
        case .jobWorkflow(let jobID):
            guard let job = try await store.job(id: jobID), job.userID == viewer.identity.userID || viewer.identity.role == .admin else {
                return GatewayResponse.error(.notFound, "Job not found")
            }
            return GatewayResponse.rawJSON(.ok, job.workflow)
        case .admin:
            return try await AdminPage(pages: self).render(viewer, query: query, notice: Self.notices[query["notice"].map(String.init) ?? ""])
        case .addUser, .changeUser, .revokeToken, .importToken, .cancelJob, .setBackendDrained:
            return try await AdminPage(pages: self).act(page, viewer: viewer, form: form)
        }
    }

    /// The notices a page shows after a form, by the code its redirect carries: fixed texts, never the query's.
    static let notices: [String: String] = [
        "token-revoked": "The token was revoked: it stopped working at once.",
        "password-changed": "Your password was changed; your other browsers were signed out.",
        "signed-out-elsewhere": "Every other browser was signed out.",
        "deleted": "Removed from your gallery and your history.",
        "user-updated": "The user was updated.",
        "token-imported": "The hash was imported: its raw token now works.",
        "job-cancelled": "The job was cancelled.",
        "backend-drained": "The backend was drained: it finishes its running jobs and takes no new ones.",
        "backend-enabled": "The backend takes jobs again.",
    ]

    func refused(_ viewer: PageRenderer.Viewer, _ status: HTTPResponse.Status, _ heading: String, _ message: String) -> Response {
        renderer.page("refused", for: viewer, status: status, ["heading": heading, "message": message, "back": "/account"])
    }

    // MARK: Account

    func account(_ viewer: PageRenderer.Viewer, notice: String? = nil, problem: String? = nil, newToken: [String: Any]? = nil,
        status: HTTPResponse.Status = .ok) async throws -> Response
    {
        let identity = viewer.identity
        guard let user = try await store.user(id: identity.userID) else { throw PageRefusal(.notFound, "No such user", "") }
        let now = Date()
        let tokens = try await store.tokens(userID: user.id).sorted { $0.createdAt > $1.createdAt }
        let current = viewer.cookieValue.map(TokenFormat.digest)
        let openSessions = try await sessions.sessions(userID: user.id)
        let day = now.addingTimeInterval(-86_400)
        let jobsToday = try await store.countJobs(userID: user.id, states: nil, createdAfter: day)
        let waiting = try await store.countJobs(userID: user.id, states: [.queued, .running, .canceling], createdAfter: nil)
        let gpuToday = try await store.gpuSeconds(userID: user.id, completedAfter: day)[user.id] ?? 0
        let quota = try await store.userQuota(userID: user.id)
        let limits = (quota?.limits ?? QuotaLimits()).merging(over: configuration.quotas[user.role] ?? QuotaLimits())
        func limit(_ value: Double?) -> String { value.map { $0 == $0.rounded() ? String(Int($0)) : String(format: "%.1f", $0) } ?? "none" }
        var values: [String: Any] = [
            "createdAt": PageRenderer.date(user.createdAt), "role": user.role.rawValue,
            "hasTokens": !tokens.isEmpty,
            "tokens": tokens.map { token -> [String: Any] in
                [
                    "id": token.id, "name": token.name, "kind": token.kindName, "state": token.state(at: now),
                    "created": PageRenderer.date(token.createdAt), "expires": PageRenderer.date(token.expiresAt),
                    "lastUsed": PageRenderer.date(token.lastUsedAt), "active": token.isUsable(at: now),
                ]
            },
            "sessions": openSessions.map { session -> [String: Any] in
                [
                    "created": PageRenderer.date(session.createdAt), "lastSeen": PageRenderer.date(session.lastSeenAt),
                    "address": session.clientAddress ?? "unknown", "agent": Self.browserName(session.userAgent),
                    "current": session.idDigest == current,
                ]
            },
            "hasOtherSessions": openSessions.contains { $0.idDigest != current },
            "canChangePassword": user.passwordHash != nil,
            "usage": [
                ["what": "Jobs submitted", "used": String(jobsToday), "limit": limit(limits.jobsPerDay.map(Double.init))],
                ["what": "GPU seconds", "used": String(format: "%.1f", gpuToday), "limit": limit(limits.gpuSecondsPerDay)],
                ["what": "Jobs waiting or running now", "used": String(waiting), "limit": limit(limits.maxWaitingJobs.map(Double.init))],
                ["what": "Largest image (pixels)", "used": "—", "limit": limit(limits.maxImageArea.map(Double.init))],
            ],
            "weight": limit(quota?.weight ?? 1),
        ]
        values["notice"] = notice
        values["problem"] = problem
        values["newToken"] = newToken
        return renderer.page("account", for: viewer, current: "Account", status: status, values)
    }

    private func createToken(_ viewer: PageRenderer.Viewer, form: [String: String], request: Request) async throws -> Response {
        let name = (form["name"] ?? "").trimmingCharacters(in: .whitespaces)
        let expiry = form["expires"] ?? ""
        let lifetime: TimeInterval?
        if expiry.isEmpty {
            lifetime = nil
        } else if let seconds = DurationParser.seconds(expiry), seconds > 0 {
            lifetime = seconds
        } else {
            return try await account(viewer, problem: "The expiry '\(expiry)' is not a duration.", status: .badRequest)
        }
        do {
            let (record, token) = try await accounts.createToken(userName: viewer.identity.userName, name: name, expiresIn: lifetime)
            return try await account(viewer, newToken: ["label": record.name, "value": token, "origin": origin(of: request)])
        } catch let error as IdentityError {
            return try await account(viewer, problem: error.description, status: .badRequest)
        }
    }

    private func changePassword(_ viewer: PageRenderer.Viewer, form: [String: String], request: Request, context: Context) async throws
        -> Response
    {
        guard let user = try await store.user(id: viewer.identity.userID), let stored = user.passwordHash,
            let hash = try? BcryptHash(parsing: stored)
        else { throw PageRefusal(.badRequest, "No password to change", "This account signs in with tokens only.") }
        guard try await loginHasher.verify(form["current"] ?? "", against: hash) else {
            return try await account(viewer, problem: "The current password is wrong.", status: .badRequest)
        }
        let new = form["new"] ?? ""
        guard new == form["confirm"] else {
            return try await account(viewer, problem: "The two new passwords differ.", status: .badRequest)
        }
        do {
            try await accounts.setPassword(userName: user.name, password: new)
        } catch let error as AccountError {
            return try await account(viewer, problem: error.description, status: .badRequest)
        }
        // Changing it signed out every session, this one too: this browser gets a new one.
        let fresh = try await sessions.open(
            for: user, clientAddress: clientAddress.resolve(request, peer: context.peerAddress), userAgent: request.headers[.userAgent])
        return GatewayResponse.seeOther("/account?notice=password-changed", headers: [.setCookie: cookie.setting(fresh)])
    }

    /// The origin scripts reach the gateway at: `public_url` when set, else the one this page was asked on.
    func origin(of request: Request) -> String {
        if let publicURL = configuration.publicURL {
            return publicURL.absoluteString.hasSuffix("/") ? String(publicURL.absoluteString.dropLast()) : publicURL.absoluteString
        }
        return "http://" + (request.head.authority ?? "127.0.0.1:\(configuration.listenPort)")
    }

    /// A short name for a browser's `User-Agent`.
    static func browserName(_ agent: String?) -> String {
        guard let agent, !agent.isEmpty else { return "unknown" }
        for (marker, name) in [("Edg/", "Edge"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"), ("Chromium/", "Chromium"), ("Safari/", "Safari"),
            ("curl/", "curl")] where agent.contains(marker) {
            let system = ["Windows", "Android", "iPhone", "Mac OS", "Linux"].first { agent.contains($0) }
            return name + (system.map { " on " + ($0 == "Mac OS" ? "macOS" : $0) } ?? "")
        }
        return String(agent.prefix(40))
    }

    // MARK: Gallery

    static let galleryPage = 24

    private func gallery(_ viewer: PageRenderer.Viewer, before: String?, notice: String?) async throws -> Response {
        let cursor = before.flatMap { Double($0) }.map { Date(timeIntervalSince1970: $0) }
        let found = try await store.jobs(
            userID: viewer.identity.userID, states: [.succeeded], limit: Self.galleryPage, createdBefore: cursor)
        var items: [[String: Any]] = []
        for job in found where job.historyEntry != nil {
            let facts = WorkflowFacts(workflow: job.workflow)
            for output in job.outputs where output.fileType == .output {
                var query = "filename=" + Self.encode(output.fileName) + "&type=output"
                if !output.subfolder.isEmpty { query += "&subfolder=" + Self.encode(output.subfolder) }
                var item: [String: Any] = [
                    "job": job.id, "fileName": output.fileName, "viewURL": "/view?" + query, "previewURL": "/view?" + query + "&preview=webp;75",
                    "image": output.mediaKind == .image, "when": PageRenderer.date(job.completedAt ?? job.createdAt),
                ]
                if let prompt = facts.prompt { item["prompt"] = prompt }
                if let parameters = facts.parameters { item["parameters"] = parameters }
                items.append(item)
            }
        }
        var values: [String: Any] = ["items": items]
        if found.count == Self.galleryPage, let last = found.last {
            values["older"] = String(format: "%.6f", last.createdAt.timeIntervalSince1970)
        }
        values["notice"] = notice
        return renderer.page("gallery", for: viewer, current: "Gallery", values)
    }

    static func encode(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .urlQueryValueAllowed) ?? text
    }
}

/// A page's refusal: the status and what the browser shows.
struct PageRefusal: Error {
    let status: HTTPResponse.Status
    let heading: String
    let message: String

    init(_ status: HTTPResponse.Status, _ heading: String, _ message: String) {
        self.status = status
        self.heading = heading
        self.message = message
    }
}

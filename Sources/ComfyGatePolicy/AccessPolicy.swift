import ComfyGateRequestParsing

/// Who may do what through the gateway: one decision per request, asked by every request path (the
/// event-loop fast path, the application path and the websocket upgrade), which then only carry bytes.
///
/// Admins see and do everything, as on a ComfyUI of their own. Everyone else sees and touches only their own
/// work: their prompts, their files, their live events.
public struct AccessPolicy: Sendable {
    public let rules: PolicyRules
    public let ownership: OwnershipIndex
    /// Whether the gateway keeps metrics: when not, `/metrics` is not found.
    public let servesMetrics: Bool

    public init(rules: PolicyRules = PolicyRules(), ownership: OwnershipIndex = OwnershipIndex(), servesMetrics: Bool = true) {
        self.rules = rules
        self.ownership = ownership
        self.servesMetrics = servesMetrics
    }

    /// The gateway's metrics, for admins and the Prometheus scraper (``Caller/Role/scraper``); never ComfyUI's.
    public static let metricsPath = "/metrics"

    /// Routes the gateway answers itself, before any credential is asked for.
    public static let gatewayRoutes: Set<String> = ["/login", "/logout", "/healthz", "/readyz", "/api/v2/health"]

    /// The folder of the gateway's own static files (stylesheet, scripts), served to anyone: they hold no secret,
    /// and ComfyUI's page loads the gateway's extension from there.
    public static let gatewayStaticPrefix = "/comfygate/static/"

    /// Routes under which only admins may go: ComfyUI's internal routes (logs, folder paths, file lists) and
    /// ComfyUI-Manager's, which install code.
    static let adminOnlyRoutes = ["/internal", "/manager", "/customnode", "/snapshot", "/externalmodel"]

    /// Files of ComfyUI's front end that browsers fetch without credentials — the web app manifest (a `<link
    /// rel="manifest">` is fetched without cookies) and the favicon — passed to anyone, read-only: ComfyUI's own
    /// files, never a user's.
    public static func isPublicFrontEndFile(method: String, path: String) -> Bool {
        guard method == "GET" || method == "HEAD" else { return false }
        if path == "/favicon.ico" || path == "/assets/favicon.ico" { return true }
        guard path.hasPrefix("/assets/manifest-"), path.hasSuffix(".json") else { return false }
        let name = path.dropFirst("/assets/manifest-".count).dropLast(".json".count)
        return !name.isEmpty && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
    }

    /// Whether a raw path is one of the gateway's own routes (checked before authentication).
    public static func isGatewayRoute(path: String) -> Bool {
        if path.hasPrefix(gatewayStaticPrefix), !path.contains("/.."), !path.contains("%") { return true }
        var route = Substring(path)
        while route.count > 1, route.hasSuffix("/") { route.removeLast() }
        return gatewayRoutes.contains(String(route))
    }

    /// The decision for a request from `caller`.
    public func decide(_ request: RequestFacts, caller: Caller) -> AccessDecision {
        if Self.isGatewayRoute(path: request.path) { return .gatewayRoute }
        if request.path == Self.metricsPath { return decideMetrics(request, caller: caller) }
        if caller.role == .scraper { return .refuse(.forbidden("the scrape token reads \(Self.metricsPath) only")) }
        guard let route = RoutePath(path: request.path) else {
            return .refuse(.badRequest("the path holds '.' or '..' segments, a backslash or bad percent-encoding"))
        }
        if let pattern = rules.deniedPaths.first(where: { $0.matches(route) }) {
            return .refuse(.forbidden("\(route.value) is closed on this gateway (policy: \(pattern))"))
        }
        if V2Route.isUnderDoor(path: request.path) { return decideV2(request, route: route, caller: caller) }
        // The pages live at the root only: `/api/account` is ComfyUI's business (a 404 there).
        switch request.path.hasPrefix("/api/") ? .outside : PageRoute.match(method: request.method, parts: route.parts) {
        case .route(let page):
            if page.isAdminOnly, !caller.isAdmin { return .refuse(.forbidden("the admin pages are for admins")) }
            if request.isWebSocket { return .refuse(.badRequest("\(request.path) is a page, not a websocket")) }
            return .page(page)
        case .unknown:
            return .refuse(.notFound("\(request.path) is not one of the gateway's pages"))
        case .outside:
            break
        }
        let isRead = ["GET", "HEAD", "OPTIONS"].contains(request.method)
        if caller.role == .viewer, !isRead {
            return .refuse(.forbidden("role viewer may not \(request.method)"))
        }
        if !caller.isAdmin, let reason = adminOnlyReason(route, method: request.method) {
            return .refuse(.forbidden("\(reason) is for admins"))
        }
        let target = Self.target(path: request.path, query: request.query, removing: ["token"])

        switch (request.method, route.parts.first ?? "") {
        case ("GET", "ws") where request.isWebSocket && route.parts.count == 1:
            let sent = request.queryValue("clientId").flatMap { $0.isEmpty ? nil : $0 } ?? Self.randomHex()
            let query = [request.query.flatMap { QueryString.removing("token", from: $0) }.flatMap { QueryString.removing("clientId", from: $0) },
                "clientId=" + Self.percentEncode(caller.space.clientID(sent))].compactMap { $0 }.joined(separator: "&")
            return .forward(ForwardPlan(target: request.path + "?" + query, answer: .webSocket))
        case ("GET", "users") where route.parts.count == 1:
            // The front end then shows no user picker; ComfyUI's own users (--multi-user) are the gateway's business.
            return .answer(status: 200, json: #"{"storage":"server","migrated":true}"#)
        case ("POST", "prompt") where route.parts.count == 1:
            return .forward(ForwardPlan(target: target, body: .prompt))
        case ("GET", "history") where route.parts.count == 1:
            let paging = Self.target(path: request.path, query: request.query, removing: ["token", "max_items", "offset"])
            return .forward(ForwardPlan(
                target: paging, answer: .history(maxItems: request.queryValue("max_items"), offset: request.queryValue("offset"))
            ))
        case ("GET", "object_info"):
            return .forward(ForwardPlan(target: target, answer: .objectInfo))
        case ("GET", "extensions") where route.parts.count == 1:
            return .forward(ForwardPlan(target: target, answer: .extensions))
        case ("GET", "queue") where route.parts.count == 1:
            return .forward(ForwardPlan(target: target, answer: .queue))
        case ("GET", "history") where route.parts.count == 2:
            let promptID = String(route.parts[1])
            if !caller.isAdmin, let owner = ownership.owner(ofPrompt: promptID), owner != caller.userID {
                return .answer(status: 200, json: "{}")
            }
            return .forward(ForwardPlan(target: target, answer: .historyItem(promptID: promptID)))
        case ("POST", "queue") where route.parts.count == 1:
            return .forward(ForwardPlan(target: target, body: .queueControl))
        case ("POST", "history") where route.parts.count == 1:
            return .forward(ForwardPlan(target: target, body: .historyControl))
        default:
            break
        }
        if caller.isAdmin { return .forward(ForwardPlan(target: target)) }
        if let jobs = Self.jobsRoute(route) { return decideJobs(request, jobs: jobs, caller: caller, target: target) }

        switch (request.method, route.parts.first ?? "") {
        case ("POST", "interrupt") where route.parts.count == 1:
            return .forward(ForwardPlan(target: target, body: .interrupt))
        case ("POST", "upload") where route.parts.count == 2:
            return .forward(ForwardPlan(target: target, body: .upload))
        case ("GET", "view") where route.parts.count == 1, ("HEAD", "view") where route.parts.count == 1:
            if let refusal = viewRefusal(request, caller: caller) { return .refuse(refusal) }
            return .forward(ForwardPlan(target: target))
        default:
            return .forward(ForwardPlan(target: target))
        }
    }

    /// `/metrics`: read by admins and the scraper, when the gateway keeps metrics.
    private func decideMetrics(_ request: RequestFacts, caller: Caller) -> AccessDecision {
        guard servesMetrics else { return .refuse(.notFound("metrics are turned off on this gateway")) }
        guard request.method == "GET" || request.method == "HEAD", !request.isWebSocket else {
            return .refuse(PolicyRefusal(status: 405, message: "\(request.method) is not served on \(Self.metricsPath)"))
        }
        guard caller.isAdmin || caller.role == .scraper else {
            return .refuse(.forbidden("the metrics are for admins and the metrics scraper"))
        }
        return .metrics
    }

    /// A Comfy API v2 request: answered by the gateway from the caller's own jobs and assets (anyone's by id for an
    /// admin); a viewer only reads.
    private func decideV2(_ request: RequestFacts, route: RoutePath, caller: Caller) -> AccessDecision {
        let parts = route.parts.dropFirst()
        guard let v2 = V2Route(method: request.method, parts: parts) else {
            let served = ["GET", "HEAD", "POST", "DELETE"].contains { V2Route(method: $0, parts: parts) != nil }
            return served
                ? .refuse(PolicyRefusal(status: 405, message: "\(request.method) is not served on \(request.path)"))
                : .refuse(.notFound("\(request.path) is not a Comfy API v2 route"))
        }
        if caller.role == .viewer, v2.changesState {
            return .refuse(.forbidden("role viewer may not \(request.method)"))
        }
        return .comfyAPIv2(V2Request(route: v2, reachesEveryone: caller.isAdmin))
    }

    /// The parts after `jobs` of a [newer] jobs route: ComfyUI declares them as `/api/jobs…`, so they are served at
    /// `/api/jobs…` and `/api/api/jobs…`, folded here to `/jobs…` and `/api/jobs…`.
    static func jobsRoute(_ route: RoutePath) -> ArraySlice<Substring>? {
        let parts = route.parts.first == "api" ? route.parts.dropFirst() : route.parts[...]
        return parts.first == "jobs" ? parts.dropFirst() : nil
    }

    /// A non-admin's jobs request: lists cut to their own jobs, and only their own jobs looked at or cancelled.
    private func decideJobs(_ request: RequestFacts, jobs: ArraySlice<Substring>, caller: Caller, target: String) -> AccessDecision {
        let notFound = AccessDecision.refuse(.notFound("Job not found"))
        switch (request.method, jobs.count) {
        case ("GET", 0):
            let paging = Self.target(path: request.path, query: request.query, removing: ["token", "limit", "offset"])
            return .forward(ForwardPlan(target: paging, answer: .jobs(limit: request.queryValue("limit"), offset: request.queryValue("offset"))))
        case ("GET", 1):
            if let owner = ownership.owner(ofPrompt: String(jobs[jobs.startIndex])), owner != caller.userID { return notFound }
            return .forward(ForwardPlan(target: target, answer: .job))
        case ("POST", 2) where jobs.last == "cancel":
            return ownership.owner(ofPrompt: String(jobs[jobs.startIndex])) == caller.userID ? .forward(ForwardPlan(target: target)) : notFound
        case ("POST", 1) where jobs.last == "cancel":
            return .refuse(.forbidden("cancel your jobs one at a time (POST /api/jobs/{id}/cancel)"))
        default:
            return .forward(ForwardPlan(target: target))
        }
    }

    /// Why a route is for admins only, or nil.
    private func adminOnlyReason(_ route: RoutePath, method: String) -> String? {
        if let prefix = Self.adminOnlyRoutes.first(where: { route.isUnder($0) }) { return prefix + "/*" }
        if method == "POST", route.value == "/free" || route.value == "/users" { return "POST " + route.value }
        if let pattern = rules.adminOnlyPaths.first(where: { $0.matches(route) }) { return "\(pattern) (policy)" }
        return nil
    }

    /// `GET /view` serves a non-admin only files under their own folder or listed in their own prompts' outputs.
    private func viewRefusal(_ request: RequestFacts, caller: Caller) -> PolicyRefusal? {
        guard var name = request.queryValue("filename") else { return nil }  // ComfyUI answers 404 itself
        var type = request.queryValue("type") ?? "output"
        for tree in ["input", "output", "temp"] where name.hasSuffix(" [\(tree)]") {
            name.removeLast(tree.count + 3)
            type = tree
        }
        let refusal = PolicyRefusal.forbidden("\(name) is not one of your files")
        guard ["input", "output", "temp"].contains(type), !name.hasPrefix("blake3:") else { return refusal }
        guard let subfolder = FolderPath.normalize(request.queryValue("subfolder") ?? "") else { return refusal }
        // ComfyUI keeps only the last component of `filename`.
        let baseName = name.split(separator: "/", omittingEmptySubsequences: false).last.map(String.init) ?? name
        if caller.space.contains(folder: subfolder) { return nil }
        let file = OwnershipIndex.FileReference(type: type, subfolder: subfolder, name: baseName)
        return ownership.owns(file, userID: caller.userID) ? nil : refusal
    }

    /// A path and its query without some parameters, every other byte as sent.
    static func target(path: String, query: String?, removing names: [String]) -> String {
        var kept = query
        for name in names { kept = kept.flatMap { QueryString.removing(name, from: $0) } }
        return kept.map { path + "?" + $0 } ?? path
    }

    /// Percent-encodes everything but RFC 3986's unreserved characters.
    static func percentEncode(_ text: String) -> String {
        var encoded = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                encoded.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                encoded += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return encoded
    }

    /// 32 random hex digits, like the client ids ComfyUI makes.
    static func randomHex() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<2).map { _ in String(generator.next() as UInt64, radix: 16).leftPadded(to: 16) }.joined()
    }
}

/// Relative folder paths as ComfyUI's `os.path.normpath` sees them.
public enum FolderPath {
    /// `a/./b//c` → `a/b/c`; `a/../b` → `b`; nil for an absolute path, a backslash or one that climbs out.
    public static func normalize(_ path: String) -> String? {
        guard !path.hasPrefix("/"), !path.contains("\\") else { return nil }
        var parts: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) where part != "." {
            if part == ".." {
                guard !parts.isEmpty else { return nil }
                parts.removeLast()
            } else {
                parts.append(part)
            }
        }
        return parts.joined(separator: "/")
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}

import ComfyGateCore
import ComfyGatePolicy
import Foundation
import HTTPTypes
import Hummingbird

/// `/admin`: users, every token, the queue and the audit trail, and the forms that change them.
struct AdminPage {
    let pages: WebPages

    static let auditPage = 50
    /// The audit events read to filter from: the newest this many.
    static let auditWindow = 5000

    func render(
        _ viewer: PageRenderer.Viewer, query: Parameters? = nil, notice: String? = nil, problem: String? = nil,
        oneTimePassword: [String: Any]? = nil, status: HTTPResponse.Status = .ok
    ) async throws -> Response {
        let store = pages.store
        let now = Date()
        let users = try await store.users().sorted { $0.name < $1.name }
        let names = Dictionary(users.map { ($0.id, $0.name) }, uniquingKeysWith: { first, _ in first })
        let tokens = try await pages.accounts.listTokens(userName: nil)
        let open = try await store.jobs(userID: nil, states: [.queued, .running, .canceling], limit: 200, createdBefore: nil)
        let positions = try await pages.jobs.queuePositions()
        var values: [String: Any] = [
            "users": users.map { user -> [String: Any] in
                [
                    "name": user.name, "role": user.role.rawValue, "state": user.isDisabled ? "disabled" : "active",
                    "created": PageRenderer.date(user.createdAt),
                    "roles": Role.allCases.map { ["value": $0.rawValue, "selected": $0 == user.role] },
                    "toggle": user.isDisabled ? "enable" : "disable", "toggleLabel": user.isDisabled ? "Enable" : "Disable",
                    "toggleStyle": user.isDisabled ? "secondary" : "danger",
                ]
            },
            "tokens": tokens.map { token, owner -> [String: Any] in
                [
                    "id": token.id, "owner": owner, "name": token.name, "kind": token.kindName, "state": token.state(at: now),
                    "lastUsed": PageRenderer.date(token.lastUsedAt), "active": token.isUsable(at: now),
                ]
            },
            "hasJobs": !open.isEmpty,
            "jobs": open.reversed().map { job -> [String: Any] in
                [
                    "id": job.id, "owner": names[job.userID] ?? job.userID, "state": job.state.rawValue,
                    "position": positions[job.id].map(String.init) ?? "at ComfyUI", "created": PageRenderer.date(job.createdAt),
                ]
            },
            "backends": pages.pool.members.map { backend -> [String: Any] in
                let snapshot = backend.snapshot(inFlight: pages.pool.activeJobs(on: backend))
                return [
                    "name": snapshot.name, "url": snapshot.url, "state": snapshot.state, "drained": snapshot.drained,
                    "jobs": "\(snapshot.inFlight)/\(snapshot.slots)",
                    "queue": "\(snapshot.queueRunning) running, \(snapshot.queuePending) waiting",
                    "devices": snapshot.devices.isEmpty ? "-" : snapshot.devices.map { device in
                        device.vramTotal.map { total in
                            String(format: "%@ (%.1f/%.1f GiB free)", device.name, Double(device.vramFree ?? 0) / 1_073_741_824,
                                Double(total) / 1_073_741_824)
                        } ?? device.name
                    }.joined(separator: "; "),
                    "action": snapshot.drained ? "enable" : "drain", "actionLabel": snapshot.drained ? "Enable" : "Drain",
                    "actionStyle": snapshot.drained ? "secondary" : "danger",
                ]
            },
        ]
        values.merge(try await audit(query: query, now: now)) { _, new in new }
        values["notice"] = notice
        values["problem"] = problem
        values["oneTimePassword"] = oneTimePassword
        return pages.renderer.page("admin", for: viewer, current: "Admin", status: status, values)
    }

    /// The audit section: the events matching the filter (user, kind, period), a page at a time, newest first.
    private func audit(query: Parameters?, now: Date) async throws -> [String: Any] {
        let user = query?["user"].map(String.init)?.trimmingCharacters(in: .whitespaces) ?? ""
        let kind = query?["kind"].map(String.init) ?? ""
        let since = query?["since"].map(String.init) ?? ""
        let page = max(0, query?["page"].flatMap { Int($0) } ?? 0)
        let events = try await pages.store.auditEvents(limit: Self.auditWindow)
        let kinds = Set(events.map { Self.kind(of: $0.action) }).sorted()
        let after = DurationParser.seconds(since).map { now.addingTimeInterval(-$0) }
        let matching = events.filter { event in
            (user.isEmpty || event.userName?.lowercased() == user.lowercased()) && (kind.isEmpty || Self.kind(of: event.action) == kind)
                && (after.map { event.time >= $0 } ?? true)
        }
        let shown = matching.dropFirst(page * Self.auditPage).prefix(Self.auditPage)
        func link(_ page: Int) -> String {
            var items = [URLQueryItem(name: "page", value: String(page))]
            if !user.isEmpty { items.append(URLQueryItem(name: "user", value: user)) }
            if !kind.isEmpty { items.append(URLQueryItem(name: "kind", value: kind)) }
            if !since.isEmpty { items.append(URLQueryItem(name: "since", value: since)) }
            var components = URLComponents()
            components.path = "/admin"
            components.queryItems = items
            return (components.string ?? "/admin") + "#audit"
        }
        var values: [String: Any] = [
            "filter": ["user": user],
            "kinds": [["value": "", "label": "every kind", "selected": kind.isEmpty]]
                + kinds.map { ["value": $0, "label": $0, "selected": $0 == kind] },
            "periods": [("", "all kept"), ("1h", "last hour"), ("24h", "last 24 hours"), ("7d", "last 7 days"), ("30d", "last 30 days")]
                .map { ["value": $0.0, "label": $0.1, "selected": $0.0 == since] },
            "events": shown.map { event -> [String: Any] in
                [
                    "time": PageRenderer.date(event.time), "action": event.action, "user": event.userName ?? "—",
                    "client": event.clientAddress ?? "—", "detail": event.detail,
                ]
            },
        ]
        if page > 0 { values["newer"] = link(page - 1) }
        if matching.count > (page + 1) * Self.auditPage { values["older"] = link(page + 1) }
        return values
    }

    /// `login.failed` → `login`.
    static func kind(of action: String) -> String {
        String(action.split(separator: ".", maxSplits: 1).first ?? Substring(action))
    }

    /// Carries out an admin form.
    func act(_ page: PageRoute, viewer: PageRenderer.Viewer, form: [String: String]) async throws -> Response {
        let accounts = pages.accounts
        do {
            switch page {
            case .addUser:
                let name = (form["name"] ?? "").trimmingCharacters(in: .whitespaces)
                guard let role = Role(rawValue: form["role"] ?? "") else { return try await render(viewer, problem: "Choose a role.", status: .badRequest) }
                let password = TokenFormat.randomBase62(count: 20)
                _ = try await accounts.addUser(name: name, role: role, password: password)
                return try await render(
                    viewer, notice: "User \(name) was added.", oneTimePassword: ["user": name, "password": password])
            case .changeUser(let name):
                return try await changeUser(name, viewer: viewer, form: form)
            case .revokeToken(let id):
                guard try await pages.store.token(id: id) != nil else { throw PageRefusal(.notFound, "No such token", "") }
                try await accounts.revokeToken(id: id)
                return GatewayResponse.seeOther("/admin?notice=token-revoked#all-tokens")
            case .importToken:
                let user = (form["user"] ?? "").trimmingCharacters(in: .whitespaces)
                let name = (form["name"] ?? "").trimmingCharacters(in: .whitespaces)
                _ = try await accounts.importBcryptToken(
                    userName: user, hash: (form["hash"] ?? "").trimmingCharacters(in: .whitespacesAndNewlines), name: name.isEmpty ? nil : name)
                return GatewayResponse.seeOther("/admin?notice=token-imported#all-tokens")
            case .setBackendDrained(let name, let drained):
                do {
                    try await BackendAdministration(store: pages.store).setDrained(
                        drained, backend: name, known: pages.pool.members.map(\.name), by: viewer.identity.userName)
                } catch {
                    if case .unknownBackend = error { throw PageRefusal(.notFound, "No such backend", "") }
                    throw error
                }
                // This gateway follows at once; the others within a second.
                pages.pool.backend(named: name)?.update { $0.drained = drained }
                if !drained { await pages.jobs.pump() }
                return GatewayResponse.seeOther("/admin?notice=backend-\(drained ? "drained" : "enabled")#backends")
            case .cancelJob(let id):
                guard let job = try await pages.store.job(id: id) else { throw PageRefusal(.notFound, "No such job", "") }
                let leftForComfyUI = try await pages.jobs.cancel([id], by: viewer.identity.caller)
                if leftForComfyUI.contains(id), job.state == .running || job.state == .canceling {
                    try? await pages.jobs.stopAtBackend(job)
                }
                return GatewayResponse.seeOther("/admin?notice=job-cancelled#queue")
            default:
                throw PageRefusal(.notFound, "Not found", "")
            }
        } catch let error as IdentityError {
            return try await render(viewer, problem: error.description, status: .badRequest)
        } catch let error as AccountError {
            return try await render(viewer, problem: error.description, status: .badRequest)
        } catch let error as StoreError {
            return try await render(viewer, problem: error.description, status: .conflict)
        } catch let error as BcryptHashError {
            return try await render(viewer, problem: error.description, status: .badRequest)
        }
    }

    private func changeUser(_ name: String, viewer: PageRenderer.Viewer, form: [String: String]) async throws -> Response {
        let accounts = pages.accounts
        let isSelf = name.lowercased() == viewer.identity.userName.lowercased()
        switch form["action"] ?? "" {
        case "role":
            guard let role = Role(rawValue: form["role"] ?? "") else { return try await render(viewer, problem: "Choose a role.", status: .badRequest) }
            if isSelf, role != .admin {
                return try await render(viewer, problem: "You cannot take the admin role from yourself here.", status: .badRequest)
            }
            try await accounts.setRole(userName: name, role: role)
        case "disable":
            if isSelf { return try await render(viewer, problem: "You cannot disable yourself.", status: .badRequest) }
            try await accounts.setDisabled(userName: name, true)
        case "enable":
            try await accounts.setDisabled(userName: name, false)
        case "reset":
            let password = TokenFormat.randomBase62(count: 20)
            try await accounts.setPassword(userName: name, password: password)
            return try await render(
                viewer, notice: "The password of \(name) was reset and their sessions ended.",
                oneTimePassword: ["user": name, "password": password])
        default:
            return try await render(viewer, problem: "Unknown action.", status: .badRequest)
        }
        return GatewayResponse.seeOther("/admin?notice=user-updated#users")
    }
}

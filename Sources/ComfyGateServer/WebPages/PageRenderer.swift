import ComfyGateCore
import Foundation
import HTTPTypes
import Hummingbird
import Mustache

/// Renders the gateway's pages: a template of ``PageTemplates`` with the values every page shows (the deployment's
/// name, the signed-in user, the session's anti-forgery token) and the page's own.
struct PageRenderer: Sendable {
    let library: MustacheLibrary
    let siteName: String
    let version: String

    init(siteName: String, version: String = ComfyGateVersion.current) throws {
        library = try PageTemplates.library()
        self.siteName = siteName
        self.version = version
    }

    /// Who is looking at a page: what the layout shows of them.
    struct Viewer {
        let identity: Identity
        /// The session cookie's value, from which the forms' anti-forgery token derives; nil for a token caller.
        let cookieValue: String?

        var formToken: String { cookieValue.map(SessionManager.formToken(cookieValue:)) ?? "" }
    }

    /// A page for a signed-in viewer; `current` names the navigation entry to mark.
    func page(_ template: String, for viewer: Viewer, current: String? = nil, status: HTTPResponse.Status = .ok, _ values: [String: Any])
        -> Response
    {
        var context: [String: Any] = [
            "site": siteName, "version": version, "user": true, "name": viewer.identity.userName,
            "isAdmin": viewer.identity.role == .admin, "csrf": viewer.formToken,
        ]
        if let current { context["on" + current] = true }
        context.merge(values) { _, new in new }
        return GatewayResponse.html(status, library.render(context, withTemplate: template) ?? "")
    }

    /// A page for someone not signed in (the sign-in page).
    func publicPage(_ template: String, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:], _ values: [String: Any]) -> Response {
        var context: [String: Any] = ["site": siteName, "version": version]
        context.merge(values) { _, new in new }
        return GatewayResponse.html(status, library.render(context, withTemplate: template) ?? "", headers: headers)
    }

    /// Dates as the pages show them: `2026-11-30 14:05 UTC`.
    static func date(_ date: Date?) -> String {
        guard let date else { return "never" }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute], from: date)
        return String(format: "%04d-%02d-%02d %02d:%02d UTC", parts.year ?? 0, parts.month ?? 0, parts.day ?? 0, parts.hour ?? 0, parts.minute ?? 0)
    }
}

import ComfyGateCore
import ComfyUIClient
import Foundation

extension DoctorRun {
    /// `target`: what answers, from an anonymous `GET /system_stats`.
    func checkTarget() async {
        await measure(.target) {
            let answer: HTTPAnswer
            do {
                answer = try await fetch("/system_stats")
            } catch {
                let (text, diagnosis) = describe(error)
                return (.fail, "GET /system_stats without credentials: \(text)", diagnosis)
            }
            anonymous = answer
            let challenge = answer.header("WWW-Authenticate") ?? ""
            if challenge.contains("realm=\"comfygate\"") {
                target = .comfyGate
                return (.pass, "ComfyGate: \(answer.summary), WWW-Authenticate: \(challenge)", nil)
            }
            if answer.status == 401, answer.text.contains("Authentication required.") {
                target = .comfyUILogin
                return (.pass, "ComfyUI-Login: \(answer.summary)", nil)
            }
            if answer.status == 200, let json = try? JSONValue.decode(answer.body), let stats = try? SystemStats(json: json) {
                target = .comfyUI
                self.stats = stats
                return (.pass, "ComfyUI \(stats.comfyUIVersion) answers without authentication", nil)
            }
            if [401, 403].contains(answer.status) || (answer.status == 302 && answer.header("Location") != nil) {
                return (.warn, "an unknown authenticating front: \(answer.summary)",
                    Diagnosis(
                        code: "unknown_front", cause: "Neither ComfyGate nor ComfyUI-Login answers, but something asks for credentials.",
                        fix: "Doctor checks what it can; the ComfyGate- and ComfyUI-Login-specific explanations do not apply."))
            }
            return (.fail, "GET /system_stats: \(answer.summary)", Causes.notComfyUI(answer.summary))
        }
    }

    /// `auth_enforced`: no credentials → 401 or a login redirect, never ComfyUI's data.
    func checkAuthentication() async {
        guard let anonymous else {
            record(.authEnforced, .skip, evidence: "no anonymous answer to judge")
            return
        }
        await measure(.authEnforced) {
            switch target {
            case .comfyUI:
                let exposed = !Self.isLoopback(host) || (stats.map { Self.listensBeyondLoopback($0.argv) } ?? false)
                return (exposed ? .fail : .warn, "no credentials: \(anonymous.summary)", Causes.bareComfyUI(exposed: exposed))
            case .comfyUILogin:
                if let empty = try? await fetch("/system_stats?token="), empty.status == 200 {
                    return (.fail, "no credentials: HTTP 401, but an empty ?token= gets HTTP 200", Causes.loginWithoutPassword)
                }
                return (.pass, "no credentials: \(anonymous.summary); empty ?token= refused", nil)
            case .comfyGate, .unknown:
                if anonymous.status == 200 {
                    return (.fail, "no credentials: \(anonymous.summary)", Causes.authNotEnforced)
                }
                return (.pass, "no credentials: \(anonymous.summary)", nil)
            }
        }
    }

    /// `token_accepted`: `GET /system_stats` with the token answers ComfyUI's stats.
    func checkTokenAccepted() async {
        if target == .comfyUI {
            record(.tokenAccepted, .skip, evidence: "bare ComfyUI has no authentication: the token is not used")
            return
        }
        guard let token else {
            record(.tokenAccepted, .skip, evidence: "no token given (--token or --token-file)")
            return
        }
        await measure(.tokenAccepted) {
            let answer: HTTPAnswer
            do {
                answer = try await fetch("/system_stats", auth: .bearer(token))
            } catch {
                let (text, diagnosis) = describe(error)
                return (.fail, "GET /system_stats with the token: \(text)", diagnosis)
            }
            if answer.status == 200, let json = try? JSONValue.decode(answer.body), let stats = try? SystemStats(json: json) {
                self.stats = stats
                return (.pass, "HTTP 200, ComfyUI \(stats.comfyUIVersion)", nil)
            }
            return (.fail, "with the token: \(answer.summary)", diagnoseRefusedToken(answer, token: token))
        }
    }

    func diagnoseRefusedToken(_ answer: HTTPAnswer, token: String) -> Diagnosis {
        let looksLikeBcrypt = token.hasPrefix("$2") || token.contains("$2b$") || token.contains("$2a$") || token.contains("$2y$")
        switch (target, answer.status) {
        case (.comfyUILogin, 500):
            return Causes.loginMalformedHeader
        case (.comfyUILogin, _) where TokenFormat.id(ofPresented: token) != nil:
            return Causes.gatewayTokenBypassed
        case (.comfyUILogin, _) where looksLikeBcrypt && token.count != 60:
            return Causes.tokenMangled(length: token.count)
        case (.comfyUILogin, _) where looksLikeBcrypt:
            return Causes.loginTokenIsOtherHash
        case (.comfyUILogin, _):
            return Causes.loginTokenIsRawSecret
        case (.comfyGate, 401) where looksLikeBcrypt:
            return Causes.gatewayTokenIsHash
        case (.comfyGate, 401):
            return Causes.gatewayTokenRefused
        case (.comfyGate, 502), (.comfyGate, 503), (.comfyGate, 504):
            return Causes.gatewayUpstream(answer.summary)
        default:
            return Causes.tokenRefused(answer.summary)
        }
    }

    /// `wrong_token_refused`: a made-up token gets 401 or 403.
    func checkWrongTokenRefused() async {
        if target == .comfyUI {
            record(.wrongTokenRefused, .skip, evidence: "bare ComfyUI has no authentication")
            return
        }
        await measure(.wrongTokenRefused) {
            let wrong = "comfygate-doctor-wrong-token-" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
            do {
                let answer = try await fetch("/system_stats", auth: .bearer(wrong))
                if [401, 403].contains(answer.status) { return (.pass, "made-up token: \(answer.summary)", nil) }
                if answer.status == 200 { return (.fail, "made-up token: \(answer.summary)", Causes.anyTokenAccepted) }
                return (.warn, "made-up token: \(answer.summary)", Causes.tokenRefused(answer.summary))
            } catch {
                let (text, diagnosis) = describe(error)
                return (.fail, "made-up token: \(text)", diagnosis)
            }
        }
    }

    /// `login_page`: a browser without a session is sent to (or shown) a login form.
    func checkLoginPage() async {
        if target == .comfyUI {
            record(.loginPage, .skip, evidence: "bare ComfyUI has no login page")
            return
        }
        await measure(.loginPage) {
            let html = "text/html,application/xhtml+xml"
            do {
                let root = try await fetch("/", accept: html)
                var pagePath: String? = nil
                var evidence = "GET / (browser): HTTP \(root.status)"
                if root.status == 302 || root.status == 303, let location = root.header("Location") {
                    evidence += " → \(location)"
                    pagePath = Self.samePath(location, baseURL: baseURL)
                } else if root.status == 200, root.text.lowercased().contains("type=\"password\"") {
                    return (.pass, evidence + ", a password form", nil)
                }
                guard let pagePath, pagePath.contains("login") else {
                    return (.fail, evidence, Causes.loginPageMissing)
                }
                let page = try await fetch(pagePath.hasPrefix(basePath) ? String(pagePath.dropFirst(basePath.count)) : pagePath, accept: html)
                let isForm = page.status == 200 && page.text.lowercased().contains("password")
                evidence += "; GET \(pagePath): HTTP \(page.status)" + (isForm ? ", a password form" : "")
                return isForm ? (.pass, evidence, nil) : (.fail, evidence, Causes.loginPageMissing)
            } catch {
                let (text, diagnosis) = describe(error)
                return (.fail, "GET / (browser): \(text)", diagnosis)
            }
        }
    }

    /// The path (and query) of a redirect target on the same server, nil for another host.
    static func samePath(_ location: String, baseURL: String) -> String? {
        if location.hasPrefix("/") { return location }
        guard let target = URL(string: location), let base = URL(string: baseURL), target.host == base.host, target.port == base.port
        else { return nil }
        return target.path + (target.query.map { "?" + $0 } ?? "")
    }

    /// Whether ComfyUI's command line shows `--listen` on something other than loopback (no value = all interfaces).
    static func listensBeyondLoopback(_ argv: [String]) -> Bool {
        guard let index = argv.firstIndex(of: "--listen") else {
            return argv.contains { $0.hasPrefix("--listen=") && !$0.dropFirst("--listen=".count).split(separator: ",").allSatisfy { isLoopback(String($0)) } }
        }
        let next = index + 1 < argv.count ? argv[index + 1] : nil
        guard let next, !next.hasPrefix("--") else { return true }
        return !next.split(separator: ",").allSatisfy { isLoopback(String($0)) }
    }
}

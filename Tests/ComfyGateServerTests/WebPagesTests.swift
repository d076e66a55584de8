import ComfyGateCore
import ComfyGateTestSupport
import Foundation
import NIOCore
import NIOHTTP1
import Testing

/// The gateway's own pages over HTTP: account, gallery and admin with their forms, the anti-forgery tokens every
/// form carries, sign-out as a form, a dead session sent back to the sign-in page, the extension ComfyUI's front end
/// loads, and the front end's web app manifest reachable without credentials.
@Suite struct WebPagesTests {
    /// A browser signed in as someone: its session cookie and the forms' anti-forgery token.
    struct Browser {
        let gate: GatewayHarness
        let cookie: String

        var csrf: String { SessionManager.formToken(cookieValue: String(cookie.split(separator: "=", maxSplits: 1)[1])) }

        static func signIn(_ gate: GatewayHarness, _ user: String, password: String = "correct-horse-battery") async throws -> Browser {
            let response = try await BrowserLoginTests.login(gate, user: user, password: password)
            guard response.status == 303, let cookie = BrowserLoginTests.sessionCookie(response) else {
                throw WebPagesTestError.signInFailed("\(response.status) \(response.text.prefix(300))")
            }
            return Browser(gate: gate, cookie: cookie)
        }

        func get(_ path: String) async throws -> TestResponse {
            try await TestHTTP.send(.GET, gate.baseURL + path, headers: [("Cookie", cookie), BrowserLoginTests.html])
        }

        /// A form post from the gateway's own page, with the session's anti-forgery token unless told otherwise.
        func post(_ path: String, _ fields: [String: String] = [:], csrf: String? = nil) async throws -> TestResponse {
            var fields = fields
            fields["csrf"] = csrf ?? self.csrf
            return try await TestHTTP.send(
                .POST, gate.baseURL + path,
                headers: [("Cookie", cookie), ("Content-Type", "application/x-www-form-urlencoded"), ("Origin", gate.baseURL)],
                body: BrowserLoginTests.form(fields))
        }
    }

    enum WebPagesTestError: Error {
        case signInFailed(String)
    }

    /// The value of an `<input … value="…">` with the given id.
    static func inputValue(_ id: String, in page: String) -> String? {
        guard let start = page.range(of: #"id="\#(id)""#) else { return nil }
        let rest = page[start.upperBound...]
        guard let value = rest.range(of: #"value=""#) else { return nil }
        return String(rest[value.upperBound...].prefix { $0 != "\"" })
    }

    @Test func theAccountPageCreatesShowsOnceAndRevokesTokens() async throws {
        try await withGateway { gate in
            _ = try await gate.makeUser("alice")
            let browser = try await Browser.signIn(gate, "alice")
            let page = try await browser.get("/account")
            #expect(page.status == 200)
            #expect(page.text.contains("<h2 id=\"who\">alice</h2>") && page.text.contains(">user</span>"))
            let policy = try #require(page.header("Content-Security-Policy"))
            #expect(policy.contains("default-src 'none'") && policy.contains("script-src 'self'") && !policy.contains("unsafe"))
            #expect(page.text.contains(#"name="csrf" value="\#(browser.csrf)""#))

            let created = try await browser.post("/account/tokens", ["name": "laptop", "expires": "7d"])
            #expect(created.status == 200)
            let token = try #require(Self.inputValue("token-value", in: created.text))
            #expect(token.hasPrefix("cgt_"))
            #expect(created.text.contains(#"curl -H "Authorization: Bearer \#(token)" http://127.0.0.1:\#(gate.port)/system_stats"#))
            #expect(created.text.contains("export COMFY_API_KEY=\(token)"))
            let used = try await TestHTTP.send(.GET, gate.baseURL + "/system_stats", headers: [("Authorization", "Bearer \(token)")])
            #expect(used.status == 200, "the new token works at once")
            let again = try await browser.get("/account")
            #expect(!again.text.contains(token), "a token is shown once")
            #expect(again.text.contains("<td>laptop</td>"))

            let aliceRecord = try #require(try await gate.store.user(named: "alice"))
            let record = try #require(try await gate.store.tokens(userID: aliceRecord.id).first { $0.name == "laptop" })
            let revoked = try await browser.post("/account/tokens/\(record.id)/revoke")
            #expect(revoked.status == 303 && revoked.header("Location") == "/account?notice=token-revoked#tokens")
            let refused = try await TestHTTP.send(.GET, gate.baseURL + "/system_stats", headers: [("Authorization", "Bearer \(token)")])
            #expect(refused.status == 401)
        }
    }

    @Test func formsWithoutTheSessionsTokenAreRefused() async throws {
        try await withGateway { gate in
            _ = try await gate.makeUser("alice")
            let (_, bobToken) = try await gate.makeUser("bob")
            let alice = try await Browser.signIn(gate, "alice")
            let bob = try await Browser.signIn(gate, "bob")
            for csrf in ["", "0000", bob.csrf] {
                let forged = try await alice.post("/account/tokens", ["name": "forged"], csrf: csrf)
                #expect(forged.status == 403, "csrf '\(csrf)': \(forged.status)")
            }
            // A script with a token posts no forms.
            let scripted = try await TestHTTP.send(
                .POST, gate.baseURL + "/account/tokens", headers: [("Authorization", "Bearer \(bobToken)"), ("Content-Type", "application/x-www-form-urlencoded")],
                body: "name=x&csrf=")
            #expect(scripted.status == 403)
            #expect(try await gate.store.tokens(userID: nil).allSatisfy { $0.name != "forged" && $0.name != "x" })
            // Sign-out is a form too: a cross-site link or a form without the token signs nobody out.
            #expect(try await TestHTTP.send(.POST, gate.baseURL + "/logout", headers: [("Cookie", alice.cookie)]).status == 403)
            #expect(try await alice.get("/account").status == 200)
            let confirm = try await alice.get("/logout")
            #expect(confirm.status == 200 && confirm.text.contains(#"action="/logout""#) && confirm.text.contains(alice.csrf))
            let out = try await alice.post("/logout")
            #expect(out.status == 303 && out.header("Set-Cookie")?.contains("Max-Age=0") == true)
        }
    }

    @Test func aDeadSessionSendsNavigationsToSignInAndAPICallsGetA401() async throws {
        try await withGateway { gate in
            _ = try await gate.makeUser("alice")
            let alice = try await Browser.signIn(gate, "alice")
            _ = try await alice.post("/logout")
            let navigation = try await alice.get("/gallery")
            #expect(navigation.status == 302)
            #expect(navigation.header("Location") == "/login?ended=1&next=/gallery")
            #expect(navigation.header("Set-Cookie")?.contains("Max-Age=0") == true, "the dead cookie is cleared")
            let signIn = try await TestHTTP.send(.GET, gate.baseURL + "/login?ended=1&next=/gallery", headers: [BrowserLoginTests.html])
            #expect(signIn.text.contains("Your session has ended"))
            let api = try await TestHTTP.send(.GET, gate.baseURL + "/queue", headers: [("Cookie", alice.cookie)])
            #expect(api.status == 401 && api.header("Content-Type") == "application/json")
        }
    }

    @Test func theExtensionIsListedServedAndTellsWhoIsSignedIn() async throws {
        try await withGateway { gate in
            let alice = try await gate.member("alice")
            let list = try await alice.get("/api/extensions")
            let urls = try #require(try JSONSerialization.jsonObject(with: Data(list.text.utf8)) as? [String])
            #expect(urls.contains("/extensions/core/clipspace.js") && urls.last == "/comfygate/static/comfygate-extension.js")
            let script = try await TestHTTP.send(.GET, gate.baseURL + "/comfygate/static/comfygate-extension.js")
            #expect(script.status == 200 && script.header("Content-Type") == "text/javascript; charset=utf-8", "served without credentials")
            #expect(script.text.contains("registerExtension") && script.text.contains("/comfygate/me"))
            let etag = try #require(script.header("ETag"))
            let cached = try await TestHTTP.send(.GET, gate.baseURL + "/comfygate/static/comfygate-extension.js", headers: [("If-None-Match", etag)])
            #expect(cached.status == 304)
            #expect(try await TestHTTP.send(.GET, gate.baseURL + "/comfygate/static/nothing.js").status == 404)
            let me = try await alice.get("/comfygate/me").json()
            #expect(me["user"] as? String == "alice" && me["role"] as? String == "user" && me["version"] as? Int == 1)
            #expect(try await TestHTTP.send(.GET, gate.baseURL + "/comfygate/me").status == 401)
        }
    }

    @Test func theWebAppManifestAndFaviconNeedNoCredentialsButNothingElseDoes() async throws {
        try await withGateway { gate in
            for path in ["/assets/manifest-CebUEmtR.json", "/favicon.ico", "/assets/favicon.ico"] {
                let answer = try await TestHTTP.send(.GET, gate.baseURL + path)
                #expect(answer.status != 401, "\(path)")
                #expect(gate.recorded("GET", path).count == 1, "\(path) went to ComfyUI")
            }
            for path in ["/assets/manifest-x.json/../../history", "/assets/index.js", "/assets/manifest-.json", "/history"] {
                let answer = try await TestHTTP.send(.GET, gate.baseURL + path)
                #expect(answer.status == 401 || answer.status == 400, "\(path): \(answer.status)")
            }
            // JSON answers keep their slashes as they are.
            let ready = try await TestHTTP.send(.GET, gate.baseURL + "/readyz")
            #expect(ready.text.contains(#""upstream":"http://127.0.0.1:"#), "\(ready.text)")
        }
    }

    @Test func theGalleryShowsOnlyYourOwnOutputsAndForgetsWhatYouDelete() async throws {
        try await withGateway { gate in
            let alice = try await gate.member("alice")
            _ = try await gate.makeUser("bob")
            let job = try await alice.queueAccepted(Workflow.save(prefix: "gallerycat"))
            _ = try await gate.finishedEntry(job)
            let browser = try await Browser.signIn(gate, "alice")
            #expect(try await eventuallyAsync { try await browser.get("/gallery").text.contains("gallerycat_00001_.png") })
            let page = try await browser.get("/gallery")
            // Outputs live in the user's own folder: the links name it.
            let download = try #require(page.text.range(of: #"href="/view?filename=gallerycat_00001_.png&amp;type=output&amp;subfolder="#))
            let viewPath = String(page.text[page.text.index(download.lowerBound, offsetBy: 6)...].prefix { $0 != "\"" })
                .replacingOccurrences(of: "&amp;", with: "&")
            #expect(page.text.contains("href=\"/?comfygate-job=\(job)\""))
            let workflow = try await browser.get("/comfygate/jobs/\(job)/workflow").json()
            #expect((workflow["2"] as? [String: Any])?["class_type"] as? String == "SaveImage")
            let image = try await TestHTTP.send(.GET, gate.baseURL + viewPath, headers: [("Cookie", browser.cookie)])
            #expect(image.status == 200 && pngWidth(image.body.readableBytesView) == 4)

            let bob = try await Browser.signIn(gate, "bob")
            #expect(!(try await bob.get("/gallery").text.contains("gallerycat")))
            #expect(try await bob.get("/comfygate/jobs/\(job)/workflow").status == 404)
            #expect(try await bob.post("/gallery/\(job)/delete").status == 303)
            #expect(try await browser.get("/gallery").text.contains("gallerycat"), "bob cannot delete alice's work")

            #expect(try await browser.post("/gallery/\(job)/delete").header("Location") == "/gallery?notice=deleted")
            let after = try await browser.get("/gallery?notice=deleted")
            #expect(!after.text.contains("gallerycat") && after.text.contains("Removed from your gallery"))
        }
    }

    @Test func adminsManageUsersAndTokensAndOthersMayNotLook() async throws {
        try await withGateway { gate in
            _ = try await gate.makeUser("root", role: .admin)
            _ = try await gate.makeUser("alice")
            let admin = try await Browser.signIn(gate, "root")
            let alice = try await Browser.signIn(gate, "alice")
            #expect(try await alice.get("/admin").status == 403)
            #expect(try await alice.post("/admin/users", ["name": "eve", "role": "admin"]).status == 403)
            #expect(try await gate.store.user(named: "eve") == nil)

            let page = try await admin.get("/admin")
            #expect(page.status == 200 && page.text.contains("<td>alice</td>") && page.text.contains("id=\"audit\""))
            let added = try await admin.post("/admin/users", ["name": "carol", "role": "viewer"])
            #expect(added.status == 200)
            let password = try #require(Self.inputValue("one-time-password", in: added.text))
            let carol = try await Browser.signIn(gate, "carol", password: password)
            #expect(try await carol.get("/account").text.contains(">viewer</span>"))
            let invalid = try await admin.post("/admin/users", ["name": "bad name", "role": "user"])
            #expect(invalid.status == 400 && invalid.text.contains("invalid user name"))

            #expect(try await admin.post("/admin/users/carol", ["action": "role", "role": "user"]).status == 303)
            #expect(try await gate.store.user(named: "carol")?.role == .user)
            #expect(try await admin.post("/admin/users/carol", ["action": "disable"]).status == 303)
            let ended = try await carol.get("/account")
            #expect(ended.status == 302 && ended.header("Location")?.hasPrefix("/login?ended=1") == true, "a disabled user's pages end at sign-in")
            #expect(try await admin.post("/admin/users/root", ["action": "disable"]).text.contains("You cannot disable yourself"))

            let reset = try await admin.post("/admin/users/alice", ["action": "reset"])
            let newPassword = try #require(Self.inputValue("one-time-password", in: reset.text))
            #expect(try await alice.get("/account").status == 302, "a reset ends the user's sessions")
            _ = try await Browser.signIn(gate, "alice", password: newPassword)

            let hash = try await PythonBcrypt.hash("the-raw-secret", cost: 4)
            let imported = try await admin.post("/admin/tokens/import", ["user": "alice", "name": "migrated", "hash": hash])
            #expect(imported.status == 303)
            #expect(try await TestHTTP.send(.GET, gate.baseURL + "/system_stats", headers: [("Authorization", "Bearer the-raw-secret")]).status == 200)
            let audit = try await admin.get("/admin?kind=user&user=carol")
            #expect(audit.text.contains("user.disabled") && audit.text.contains("user.role_changed") && !audit.text.contains("login.succeeded"))
        }
    }

    @Test func passwordsChangeAndOtherBrowsersCanBeSignedOut() async throws {
        try await withGateway { gate in
            _ = try await gate.makeUser("alice")
            let laptop = try await Browser.signIn(gate, "alice")
            let phone = try await Browser.signIn(gate, "alice")
            let sessions = try await laptop.get("/account")
            #expect(sessions.text.contains("this browser") && sessions.text.contains("127.0.0.1"))
            #expect(try await laptop.post("/account/sessions/end-others").status == 303)
            #expect(try await phone.get("/account").status == 302)
            #expect(try await laptop.get("/account").status == 200)

            let wrong = try await laptop.post("/account/password", ["current": "nope-nope-nope", "new": "new-password-1", "confirm": "new-password-1"])
            #expect(wrong.status == 400 && wrong.text.contains("The current password is wrong"))
            let short = try await laptop.post("/account/password", ["current": "correct-horse-battery", "new": "short", "confirm": "short"])
            #expect(short.status == 400 && short.text.contains("at least 8 characters"))
            let changed = try await laptop.post(
                "/account/password", ["current": "correct-horse-battery", "new": "new-password-1", "confirm": "new-password-1"])
            #expect(changed.status == 303)
            let renewed = try #require(BrowserLoginTests.sessionCookie(changed))
            #expect(try await Browser(gate: gate, cookie: renewed).get("/account").status == 200, "this browser stays signed in")
            _ = try await Browser.signIn(gate, "alice", password: "new-password-1")
        }
    }

    @Test func theSignInPageKeepsTheUserNameAndNamesTheDeployment() async throws {
        try await withGateway(configure: { $0.siteName = "Lab GPU" }) { gate in
            _ = try await gate.makeUser("alice")
            let page = try await TestHTTP.send(.GET, gate.baseURL + "/login", headers: [BrowserLoginTests.html])
            #expect(page.text.contains("Sign in to Lab GPU") && page.text.contains("/comfygate/static/comfygate.css"))
            let failed = try await BrowserLoginTests.login(gate, user: "alice", password: "wrong-password")
            #expect(failed.status == 401 && failed.text.contains(#"value="alice""#) && failed.text.contains("Wrong user name or password."))
            let css = try await TestHTTP.send(.GET, gate.baseURL + "/comfygate/static/comfygate.css")
            #expect(css.status == 200 && css.text.contains("prefers-color-scheme:dark"))
        }
    }

    @Test func adminsSeeTheQueueAndCancelHeldAndRunningJobs() async throws {
        try await withGateway(configure: { $0.jobs.inFlight = 1 }) { gate in
            _ = try await gate.makeUser("root", role: .admin)
            let alice = try await gate.member("alice")
            gate.standIn.holdExecution()
            let running = try await alice.queueAccepted(Workflow.save(prefix: "first"))
            try await gate.waitUntilRunning(running)
            let held = try await alice.queueAccepted(Workflow.save(prefix: "second"))
            let admin = try await Browser.signIn(gate, "root")
            let page = try await admin.get("/admin")
            #expect(page.text.contains("<code>\(running)</code></td><td>alice</td><td>running</td><td>at ComfyUI</td>"), "\(page.text)")
            #expect(page.text.contains("<code>\(held)</code></td><td>alice</td><td>queued</td><td>1</td>"))

            #expect(try await admin.post("/admin/jobs/\(held)/cancel").header("Location") == "/admin?notice=job-cancelled#queue")
            #expect(try await gate.store.job(id: held)?.state == .canceled, "a held job ends at once, without ComfyUI")
            #expect(try await admin.post("/admin/jobs/\(running)/cancel").status == 303)
            #expect(try await eventuallyAsync { try await gate.store.job(id: running)?.state == .canceled }, "ComfyUI was told to stop it")
            gate.standIn.releaseExecution()
            let after = try await admin.get("/admin?notice=job-cancelled")
            #expect(after.text.contains("Nothing waiting or running.") && after.text.contains("The job was cancelled."))
            #expect(try await admin.post("/admin/jobs/nonexistent/cancel").status == 404)
        }
    }
}

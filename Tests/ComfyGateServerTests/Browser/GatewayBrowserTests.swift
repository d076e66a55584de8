import ComfyGateCore
import ComfyGateTestSupport
import Foundation
import NIOHTTP1
import Testing

/// The gateway's pages and its extension inside ComfyUI's real front end, in headless Chromium: sign-in (a wrong
/// password, the throttling message), ComfyUI's page through the gateway with its websocket open and the user menu,
/// a token created on the account page and used with curl, then revoked, the gallery after a run and "open in
/// ComfyUI", an admin adding and disabling a user whose open page then ends at sign-in, sign-out, a session expiring.
/// Every page is photographed into `COMFYGATE_SCREENSHOTS` (the README's pictures come from there).
@Suite(.timeLimit(.minutes(5)))
struct GatewayBrowserTests {
    static func shot(_ browser: WebDriver, _ name: String) async throws {
        try await browser.saveScreenshot(to: ComfyUIFrontEndTests.screenshotDirectory + "/\(name).png")
    }

    /// A gateway in front of a stand-in that serves ComfyUI's real front end, to a returning user (no first-run dialog).
    static func withFrontEnd<T: Sendable>(
        configure: @Sendable @escaping (inout GatewayConfiguration) -> Void = { $0.siteName = "Lab GPU" },
        _ body: @Sendable (GatewayHarness) async throws -> T
    ) async throws -> T {
        var options = ComfyUIStandIn.Options()
        options.webRoot = try await ComfyUIFrontEndPackage.staticDirectory()
        return try await withGateway(standIn: options, configure: configure) { gate in
            let settings = try await TestHTTP.send(.POST, gate.standIn.baseURL + "/api/settings", body: #"{"Comfy.TutorialCompleted": true}"#)
            #expect(settings.status == 200)
            return try await body(gate)
        }
    }

    /// Types into the sign-in form the gateway sent the browser to, and sends it.
    static func signIn(_ browser: WebDriver, as user: String, password: String = "correct-horse-battery") async throws {
        try await browser.waitUntil("the sign-in form is shown") { try await !browser.findElements("form[action='/login']").isEmpty }
        let name = try await browser.findElement("#username")
        // The page keeps the last user name typed: start from an empty field.
        let _: Bool = try await browser.executeScript("document.getElementById('username').value = ''; return true;")
        try await browser.sendKeys(user, to: name)
        try await browser.sendKeys(password, to: try await browser.findElement("#password"))
        try await browser.click(try await browser.findElement("form[action='/login'] button[type=submit]"))
    }

    /// Waits until ComfyUI's page is up through the gateway: canvas, open websocket, and the gateway's badge naming the user.
    static func waitForComfyUI(_ browser: WebDriver, user: String) async throws {
        try await browser.waitUntil("ComfyUI's canvas is on the page") { try await !browser.findElements("canvas#graph-canvas").isEmpty }
        try await browser.waitUntil("ComfyUI's websocket is open") {
            try await browser.executeScript("return window.comfyAPI?.api?.api?.socket?.readyState === 1;")
        }
        try await browser.waitUntil("the gateway's badge names \(user)") {
            try await firstText(browser, "#comfygate-user .comfygate-user-name").hasPrefix(user)
        }
    }

    /// The text of the first element matching `selector`, or "" when there is none.
    static func firstText(_ browser: WebDriver, _ selector: String) async throws -> String {
        guard let element = try await browser.findElements(selector).first else { return "" }
        return try await browser.text(of: element)
    }

    /// `curl -s -o /dev/null -w %{http_code}` with a bearer token: the status as curl saw it.
    static func curlStatus(_ url: String, token: String) async throws -> String {
        let run = try await ChildProcess.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Authorization: Bearer \(token)", url], timeout: .seconds(30))
        return run.output
    }

    @Test func signingInWrongPasswordThrottlingAndSigningOut() async throws {
        try await Self.withFrontEnd { gate in
            _ = try await gate.makeUser("alice")
            _ = try await gate.makeUser("victim")
            try await withHeadlessChromium { browser in
                try await browser.navigate(to: gate.baseURL + "/account")
                #expect(try await browser.currentURL() == gate.baseURL + "/login?next=/account")
                #expect(try await browser.text(of: try await browser.findElement("h1")) == "Sign in to Lab GPU")
                try await Self.shot(browser, "sign-in")

                try await Self.signIn(browser, as: "alice", password: "not-the-password")
                try await browser.waitUntil("the failure is said") {
                    try await Self.firstText(browser, ".problem") == "Wrong user name or password."
                }
                #expect(try await browser.attribute("value", of: try await browser.findElement("#username")) == "alice", "the user name is kept")

                for _ in 0..<6 { try await Self.signIn(browser, as: "victim", password: "guess-guess-guess") }
                try await browser.waitUntil("the throttling is said") {
                    try await Self.firstText(browser, ".problem").hasPrefix("Too many failed attempts. Try again in")
                }
                try await Self.shot(browser, "sign-in-throttled")

                try await browser.navigate(to: gate.baseURL + "/login?next=/account")
                try await Self.signIn(browser, as: "alice")
                try await browser.waitUntil("the account page is shown") { try await browser.currentURL() == gate.baseURL + "/account" }
                #expect(try await browser.text(of: try await browser.findElement("#who")) == "alice")

                try await browser.click(try await browser.findElement("nav form[action='/logout'] button"))
                try await browser.waitUntil("signed out, at the sign-in page") { try await browser.currentURL() == gate.baseURL + "/login" }
                try await browser.navigate(to: gate.baseURL + "/account")
                #expect(try await browser.currentURL().hasPrefix(gate.baseURL + "/login"), "the session ended for good")
            }
        }
    }

    @Test func comfyUIThroughTheGatewayWithTheMenuATokenForCurlAndTheGallery() async throws {
        try await Self.withFrontEnd { gate in
            let alice = try await gate.member("alice")
            try await withHeadlessChromium { browser in
                try await browser.navigate(to: gate.baseURL + "/")
                try await Self.signIn(browser, as: "alice")
                try await Self.waitForComfyUI(browser, user: "alice")
                let registered: Bool = try await browser.executeScript(
                    "return (window.app?.extensions ?? []).some(extension => extension.name === 'ComfyGate.UserMenu');")
                #expect(registered, "the gateway's extension registered with ComfyUI's app")
                let links = try await browser.findElements("#comfygate-user a")
                var labels: [String] = []
                for link in links { labels.append(try await browser.text(of: link)) }
                #expect(labels == ["Account", "Gallery", "Sign out"])
                try await Self.shot(browser, "comfyui-with-user-menu")

                // A token from the account page, used with curl, then revoked.
                try await browser.navigate(to: gate.baseURL + "/account")
                try await browser.sendKeys("curl-test", to: try await browser.findElement("#token-name"))
                try await browser.click(try await browser.findElement("form[action='/account/tokens'] button[type=submit]"))
                try await browser.waitUntil("the new token is shown") { try await !browser.findElements("#token-value").isEmpty }
                let token = try #require(try await browser.attribute("value", of: try await browser.findElement("#token-value")))
                #expect(token.hasPrefix("cgt_"))
                let copyButtons = try await browser.findElements("#token-shown button")
                #expect(copyButtons.count == 3, "a copy button for the token, the curl line and the comfy-sdk lines")
                try await Self.shot(browser, "account-new-token")
                #expect(try await Self.curlStatus(gate.baseURL + "/system_stats", token: token) == "200")
                try await browser.navigate(to: gate.baseURL + "/account")
                try await browser.click(try await browser.findElement("button[aria-label='Revoke token curl-test']"))
                try await browser.waitUntil("the revocation is said") { try await !browser.findElements(".notice").isEmpty }
                #expect(try await Self.curlStatus(gate.baseURL + "/system_stats", token: token) == "401")
                try await Self.shot(browser, "account")

                // The gallery after a run, and the job's workflow opened in ComfyUI.
                let job = try await alice.queueAccepted(Workflow.save(prefix: "browsercat", color: 0x3366cc))
                _ = try await gate.finishedEntry(job)
                try await browser.waitUntil("the output is in the gallery") {
                    try await browser.navigate(to: gate.baseURL + "/gallery")
                    return try await !browser.findElements("img[alt^='Output browsercat']").isEmpty
                }
                let loaded: Bool = try await browser.executeScript(
                    "const image = document.querySelector(\"img[alt^='Output browsercat']\"); return image.complete && image.naturalWidth > 0;")
                #expect(loaded, "the thumbnail loads through /view")
                try await Self.shot(browser, "gallery")
                try await browser.click(try await browser.findElement("a[href='/?comfygate-job=\(job)']"))
                try await Self.waitForComfyUI(browser, user: "alice")
                try await browser.waitUntil("the job's workflow is in the editor") {
                    try await browser.executeScript("return (window.app?.graph?.nodes ?? []).some(node => node.type === 'EmptyImage');")
                }
            }
        }
    }

    @Test func anAdminAddsAndDisablesAUserWhoseOpenPageEndsAtSignIn() async throws {
        try await Self.withFrontEnd { gate in
            _ = try await gate.makeUser("root", role: .admin)
            try await withHeadlessChromium { admin in
                try await admin.navigate(to: gate.baseURL + "/admin")
                try await Self.signIn(admin, as: "root")
                try await admin.waitUntil("the admin page is shown") { try await admin.currentURL() == gate.baseURL + "/admin" }
                try await admin.sendKeys("dora", to: try await admin.findElement("#new-user"))
                try await admin.click(try await admin.findElement("form[action='/admin/users'] button[type=submit]"))
                try await admin.waitUntil("the one-time password is shown") { try await !admin.findElements("#one-time-password").isEmpty }
                let password = try #require(try await admin.attribute("value", of: try await admin.findElement("#one-time-password")))
                try await Self.shot(admin, "admin")

                try await withHeadlessChromium { dora in
                    try await dora.navigate(to: gate.baseURL + "/")
                    try await Self.signIn(dora, as: "dora", password: password)
                    try await Self.waitForComfyUI(dora, user: "dora")

                    try await admin.navigate(to: gate.baseURL + "/admin")
                    try await admin.click(try await admin.findElement("button[aria-label='Disable dora']"))
                    try await admin.waitUntil("the change is said") { try await !admin.findElements(".notice").isEmpty }

                    try await dora.waitUntil("dora's open page ends at the sign-in page", timeout: .seconds(45)) {
                        try await dora.currentURL().hasPrefix(gate.baseURL + "/login?ended=1")
                    }
                    #expect(try await dora.text(of: try await dora.findElement(".notice")).contains("Your session has ended"))
                    try await Self.shot(dora, "sign-in-after-session-ended")
                }
                let events = try await gate.store.auditEvents(limit: 20).map(\.action)
                #expect(events.contains("user.created") && events.contains("user.disabled"))
            }
        }
    }

    @Test func anExpiredSessionSendsTheOpenPageToSignIn() async throws {
        try await Self.withFrontEnd(configure: { $0.sessionIdleTimeout = 3600 }) { gate in
            _ = try await gate.makeUser("alice")
            try await withHeadlessChromium { browser in
                try await browser.navigate(to: gate.baseURL + "/")
                try await Self.signIn(browser, as: "alice")
                try await Self.waitForComfyUI(browser, user: "alice")
                gate.clock.advance(by: 3601)
                try await browser.waitUntil("the page ends at the sign-in page", timeout: .seconds(45)) {
                    try await browser.currentURL().hasPrefix(gate.baseURL + "/login?ended=1")
                }
                try await browser.navigate(to: gate.baseURL + "/account")
                #expect(try await browser.currentURL().hasPrefix(gate.baseURL + "/login"))
                #expect(try await browser.cookies().allSatisfy { !$0.name.hasPrefix("comfygate_session") }, "the dead cookie is cleared")
            }
        }
    }
}

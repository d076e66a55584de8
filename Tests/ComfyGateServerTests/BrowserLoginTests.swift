import ComfyGateCore
import ComfyGateSQLite
import NIOHTTP1
import ComfyGateTestSupport
import Foundation
import Testing

@Suite struct BrowserLoginTests {
    static let html = ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")

    static func form(_ fields: [String: String]) -> String {
        fields.map { key, value in "\(key)=\(value.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)" }
            .joined(separator: "&")
    }

    static func login(_ gate: GatewayHarness, user: String, password: String, next: String = "/") async throws -> TestResponse {
        try await TestHTTP.send(
            .POST, "\(gate.baseURL)/login",
            headers: [("Content-Type", "application/x-www-form-urlencoded")],
            body: form(["username": user, "password": password, "next": next])
        )
    }

    static func sessionCookie(_ response: TestResponse) -> String? {
        response.header("Set-Cookie")?.split(separator: ";").first.map(String.init)
    }

    @Test func browsersAreSentToTheLoginPageWithTheirDestination() async throws {
        try await withGateway { gate in
            let response = try await TestHTTP.send(.GET, "\(gate.baseURL)/history?max_items=5&token=", headers: [Self.html])
            #expect(response.status == 302)
            #expect(response.header("Location") == "/login?next=/history%3Fmax_items%3D5")
            let page = try await TestHTTP.send(.GET, "\(gate.baseURL)/login?next=%2Fhistory", headers: [Self.html])
            #expect(page.status == 200)
            #expect(page.header("Content-Type")?.hasPrefix("text/html") == true)
            #expect(page.text.contains(#"name="password""#))
            #expect(page.text.contains(#"value="/history""#))
            #expect(page.header("Content-Security-Policy") != nil)
        }
    }

    @Test func loginOpensAServerSideSessionAndLogoutEndsIt() async throws {
        try await withGateway { gate in
            _ = try await gate.makeUser("alice", password: "correct-horse-battery")
            let response = try await Self.login(gate, user: "alice", password: "correct-horse-battery", next: "/queue")
            #expect(response.status == 303)
            #expect(response.header("Location") == "/queue")
            let setCookie = try #require(response.header("Set-Cookie"))
            #expect(setCookie.contains("HttpOnly"))
            #expect(setCookie.contains("SameSite=Lax"))
            #expect(!setCookie.contains("Secure"), "plain http public URL")
            let cookie = try #require(Self.sessionCookie(response))
            let value = String(cookie.split(separator: "=")[1])
            let stored = try await gate.store.session(idDigest: TokenFormat.digest(value))
            #expect(stored != nil, "only the digest of the session id is stored")
            #expect(try await gate.store.session(idDigest: value) == nil)

            #expect(try await TestHTTP.send(.GET, "\(gate.baseURL)/queue", headers: [("Cookie", cookie)]).status == 200)
            let logout = try await TestHTTP.send(
                .POST, "\(gate.baseURL)/logout", headers: [("Cookie", cookie), ("Content-Type", "application/x-www-form-urlencoded")],
                body: "csrf=" + SessionManager.formToken(cookieValue: value))
            #expect(logout.status == 303)
            #expect(logout.header("Set-Cookie")?.contains("Max-Age=0") == true)
            #expect(try await TestHTTP.send(.GET, "\(gate.baseURL)/queue", headers: [("Cookie", cookie)]).status == 401,
                "a copied cookie is useless after logout")
        }
    }

    @Test func unknownUsersAndWrongPasswordsGetTheSameAnswer() async throws {
        try await withGateway { gate in
            _ = try await gate.makeUser("alice", password: "correct-horse-battery")
            let wrong = try await Self.login(gate, user: "alice", password: "nope-nope-nope")
            let unknown = try await Self.login(gate, user: "mallory", password: "nope-nope-nope")
            #expect(wrong.status == 401)
            #expect(unknown.status == 401)
            #expect(wrong.text.replacingOccurrences(of: #"value="alice""#, with: "") == unknown.text.replacingOccurrences(of: #"value="mallory""#, with: ""),
                "the same page but for the user name typed, kept in its field")
            #expect(wrong.header("Set-Cookie") == nil)
            let events = try await gate.store.auditEvents(limit: 10).map(\.action)
            #expect(events.filter { $0 == "login.failed" }.count == 2)
        }
    }

    @Test func sessionsExpireWhenIdleAndAtTheirAbsoluteLimit() async throws {
        try await withGateway(configure: { configuration in
            configuration.sessionIdleTimeout = 600
            configuration.sessionAbsoluteTimeout = 3600
        }) { gate in
            _ = try await gate.makeUser("alice", password: "correct-horse-battery")
            let cookie = try #require(Self.sessionCookie(try await Self.login(gate, user: "alice", password: "correct-horse-battery")))
            gate.clock.advance(by: 601)
            #expect(try await TestHTTP.send(.GET, "\(gate.baseURL)/queue", headers: [("Cookie", cookie)]).status == 401)

            let active = try #require(Self.sessionCookie(try await Self.login(gate, user: "alice", password: "correct-horse-battery")))
            for _ in 0..<10 {
                gate.clock.advance(by: 500)
                let status = try await TestHTTP.send(.GET, "\(gate.baseURL)/queue", headers: [("Cookie", active)]).status
                if status != 200 {
                    #expect(status == 401)
                    return
                }
            }
            Issue.record("an active session must still end at its absolute timeout")
        }
    }

    @Test func repeatedFailuresAreThrottled() async throws {
        try await withGateway { gate in
            _ = try await gate.makeUser("alice", password: "correct-horse-battery")
            var statuses: [Int] = []
            for _ in 0..<7 { statuses.append(try await Self.login(gate, user: "alice", password: "wrong-password").status) }
            #expect(statuses.prefix(5).allSatisfy { $0 == 401 })
            #expect(statuses.last == 429)
            let started = ContinuousClock.now
            let blocked = try await Self.login(gate, user: "alice", password: "correct-horse-battery")
            #expect(blocked.status == 429, "even the right password waits out the lockout")
            #expect(blocked.header("Retry-After") != nil)
            #expect(ContinuousClock.now - started >= .milliseconds(900), "a throttled guess is answered only after a pause")
            let actions = try await gate.store.auditEvents(limit: 50).map(\.action)
            #expect(actions.filter { $0 == "login.throttled" }.count == 1, "one audit entry per lockout, not per attempt")
            #expect(actions.filter { $0 == "login.failed" }.count == 5)
        }
    }

    @Test func loginRedirectsOnlyToSameSitePaths() async throws {
        try await withGateway { gate in
            _ = try await gate.makeUser("alice", password: "correct-horse-battery")
            for next in ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"] {
                let response = try await Self.login(gate, user: "alice", password: "correct-horse-battery", next: next)
                #expect(response.header("Location") == "/", "\(next)")
            }
        }
    }

    @Test func crossSiteWritesWithACookieAreRefused() async throws {
        try await withGateway { gate in
            _ = try await gate.makeUser("alice", password: "correct-horse-battery")
            let cookie = try #require(Self.sessionCookie(try await Self.login(gate, user: "alice", password: "correct-horse-battery")))
            let evil = try await TestHTTP.send(
                .POST, "\(gate.baseURL)/interrupt", headers: [("Cookie", cookie), ("Origin", "http://evil.example")], body: "{}"
            )
            #expect(evil.status == 403)
            let same = try await TestHTTP.send(
                .POST, "\(gate.baseURL)/interrupt", headers: [("Cookie", cookie), ("Origin", gate.baseURL)], body: "{}"
            )
            #expect(same.status == 200, "the gateway's own page may write, and ComfyUI's origin check accepts it")
        }
    }
}

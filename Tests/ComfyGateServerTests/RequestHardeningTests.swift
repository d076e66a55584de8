import ComfyGateCore
import ComfyGateSQLite
import ComfyGateTestSupport
import Foundation
import Logging
import NIOHTTP1
import Synchronization
import Testing

/// What reaches ComfyUI in headers, when a client waiting for `100 Continue` may send its body, what a client
/// that breaks the websocket protocol gets, and how a failing store shows.
@Suite struct RequestHardeningTests {
    @Test func theTokenParameterNeverReachesComfyUIInTheReferer() async throws {
        try await withGateway { gate in
            let (_, token) = try await gate.makeUser("alice")
            let referer = "\(gate.baseURL)/?token=\(token)&workflow=1#top"
            // The first request fills the credential cache; the second takes the fast path.
            for _ in 0..<2 {
                let response = try await TestHTTP.send(
                    .GET, "\(gate.baseURL)/queue", headers: [("Authorization", "Bearer \(token)"), ("Referer", referer)]
                )
                #expect(response.status == 200)
            }
            let recorded = gate.comfyUIRequests.filter { $0.path == "/queue" }
            #expect(recorded.count == 2)
            for request in recorded {
                #expect(request.headerValues("Referer") == ["\(gate.baseURL)/?workflow=1#top"])
                #expect(!request.headers.contains { $0.value.contains(token) })
            }
        }
    }

    /// A cookie planted before the session cookie (by a sibling subdomain, or script on this origin) whose value
    /// ends in a combining mark: the session cookie must still be found and removed where it was read.
    @Test func theSessionCookieNeverReachesComfyUIWhateverPrecedesIt() async throws {
        try await withGateway { gate in
            _ = try await gate.makeUser("alice")
            let login = try await BrowserLoginTests.login(gate, user: "alice", password: "correct-horse-battery")
            let session = try #require(BrowserLoginTests.sessionCookie(login))
            let (_, token) = try await gate.makeUser("bob")
            for credential in [("Cookie", "x=\u{0600}; \(session)"), ("Authorization", "Bearer \(token)")] {
                var headers = [credential]
                if credential.0 == "Authorization" { headers.append(("Cookie", "x=\u{0600}; \(session)")) }
                let response = try await TestHTTP.send(.GET, "\(gate.baseURL)/queue", headers: headers)
                #expect(response.status == 200)
            }
            let recorded = gate.comfyUIRequests.filter { $0.path == "/queue" }
            #expect(recorded.count == 2)
            for request in recorded {
                #expect(request.headerValues("Cookie") == ["x=\u{0600}"])
            }
        }
    }

    @Test func forwardedAndXRealIPFromAnUntrustedClientAreReplaced() async throws {
        try await withGateway { gate in
            let (_, token) = try await gate.makeUser("alice")
            for _ in 0..<2 {
                _ = try await TestHTTP.send(.GET, "\(gate.baseURL)/queue", headers: [
                    ("Authorization", "Bearer \(token)"), ("Forwarded", "for=203.0.113.9;proto=https"), ("X-Real-IP", "203.0.113.9"),
                ])
            }
            let recorded = gate.comfyUIRequests.filter { $0.path == "/queue" }
            #expect(recorded.count == 2)
            for request in recorded {
                #expect(request.headerValues("X-Real-IP") == ["127.0.0.1"])
                #expect(request.headerValues("Forwarded") == ["for=127.0.0.1;proto=http;host=\"127.0.0.1:\(gate.port)\""])
                #expect(!request.headers.contains { $0.value.contains("203.0.113.9") })
            }
        }
    }

    @Test func aTrustedProxysForwardedListIsExtendedAndItsClientIsTheRealIP() async throws {
        try await withGateway(configure: { $0.trustedProxies = ["127.0.0.1"] }) { gate in
            let (_, token) = try await gate.makeUser("alice")
            _ = try await TestHTTP.send(.GET, "\(gate.baseURL)/queue", headers: [
                ("Authorization", "Bearer \(token)"), ("Forwarded", "for=198.51.100.7"), ("X-Forwarded-For", "198.51.100.7"),
                ("X-Forwarded-Proto", "https"),
            ])
            let request = try #require(gate.comfyUIRequests.first { $0.path == "/queue" })
            #expect(request.headerValues("X-Real-IP") == ["198.51.100.7"])
            #expect(request.headerValues("Forwarded") == ["for=198.51.100.7, for=127.0.0.1;proto=https;host=\"127.0.0.1:\(gate.port)\""])
        }
    }

    /// The websocket upgrade builds ComfyUI's handshake with the same rules as plain requests.
    @Test func theWebSocketHandshakeGetsTheSameHeaderRulesAndTargetCheck() async throws {
        try await withGateway { gate in
            let (_, token) = try await gate.makeUser("alice")
            let handshake = { (target: String) in
                "GET \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\nUpgrade: websocket\r\n"
                    + "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                    + "Referer: \(gate.baseURL)/?token=\(token)&tab=2\r\nForwarded: for=203.0.113.9\r\nX-Real-IP: 203.0.113.9\r\n\r\n"
            }
            let refused = try RawConnection(port: gate.port, timeoutSeconds: 20)
            try await refused.write(handshake("/ws#x"))
            let (answer, closed) = await refused.readToEnd()
            #expect(answer.hasPrefix("HTTP/1.1 400"), "got: \(answer.prefix(60))")
            #expect(closed)

            let connection = try RawConnection(port: gate.port, timeoutSeconds: 20)
            try await connection.write(handshake("/ws?clientId=headers"))
            let upgraded = await connection.read(until: "\r\n\r\n")
            try #require(upgraded.hasPrefix("HTTP/1.1 101"), "got: \(upgraded.prefix(60))")
            // The stand-in records the handshake once its own upgrade is done, which may be after the gateway's answer.
            let seen = try await eventually(within: .seconds(10)) { !gate.comfyUIWebSockets.isEmpty }
            #expect(seen, "ComfyUI was given the websocket")
            let recorded = try #require(gate.comfyUIWebSockets.first)
            let headers = { (name: String) in recorded.handshakeHeaders.filter { $0.name.lowercased() == name }.map(\.value) }
            #expect(headers("referer") == ["\(gate.baseURL)/?tab=2"])
            #expect(headers("x-real-ip") == ["127.0.0.1"])
            #expect(headers("forwarded") == ["for=127.0.0.1;proto=http;host=127.0.0.1"], "the Host the client sent")
            #expect(!recorded.handshakeHeaders.contains { $0.value.contains(token) || $0.value.contains("203.0.113.9") })
        }
    }

    /// `/login?next=/%09/evil.com` once sent browsers to `http://evil.com/` (they drop tabs in URLs).
    @Test(arguments: ["/%09/evil.com", "/\t/evil.com", "/%5cevil.com", "//evil.com", "/.//evil.com"])
    func signingInNeverRedirectsOffSite(_ next: String) async throws {
        try await withGateway { gate in
            _ = try await gate.makeUser("alice")
            let encoded = next.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            let page = try await TestHTTP.send(.GET, "\(gate.baseURL)/login?next=\(encoded)", headers: [BrowserLoginTests.html])
            #expect(page.text.contains(#"name="next" value="/""#))
            let login = try await BrowserLoginTests.login(gate, user: "alice", password: "correct-horse-battery", next: next)
            #expect(login.status == 303)
            #expect(login.header("Location") == "/")
        }
    }

    /// A client that asks for `100 Continue` before a large upload and is not let in gets its 401 (or 403) and a
    /// closed connection — never `100 Continue`, and its body is never read.
    @Test(arguments: [false, true])
    func continueIsSentOnlyAfterTheRequestIsAllowed(asViewer: Bool) async throws {
        try await withGateway { gate in
            let authorization = asViewer ? "Authorization: Bearer \(try await gate.makeUser("vera", role: .viewer).token)\r\n" : ""
            let connection = try RawConnection(port: gate.port, timeoutSeconds: 20)
            try await connection.write(
                "POST /upload/image HTTP/1.1\r\nHost: 127.0.0.1\r\n\(authorization)Content-Type: application/octet-stream\r\n"
                    + "Content-Length: 2000000000\r\nExpect: 100-continue\r\n\r\n"
            )
            let (text, closed) = await connection.readToEnd()
            #expect(!text.contains("100 Continue"), "got: \(text.prefix(80))")
            #expect(text.hasPrefix(asViewer ? "HTTP/1.1 403" : "HTTP/1.1 401"), "got: \(text.prefix(80))")
            #expect(text.lowercased().contains("connection: close"))
            #expect(closed, "the connection closes without reading the body")
            #expect(gate.comfyUIRequests.isEmpty)
        }
    }

    /// RFC 6455 §5.1: a client frame without a mask closes the websocket with 1002, and is not relayed.
    @Test func anUnmaskedClientFrameClosesTheWebSocketWith1002() async throws {
        try await withGateway { gate in
            let (_, token) = try await gate.makeUser("alice")
            let connection = try RawConnection(port: gate.port, timeoutSeconds: 20)
            try await connection.write(
                "GET /ws?clientId=raw HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\nUpgrade: websocket\r\n"
                    + "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            let handshake = await connection.read(until: "\r\n\r\n")
            try #require(handshake.hasPrefix("HTTP/1.1 101"), "got: \(handshake.prefix(60))")
            try await connection.write([0x81, 0x05] + Array("hello".utf8))
            let (bytes, closed) = await connection.readBytesToEnd()
            let closeFrame: [UInt8] = [0x88, 0x02, 0x03, 0xEA]
            let found = bytes.count >= 4 && (0...(bytes.count - 4)).contains { Array(bytes[$0..<($0 + 4)]) == closeFrame }
            #expect(found, "a close frame with code 1002, got \(bytes)")
            #expect(closed)
            let relayed = gate.comfyUIWebSockets.flatMap(\.receivedFrames)
            #expect(!relayed.contains(.text("hello")))
        }
    }

    /// A store that stops taking writes: `/readyz` says 503 and names it, requests that need a write get a JSON
    /// 500 body, and the log says so once, not once per request.
    @Test func aFailingStoreShowsInReadinessInAJSON500AndOnceInTheLog() async throws {
        let switchable = Mutex(false)
        let records = LogRecords()
        try await withGateway(
            wrapStore: { WriteFailingStore(base: $0, failing: { switchable.withLock { $0 } }) },
            logger: Logger(label: "gateway-test") { _ in records.handler() }
        ) { gate in
            _ = try await gate.makeUser("alice")
            #expect(try await TestHTTP.send(.GET, "\(gate.baseURL)/readyz").status == 200)
            switchable.withLock { $0 = true }

            let ready = try await TestHTTP.send(.GET, "\(gate.baseURL)/readyz")
            #expect(ready.status == 503)
            #expect((try ready.json()["store"] as? String)?.contains("read-only test store") == true)
            for _ in 0..<3 {
                let login = try await BrowserLoginTests.login(gate, user: "alice", password: "correct-horse-battery")
                #expect(login.status == 500)
                #expect(login.header("Content-Type") == "application/json")
                #expect((try login.json()["error"] as? String)?.isEmpty == false)
            }
            #expect(records.messages.filter { $0.contains("the store failed") }.count == 1)

            switchable.withLock { $0 = false }
            #expect(try await TestHTTP.send(.GET, "\(gate.baseURL)/readyz").status == 200)
            #expect(records.messages.contains { $0.contains("the store works again") })
        }
    }
}

/// A store whose writes fail while `failing()` says so, as a read-only database's do; reads work.
private final class WriteFailingStore: GatewayStore {
    let base: any GatewayStore
    let failing: @Sendable () -> Bool

    init(base: any GatewayStore, failing: @escaping @Sendable () -> Bool) {
        self.base = base
        self.failing = failing
    }

    private func write<T>(_ body: () async throws -> T) async throws -> T {
        if failing() { throw StoreError.unavailable("read-only test store: attempt to write a readonly database") }
        return try await body()
    }

    func insertUser(_ user: User) async throws { try await write { try await base.insertUser(user) } }
    func updateUser(_ user: User) async throws { try await write { try await base.updateUser(user) } }
    func user(id: String) async throws -> User? { try await base.user(id: id) }
    func user(named name: String) async throws -> User? { try await base.user(named: name) }
    func users() async throws -> [User] { try await base.users() }
    func userCount() async throws -> Int { try await base.userCount() }
    func insertToken(_ token: APIToken) async throws { try await write { try await base.insertToken(token) } }
    func token(id: String) async throws -> APIToken? { try await base.token(id: id) }
    func tokens(userID: String?) async throws -> [APIToken] { try await base.tokens(userID: userID) }
    func usableBcryptTokens(at date: Date) async throws -> [APIToken] { try await base.usableBcryptTokens(at: date) }
    func revokeToken(id: String, at date: Date) async throws -> Bool { try await write { try await base.revokeToken(id: id, at: date) } }
    func setTokenExpiry(id: String, expiresAt: Date?) async throws { try await write { try await base.setTokenExpiry(id: id, expiresAt: expiresAt) } }
    func touchToken(id: String, at date: Date) async throws { try await write { try await base.touchToken(id: id, at: date) } }
    func insertSession(_ session: Session) async throws { try await write { try await base.insertSession(session) } }
    func session(idDigest: String) async throws -> Session? { try await base.session(idDigest: idDigest) }
    func touchSession(idDigest: String, at date: Date) async throws { try await write { try await base.touchSession(idDigest: idDigest, at: date) } }
    func deleteSession(idDigest: String) async throws { try await write { try await base.deleteSession(idDigest: idDigest) } }
    func sessions(userID: String) async throws -> [Session] { try await base.sessions(userID: userID) }
    func deleteSessions(userID: String) async throws { try await write { try await base.deleteSessions(userID: userID) } }
    func deleteSessions(expiredBefore date: Date) async throws -> Int { try await write { try await base.deleteSessions(expiredBefore: date) } }
    func appendAudit(_ event: AuditEvent) async throws { try await write { try await base.appendAudit(event) } }
    func auditEvents(limit: Int) async throws -> [AuditEvent] { try await base.auditEvents(limit: limit) }
    func checkWritable() async throws { try await write { try await base.checkWritable() } }
    func insertPrompt(_ record: PromptRecord) async throws { try await write { try await base.insertPrompt(record) } }
    func prompt(id: String) async throws -> PromptRecord? { try await base.prompt(id: id) }
    func prompts(userID: String?, limit: Int) async throws -> [PromptRecord] { try await base.prompts(userID: userID, limit: limit) }
    func prompts(createdAfter date: Date) async throws -> [PromptRecord] { try await base.prompts(createdAfter: date) }
    func updatePromptStatus(id: String, status: PromptStatus, at date: Date) async throws -> Bool {
        try await write { try await base.updatePromptStatus(id: id, status: status, at: date) }
    }
    func comfyUserID(forUser userID: String) async throws -> String? { try await base.comfyUserID(forUser: userID) }
    func setComfyUserID(_ comfyUserID: String, forUser userID: String) async throws {
        try await write { try await base.setComfyUserID(comfyUserID, forUser: userID) }
    }
    func insertJob(_ job: Job) async throws { try await write { try await base.insertJob(job) } }
    func job(id: String) async throws -> Job? { try await base.job(id: id) }
    func job(userID: String, idempotencyKey: String) async throws -> Job? {
        try await base.job(userID: userID, idempotencyKey: idempotencyKey)
    }
    func updateJob(_ job: Job, expecting expected: JobState) async throws -> Bool {
        try await write { try await base.updateJob(job, expecting: expected) }
    }
    func jobs(userID: String?, states: Set<JobState>?, limit: Int, createdBefore: Date?) async throws -> [Job] {
        try await base.jobs(userID: userID, states: states, limit: limit, createdBefore: createdBefore)
    }
    func claimJob(id: String, backend: String, slots: Int, at date: Date) async throws -> Job? {
        try await write { try await base.claimJob(id: id, backend: backend, slots: slots, at: date) }
    }
    func activeJobCounts() async throws -> [String: Int] { try await base.activeJobCounts() }
    func queuedJobs() async throws -> [QueuedJob] { try await base.queuedJobs() }
    func loginFailures(keys: [String]) async throws -> [LoginFailureRecord] { try await base.loginFailures(keys: keys) }
    func recordLoginFailure(policies: [String: BackoffPolicy], at date: Date) async throws -> [LoginFailureRecord] {
        try await write { try await base.recordLoginFailure(policies: policies, at: date) }
    }
    func deleteLoginFailures(key: String) async throws { try await write { try await base.deleteLoginFailures(key: key) } }
    func backendControls() async throws -> [BackendControl] { try await base.backendControls() }
    func setBackendControl(_ control: BackendControl) async throws {
        try await write { try await base.setBackendControl(control) }
    }
    func recordBackendStatus(_ record: BackendStatusRecord) async throws {
        try await write { try await base.recordBackendStatus(record) }
    }
    func backendStatuses() async throws -> [BackendStatusRecord] { try await base.backendStatuses() }
    func jobs(inStates states: Set<JobState>) async throws -> [Job] { try await base.jobs(inStates: states) }
    func countJobs(userID: String, states: Set<JobState>?, createdAfter: Date?) async throws -> Int {
        try await base.countJobs(userID: userID, states: states, createdAfter: createdAfter)
    }
    func gpuSeconds(userID: String?, completedAfter: Date) async throws -> [String: Double] {
        try await base.gpuSeconds(userID: userID, completedAfter: completedAfter)
    }
    func usage(from: Date, to: Date) async throws -> [UsageSummary] { try await base.usage(from: from, to: to) }
    func expireJobs(completedBefore date: Date) async throws -> [Job] {
        try await write { try await base.expireJobs(completedBefore: date) }
    }
    func deleteJobs(expiredBefore date: Date) async throws -> Int {
        try await write { try await base.deleteJobs(expiredBefore: date) }
    }
    func deleteJob(id: String) async throws -> Bool { try await write { try await base.deleteJob(id: id) } }
    func insertAsset(_ asset: Asset) async throws { try await write { try await base.insertAsset(asset) } }
    func asset(id: String) async throws -> Asset? { try await base.asset(id: id) }
    func assets(userID: String, hash: String) async throws -> [Asset] {
        try await base.assets(userID: userID, hash: hash)
    }
    func assets(jobID: String) async throws -> [Asset] { try await base.assets(jobID: jobID) }
    func deleteAsset(id: String) async throws -> Bool { try await write { try await base.deleteAsset(id: id) } }
    func countAssets(hash: String) async throws -> Int { try await base.countAssets(hash: hash) }
    func userQuota(userID: String) async throws -> UserQuota? { try await base.userQuota(userID: userID) }
    func setUserQuota(_ quota: UserQuota) async throws { try await write { try await base.setUserQuota(quota) } }
    func deleteUserQuota(userID: String) async throws {
        try await write { try await base.deleteUserQuota(userID: userID) }
    }
    func userQuotas() async throws -> [UserQuota] { try await base.userQuotas() }
}

/// Log messages collected in memory.
final class LogRecords: Sendable {
    private let lines = Mutex<[String]>([])

    var messages: [String] { lines.withLock { $0 } }

    func handler() -> some LogHandler { RecordingHandler(records: self) }

    fileprivate func append(_ line: String) { lines.withLock { $0.append(line) } }

    private struct RecordingHandler: LogHandler {
        let records: LogRecords
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            records.append("\(event.level) \(event.message) \(event.metadata ?? [:])")
        }
    }
}

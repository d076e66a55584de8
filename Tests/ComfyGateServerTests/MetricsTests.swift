import ComfyGateCore
import ComfyGateServer
import ComfyGateTestSupport
import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import NIOWebSocket
import Synchronization
import Testing
import WSClient

/// `GET /metrics` and the access log, on a real gateway over loopback in front of the ComfyUI stand-in.
@Suite struct MetricsTests {
    /// The log lines a gateway wrote, as JSON objects (`log_format = "json"`).
    final class CapturedLog: Sendable {
        private let lines = Mutex<[String]>([])

        var all: [String] { lines.withLock { $0 } }

        var logger: Logger {
            var logger = Logger(label: "comfygate") { label in
                StructuredLogHandler(label: label, format: .json) { line in self.lines.withLock { $0.append(line) } }
            }
            logger.logLevel = .info
            return logger
        }

        /// The access-log lines, parsed.
        func requests() throws -> [[String: Any]] {
            try all.compactMap { line in
                let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
                return object["msg"] as? String == "request" ? object : nil
            }
        }
    }

    /// A Prometheus text exposition, parsed: samples by name and labels; `# HELP`/`# TYPE` lines skipped.
    struct Exposition {
        struct Sample {
            let name: String
            let labels: [String: String]
            let value: Double
        }

        let samples: [Sample]

        init(_ text: String) throws {
            var samples: [Sample] = []
            for line in text.split(separator: "\n") where !line.hasPrefix("#") && !line.isEmpty {
                let valueStart = try #require(line.lastIndex(of: " "), "no value in \(line)")
                let value = try #require(Double(line[line.index(after: valueStart)...]), "bad value in \(line)")
                let series = line[..<valueStart]
                guard let open = series.firstIndex(of: "{") else {
                    samples.append(Sample(name: String(series), labels: [:], value: value))
                    continue
                }
                #expect(series.hasSuffix("}"), "\(line)")
                var labels: [String: String] = [:]
                for pair in series[series.index(after: open)..<series.index(before: series.endIndex)].split(separator: ",") {
                    let parts = pair.split(separator: "=", maxSplits: 1)
                    try #require(parts.count == 2 && parts[1].hasPrefix("\"") && parts[1].hasSuffix("\""), "bad label in \(line)")
                    labels[String(parts[0])] = String(parts[1].dropFirst().dropLast())
                }
                samples.append(Sample(name: String(series[..<open]), labels: labels, value: value))
            }
            self.samples = samples
        }

        /// The value of the one sample with exactly these labels; nil when there is none.
        func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
            samples.first { $0.name == name && $0.labels == labels }?.value
        }

        /// The sum of a metric's samples over every label value.
        func total(_ name: String, where include: ([String: String]) -> Bool = { _ in true }) -> Double {
            samples.filter { $0.name == name && include($0.labels) }.map(\.value).reduce(0, +)
        }
    }

    static let wrongPassword = "not-the-password-42"

    /// A scrape token file (mode 0600) and the token it holds.
    static func scrapeToken() throws -> (token: String, scrapeToken: ScrapeToken) {
        let token = "scrape-" + UUID().uuidString
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("comfygate-scrape-" + UUID().uuidString)
        try Data((token + "\n").utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file.path)
        return (token, try ScrapeToken(file: file.path))
    }

    /// Reads `/metrics` with `headers` until `done` holds for what it answers (answers are recorded once written,
    /// a moment after the client has read them), at most 10 s.
    static func metrics(
        _ gate: GatewayHarness, _ headers: [(String, String)], until done: (Exposition) -> Bool = { _ in true }
    ) async throws -> Exposition {
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            let response = try await TestHTTP.send(.GET, gate.baseURL + "/metrics", headers: headers)
            #expect(response.status == 200)
            #expect(response.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8")
            let exposition = try Exposition(response.text)
            if done(exposition) || ContinuousClock.now > deadline { return exposition }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    @Test func countsTimesAndLogsEveryRequestPathWithoutASecret() async throws {
        let log = CapturedLog()
        let (scrapeToken, scrapeTokenValue) = try Self.scrapeToken()
        let (gatewayMetrics, readCount, secrets) = try await withGateway(configure: { $0.metricsToken = scrapeTokenValue }, logger: log.logger) { gate in
            let (_, aliceToken) = try await gate.makeUser("alice")
            let (_, adminToken) = try await gate.makeUser("root", role: .admin)
            let alice = [("Authorization", "Bearer \(aliceToken)")]
            let admin = [("Authorization", "Bearer \(adminToken)")]
            let scraper = [("Authorization", "Bearer \(scrapeToken)")]
            let bogusToken = "cg_" + String(repeating: "z", count: 40)

            // Reads of ComfyUI: the first by the router, which fills the caches; then, once the gateway knows how
            // ComfyUI keeps its users (asked at start), by the fast path; one more with the token in the query.
            var reads = 0
            var fast = false
            while reads < 4 || (!fast && reads < 100) {
                #expect(try await TestHTTP.send(.GET, gate.baseURL + "/system_stats", headers: alice).status == 200)
                reads += 1
                fast = try log.requests().contains { $0["via"] as? String == "fast" }
                if !fast && reads >= 4 { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(fast, "the cached token's reads take the fast path")
            #expect(try await TestHTTP.send(.GET, gate.baseURL + "/system_stats?token=\(aliceToken)").status == 200)
            let readTotal = reads + 1
            // Refused: no credential, a token that matches none, a route for admins.
            #expect(try await TestHTTP.send(.GET, gate.baseURL + "/system_stats").status == 401)
            #expect(try await TestHTTP.send(.GET, gate.baseURL + "/system_stats", headers: [("Authorization", "Bearer \(bogusToken)")]).status == 401)
            #expect(try await TestHTTP.send(.GET, gate.baseURL + "/manager/queue", headers: alice).status == 403)
            // A failed sign-in.
            let failed = try await TestHTTP.send(
                .POST, gate.baseURL + "/login", headers: [("Content-Type", "application/x-www-form-urlencoded")],
                body: "username=alice&password=\(Self.wrongPassword)")
            #expect(failed.status == 401)

            // A websocket, open while the metrics are read.
            let opened = Mutex<Exposition?>(nil)
            try await WebSocketClient.connect(
                url: "\(gate.webSocketURL)/ws?clientId=metrics",
                configuration: WebSocketClientConfiguration(additionalHeaders: [.authorization: "Bearer \(aliceToken)"], autoPing: .disabled),
                logger: Logger(label: "metrics-test")
            ) { inbound, outbound, _ in
                var messages = inbound.messages(maxSize: 1 << 20).makeAsyncIterator()
                _ = try await messages.next()
                let exposition = try await Self.metrics(gate, admin) { exposition in
                    exposition.total("comfygate_http_requests_total") { $0["route"] != "metrics" } >= Double(readTotal + 5)
                }
                opened.withLock { $0 = exposition }
                try await outbound.close(.normalClosure, reason: nil)
            }
            let metrics = try #require(opened.withLock { $0 })
            let requests = "comfygate_http_requests_total"
            #expect(metrics.value(requests, ["route": "comfyui", "status": "200"]) == Double(readTotal))
            #expect(metrics.value(requests, ["route": "refused", "status": "401"]) == 2)
            #expect(metrics.value(requests, ["route": "refused", "status": "403"]) == 1)
            #expect(metrics.value(requests, ["route": "login", "status": "401"]) == 1)
            #expect(metrics.value(requests, ["route": "websocket", "status": "101"]) == 1)
            #expect(metrics.total(requests) { $0["route"] != "metrics" } == Double(readTotal + 5))
            let durations = "comfygate_http_request_duration_seconds_count"
            #expect(metrics.value(durations, ["via": "websocket"]) == 1)
            #expect((metrics.value(durations, ["via": "fast"]) ?? 0) >= 1)
            #expect(metrics.total(durations) { $0["via"] != "websocket" } == metrics.total(requests) { $0["route"] != "websocket" })
            #expect(metrics.value("comfygate_http_request_duration_seconds_bucket", ["via": "websocket", "le": "+Inf"]) == 1)
            let failures = "comfygate_auth_failures_total"
            #expect(metrics.value(failures, ["kind": "missing"]) == 1)
            #expect(metrics.value(failures, ["kind": "unknown_token"]) == 1)
            #expect(metrics.value(failures, ["kind": "bad_password"]) == 1)
            #expect(metrics.total(failures) == 3)
            #expect(metrics.value("comfygate_websockets_open") == 1)
            #expect(metrics.value("comfygate_backend_up", ["backend": "comfyui"]) == 1)
            let closed = try await Self.metrics(gate, admin) { $0.value("comfygate_websockets_open") == 0 }
            #expect(closed.value("comfygate_websockets_open") == 0)

            // Who may read them: admins (token or session) and the scraper; nobody else, and the scrape token
            // opens nothing else.
            #expect(try await TestHTTP.send(.GET, gate.baseURL + "/metrics").status == 401)
            #expect(try await TestHTTP.send(.GET, gate.baseURL + "/metrics", headers: alice).status == 403)
            _ = try await Self.metrics(gate, scraper)
            let upstreamBefore = gate.comfyUIRequests.count
            #expect(try await TestHTTP.send(.GET, gate.baseURL + "/system_stats", headers: scraper).status == 403)
            #expect(try await TestHTTP.send(.GET, gate.baseURL + "/system_stats?token=\(scrapeToken)").status == 403)
            #expect(gate.comfyUIRequests.count == upstreamBefore, "the scrape token never reaches ComfyUI")
            let signIn = try await TestHTTP.send(
                .POST, gate.baseURL + "/login", headers: [("Content-Type", "application/x-www-form-urlencoded")],
                body: "username=root&password=correct-horse-battery")
            #expect(signIn.status == 303)
            let cookie = try #require(signIn.header("Set-Cookie")?.split(separator: ";").first.map(String.init))
            _ = try await Self.metrics(gate, [("Cookie", cookie)])

            _ = try await Self.metrics(gate, scraper)
            let cookieValue = String(cookie.split(separator: "=", maxSplits: 1).last ?? "")
            return (
                try #require(gate.metrics), readTotal,
                [aliceToken, adminToken, scrapeToken, bogusToken, Self.wrongPassword, "correct-horse-battery", cookieValue]
            )
        }

        // One access-log line per request, each counted and timed (the gateway has stopped: all are recorded).
        let final = try Exposition(String(decoding: gatewayMetrics.exposition(), as: UTF8.self))
        let requests = "comfygate_http_requests_total"
        let durations = "comfygate_http_request_duration_seconds_count"
        let lines = try log.requests()
        #expect(lines.count == Int(final.total(requests)))
        #expect(final.total(durations) == final.total(requests))
        for via in ["fast", "router", "websocket"] {
            #expect(Double(lines.filter { $0["via"] as? String == via }.count) == final.value(durations, ["via": via]))
        }
        let keys: Set<String> = ["time", "level", "label", "msg", "method", "path", "status", "bytes", "duration_ms", "user",
            "client", "route", "via"]
        for line in lines { #expect(Set(line.keys) == keys, "\(line)") }
        let reads = lines.filter { $0["path"] as? String == "/system_stats" && $0["status"] as? Int == 200 }
        #expect(reads.count == readCount)
        #expect(reads.allSatisfy { $0["user"] as? String == "alice" && $0["route"] as? String == "comfyui" && $0["method"] as? String == "GET" })
        #expect(reads.allSatisfy { $0["client"] as? String == "127.0.0.1" && ($0["bytes"] as? Int ?? 0) > 0 })
        #expect(reads.allSatisfy { ($0["duration_ms"] as? Double ?? -1) >= 0 })
        #expect(lines.contains { $0["via"] as? String == "fast" && $0["path"] as? String == "/system_stats" })
        let socket = try #require(lines.first { $0["via"] as? String == "websocket" })
        #expect(socket["path"] as? String == "/ws" && socket["status"] as? Int == 101 && socket["user"] as? String == "alice")
        #expect(lines.contains { $0["path"] as? String == "/login" && $0["status"] as? Int == 401 && $0["user"] as? String == "-" })
        #expect(lines.contains { $0["path"] as? String == "/metrics" && $0["user"] as? String == "[scraper]" && $0["route"] as? String == "metrics" })

        let everything = log.all.joined(separator: "\n")
        for secret in secrets { #expect(!everything.contains(secret), "a secret in the log") }
        #expect(!everything.contains("token="), "no query string in the log")
    }

    @Test func metricsOffAnswerNotFoundAndRecordNothingAndTheAccessLogCanBeOff() async throws {
        let log = CapturedLog()
        try await withGateway(configure: { $0.metrics = false; $0.accessLog = false }, logger: log.logger) { gate in
            let (_, adminToken) = try await gate.makeUser("root", role: .admin)
            let admin = [("Authorization", "Bearer \(adminToken)")]
            #expect(try await TestHTTP.send(.GET, gate.baseURL + "/system_stats", headers: admin).status == 200)
            let answer = try await TestHTTP.send(.GET, gate.baseURL + "/metrics", headers: admin)
            #expect(answer.status == 404)
            #expect(try answer.json()["error"] as? String == "metrics are turned off on this gateway")
            #expect(try await TestHTTP.send(.GET, gate.baseURL + "/metrics").status == 401)
        }
        #expect(try log.requests().isEmpty)
        #expect(!log.all.isEmpty, "the gateway's other lines are still logged")
    }
}

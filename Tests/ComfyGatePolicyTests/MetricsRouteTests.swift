import ComfyGatePolicy
import Testing

/// `/metrics` as the access policy decides it, and the route classes the metrics count by.
@Suite struct MetricsRouteTests {
    let admin = Caller(userID: "u-admin", userName: "root", role: .admin)
    let alice = Caller(userID: "u-alice", userName: "alice", role: .user)
    let scraper = Caller(userID: "", userName: "[scraper]", role: .scraper)

    private func decide(_ method: String, _ target: String, _ caller: Caller, servesMetrics: Bool = true, webSocket: Bool = false) -> AccessDecision {
        AccessPolicy(servesMetrics: servesMetrics).decide(RequestFacts(method: method, target: target, isWebSocket: webSocket), caller: caller)
    }

    @Test func adminsAndTheScraperReadTheMetricsAndNobodyElse() {
        #expect(decide("GET", "/metrics", admin) == .metrics)
        #expect(decide("HEAD", "/metrics", admin) == .metrics)
        #expect(decide("GET", "/metrics", scraper) == .metrics)
        #expect(decide("GET", "/metrics", alice) == .refuse(.forbidden("the metrics are for admins and the metrics scraper")))
        #expect(decide("GET", "/metrics", Caller(userID: "v", userName: "vic", role: .viewer)).isRefusal(status: 403))
        #expect(decide("POST", "/metrics", admin).isRefusal(status: 405))
        #expect(decide("GET", "/metrics", admin, webSocket: true).isRefusal(status: 405))
    }

    @Test func withMetricsOffTheRouteIsNotFoundForEveryone() {
        for caller in [admin, alice, scraper] {
            #expect(decide("GET", "/metrics", caller, servesMetrics: false) == .refuse(.notFound("metrics are turned off on this gateway")))
        }
    }

    @Test(arguments: [("GET", "/system_stats"), ("POST", "/prompt"), ("GET", "/ws"), ("GET", "/view?filename=a.png"),
        ("GET", "/api/v2/jobs"), ("GET", "/account"), ("GET", "/metrics/"), ("GET", "/users")])
    func theScrapeTokenReadsTheMetricsOnly(_ method: String, _ target: String) {
        #expect(decide(method, target, scraper, webSocket: target == "/ws") == .refuse(.forbidden("the scrape token reads /metrics only")))
    }

    @Test func routeClassesComeFromTheDecision() {
        let policy = AccessPolicy()
        func route(_ method: String, _ target: String, _ caller: Caller, webSocket: Bool = false) -> RouteClass {
            let facts = RequestFacts(method: method, target: target, isWebSocket: webSocket)
            return RouteClass(policy.decide(facts, caller: caller), path: facts.path)
        }
        #expect(route("GET", "/system_stats", alice) == .comfyui)
        #expect(route("POST", "/prompt", alice) == .prompt)
        #expect(route("POST", "/api/prompt", admin) == .prompt)
        #expect(route("GET", "/view?filename=x.png&type=output", admin) == .view)
        #expect(route("GET", "/api/view?filename=x.png", admin) == .view)
        #expect(route("POST", "/upload/image", alice) == .upload)
        #expect(route("POST", "/api/upload/image", admin) == .upload)
        #expect(route("GET", "/ws?clientId=a", alice, webSocket: true) == .websocket)
        #expect(route("GET", "/api/v2/jobs", alice) == .v2)
        #expect(route("GET", "/account", alice) == .page)
        #expect(route("GET", "/users", alice) == .gateway)
        #expect(route("GET", "/metrics", admin) == .metrics)
        #expect(route("GET", "/manager/queue", alice) == .refused)
        #expect(route("GET", "/login", alice) == .login)
        #expect(route("GET", "/healthz", alice) == .health)
        #expect(route("GET", "/comfygate/static/gateway.css", alice) == .static)
    }
}

extension AccessDecision {
    fileprivate func isRefusal(status: Int) -> Bool {
        if case .refuse(let refusal) = self { refusal.status == status } else { false }
    }
}

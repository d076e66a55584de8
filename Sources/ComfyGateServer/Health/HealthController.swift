import Foundation
import HTTPTypes
import Hummingbird

/// `/healthz` (the gateway answers) and `/readyz` (ComfyUI answers `/system_stats`), both unauthenticated.
struct HealthController: Sendable {
    let transport: any UpstreamTransport
    let upstreamDescription: String

    func addRoutes(to router: Router<GatewayRequestContext>) {
        router.get("/healthz") { _, _ in GatewayResponse.json(.ok, ["status": "ok"]) }
        router.get("/readyz") { _, _ in await self.readiness() }
    }

    private func readiness() async -> Response {
        let start = ContinuousClock.now
        let probe = UpstreamRequest(
            method: .get, pathAndQuery: "/system_stats", headers: [.accept: "application/json"],
            body: nil, contentLength: nil
        )
        do {
            let response = try await transport.send(probe)
            let elapsed = start.duration(to: .now)
            let milliseconds = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
            guard response.status == .ok else {
                return GatewayResponse.json(.serviceUnavailable, [
                    "status": "unavailable", "upstream": upstreamDescription,
                    "error": "/system_stats answered \(response.status.code)",
                ])
            }
            return GatewayResponse.json(.ok, [
                "status": "ready", "upstream": upstreamDescription, "latency_ms": (milliseconds * 10).rounded() / 10,
            ])
        } catch {
            return GatewayResponse.json(.serviceUnavailable, ["status": "unavailable", "upstream": upstreamDescription, "error": error.cause])
        }
    }
}

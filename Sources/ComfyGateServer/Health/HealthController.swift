import ComfyGateCore
import Foundation
import HTTPTypes
import Hummingbird

/// `/healthz` (the gateway answers) and `/readyz` (the store takes writes and ComfyUI answers `/system_stats`),
/// both unauthenticated.
struct HealthController: Sendable {
    let transport: any UpstreamTransport
    let upstreamDescription: String
    let store: any GatewayStore
    let storeHealth: StoreHealth

    func addRoutes(to router: Router<GatewayRequestContext>) {
        router.get("/healthz") { _, _ in GatewayResponse.json(.ok, ["status": "ok"]) }
        router.get("/readyz") { _, _ in await self.readiness() }
        // The Comfy API v2 door's own check: the gateway answers; it never names or probes ComfyUI.
        router.get("/api/v2/health") { _, _ in GatewayResponse.json(.ok, ["status": "healthy"]) }
        router.head("/api/v2/health") { _, _ in Response(status: .ok) }
    }

    private func readiness() async -> Response {
        do {
            try await store.checkWritable()
            storeHealth.recordSuccess()
        } catch {
            storeHealth.recordFailure(error)
            return GatewayResponse.json(.serviceUnavailable, ["status": "unavailable", "store": StoreHealth.cause(of: error)])
        }
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

import ComfyGateCore
import Foundation
import HTTPTypes
import Hummingbird

/// `/healthz` (the gateway answers) and `/readyz` (the store takes writes and a backend that is not drained
/// answers `/system_stats`), both unauthenticated. `/readyz` lists every backend: its state, queue, the jobs the
/// gateway has out there, devices and VRAM.
struct HealthController: Sendable {
    let pool: BackendPool
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
        let probes = await withTaskGroup(of: (Int, Probe).self) { group in
            for (index, backend) in pool.members.enumerated() {
                group.addTask { (index, await Self.probe(backend)) }
            }
            var probes = [Probe?](repeating: nil, count: pool.members.count)
            for await (index, probe) in group { probes[index] = probe }
            return probes.compactMap { $0 }
        }
        var listed: [[String: any Sendable]] = []
        for (backend, probe) in zip(pool.members, probes) {
            let snapshot = backend.snapshot(inFlight: pool.activeJobs(on: backend))
            var entry: [String: any Sendable] = [
                "name": snapshot.name, "url": snapshot.url, "state": probe.error == nil ? "up" : "down", "drained": snapshot.drained,
                "weight": snapshot.weight, "slots": snapshot.slots, "in_flight": snapshot.inFlight,
                "latency_ms": probe.milliseconds, "node_catalog": backend.current.catalog != nil,
                "breaker": backend.current.state == .down ? "open" : "closed",
                "devices": probe.seen?.devices.map { device -> [String: any Sendable] in
                    ["name": device.name, "type": device.type, "vram_total": device.vramTotal ?? 0, "vram_free": device.vramFree ?? 0]
                } ?? [],
            ]
            if let seen = probe.seen {
                entry["queue_running"] = seen.running.count
                entry["queue_pending"] = seen.pending
            }
            if let error = probe.error { entry["error"] = error }
            listed.append(entry)
        }
        let primary = pool.primary
        let primaryProbe = probes[pool.members.firstIndex { $0 === primary } ?? 0]
        let ready = zip(pool.members, probes).contains { backend, probe in probe.error == nil && !backend.current.drained }
        var answer: [String: any Sendable] = [
            "status": ready ? "ready" : "unavailable", "upstream": primary.displayURL, "latency_ms": primaryProbe.milliseconds,
            "backends": listed,
        ]
        if !ready {
            answer["error"] = probes.allSatisfy({ $0.error != nil })
                ? (primaryProbe.error ?? "no backend answers") : "every backend that answers is drained"
        }
        return GatewayResponse.json(ready ? .ok : .serviceUnavailable, answer)
    }

    private struct Probe: Sendable {
        var seen: BackendWatch.Seen?
        var error: String?
        var milliseconds: Double
    }

    private static func probe(_ backend: Backend) async -> Probe {
        let start = ContinuousClock.now
        let result = await BackendWatch.probe(backend)
        let elapsed = start.duration(to: .now)
        let milliseconds = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        switch result {
        case .success(let seen): return Probe(seen: seen, error: nil, milliseconds: (milliseconds * 10).rounded() / 10)
        case .failure(let failure): return Probe(seen: nil, error: failure.cause, milliseconds: (milliseconds * 10).rounded() / 10)
        }
    }
}

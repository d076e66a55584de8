import ComfyGateCore
import ComfyGateJobs
import ComfyGatePolicy
import Foundation
import Logging
import ServiceLifecycle

/// Watches every backend: its `/system_stats` and `/queue` every ``interval`` while it answers (sooner after a
/// failure, less often while it is down), its node catalog and model lists on every return and every
/// ``catalogLifetime``; keeps each one's circuit breaker; follows the drains operators set in the store; records
/// what it sees in the store for `comfygate backends`. Says in the log when a backend goes down or comes back.
struct BackendWatch: Service {
    let pool: BackendPool
    let store: any GatewayStore
    /// How this gateway names itself in the store's backend records.
    let replica: String
    /// Where each probe's outcome is counted (`comfygate_backend_up`).
    let metrics: GatewayMetrics?
    let logger: Logger
    /// Told when a backend goes down or comes back up (the job queue moves and reconciles its jobs).
    let onChange: @Sendable (Backend, BackendHealth.State) async -> Void
    var interval: Duration = .seconds(2)

    /// How often the drains in the store are read, and what this gateway sees is recorded there.
    static let controlsInterval: Duration = .seconds(1)
    static let recordEvery = 5
    /// How long a node catalog is used before it is read again.
    static let catalogLifetime: TimeInterval = 60
    /// The longest wait between two probes of a backend that is down.
    static let longestRetry: Duration = .seconds(5)
    /// How the watch's requests name themselves to ComfyUI.
    static let userAgent = "comfygate-watch"
    /// The longest a probe may take (and a backend stay silent on the watch's connections): a probe never holds up
    /// the gateway's shutdown for longer, and a backend this slow to answer counts as failing.
    static let probeTimeout: TimeInterval = 10

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                for backend in pool.members { group.addTask { await watch(backend) } }
                group.addTask { await followControls() }
                await group.waitForAll()
            }
        }
    }

    private func watch(_ backend: Backend) async {
        var retry: Duration = .milliseconds(250)
        while !Task.isCancelled {
            await look(at: backend)
            let health = backend.current
            let wait: Duration
            switch (health.state, health.consecutiveFailures) {
            case (.up, 0): wait = interval; retry = .milliseconds(250)
            case (.up, _): wait = .milliseconds(250)
            default: wait = retry; retry = min(retry * 2, Self.longestRetry)
            }
            try? await Task.sleep(for: wait)
        }
    }

    /// Probes one backend and records the outcome; reads its catalog when it is due.
    func look(at backend: Backend) async {
        let probe = (try? await withDeadline(.seconds(Self.probeTimeout)) { await Self.probe(backend) })
            ?? .failure(ProbeFailure(cause: "no answer within \(Int(Self.probeTimeout)) s"))
        let now = Date()
        switch probe {
        case .success(let seen):
            metrics?.backendHealth(name: backend.name, up: true)
            let (cameUp, needsCatalog) = backend.update { health in
                health.comfyUIVersion = seen.version
                health.devices = seen.devices
                health.running = seen.running
                health.pending = seen.pending
                let cameUp = health.recordSuccess(at: now)
                let due = health.catalogReadAt.map { now.timeIntervalSince($0) > Self.catalogLifetime } ?? true
                return (cameUp, cameUp || due)
            }
            if needsCatalog { await backend.readCatalog(within: .seconds(Self.probeTimeout)) }
            if cameUp {
                logger.notice("ComfyUI answers", metadata: ["backend": "\(backend.name)", "upstream": "\(backend.displayURL)"])
                pool.announceReturn(of: backend)
                await onChange(backend, .up)
            }
        case .failure(let failure):
            metrics?.backendHealth(name: backend.name, up: false)
            if backend.recordFailure(failure.cause, logger: logger) { await onChange(backend, .down) }
        }
    }

    /// Reads the operators' drains every second and records what this gateway sees every few seconds.
    private func followControls() async {
        var round = 0
        while !Task.isCancelled {
            if let controls = try? await store.backendControls() {
                let drained = Set(controls.filter(\.drained).map(\.name))
                for backend in pool.members {
                    let isDrained = drained.contains(backend.name)
                    let changed = backend.update { health in
                        defer { health.drained = isDrained }
                        return health.drained != isDrained
                    }
                    if changed {
                        logger.notice(isDrained ? "ComfyUI backend drained" : "ComfyUI backend enabled again", metadata: ["backend": "\(backend.name)"])
                        if !isDrained {
                            pool.announceReturn(of: backend)
                            await onChange(backend, backend.current.state)
                        }
                    }
                }
            }
            if round % Self.recordEvery == 0 { await record() }
            round += 1
            try? await Task.sleep(for: Self.controlsInterval)
        }
    }

    private func record() async {
        let encoder = BackendSnapshot.encoder()
        let now = Date()
        for backend in pool.members {
            guard let json = try? encoder.encode(backend.snapshot(inFlight: pool.activeJobs(on: backend))) else { continue }
            try? await store.recordBackendStatus(BackendStatusRecord(
                name: backend.name, replica: replica, status: String(decoding: json, as: UTF8.self), observedAt: now))
        }
    }

    // MARK: Probe

    /// What one look at a backend found.
    struct Seen: Sendable {
        var version: String?
        var devices: [BackendSnapshot.Device]
        var running: Set<String>
        var pending: Int
    }

    /// `GET /system_stats` (whose failure is the probe's, its cause in one line) and `GET /queue` of a backend.
    static func probe(_ backend: Backend) async -> Result<Seen, ProbeFailure> {
        do {
            let stats = try await backend.probes.systemStats()
            // `/system_stats` says whether it answers; its queue is only shown (a proxy in front may not pass `/queue`).
            let queue = (try? await backend.probes.queue()) ?? (running: [], pending: [])
            let devices = (stats["devices"]?.arrayValue ?? []).map { device in
                BackendSnapshot.Device(
                    name: device["name"]?.stringValue ?? "?", type: device["type"]?.stringValue ?? "?",
                    vramTotal: Self.integer(device["vram_total"]), vramFree: Self.integer(device["vram_free"]))
            }
            return .success(Seen(
                version: stats["system"]?["comfyui_version"]?.stringValue, devices: devices, running: queue.running,
                pending: queue.pending.count))
        } catch let error as UpstreamError {
            return .failure(ProbeFailure(cause: error.cause))
        } catch {
            return .failure(ProbeFailure(cause: "\(error)"))
        }
    }

    private static func integer(_ value: PolicyJSON?) -> Int? {
        guard case .number(let literal)? = value else { return nil }
        return Int(literal) ?? Double(literal).map { Int($0) }
    }

    struct ProbeFailure: Error {
        let cause: String
    }
}

import ComfyGateCore
import ComfyGateJobs
import Foundation
import Logging
import Synchronization

/// One ComfyUI the gateway sends work to: how it is reached (HTTP transport, job calls, request headers) and
/// what the gateway last saw of it.
final class Backend: Sendable {
    let configuration: BackendConfiguration
    let transport: any UpstreamTransport
    /// The job queue's calls to it.
    let calls: ComfyUIBackend
    /// The watch's calls to it, on connections of their own (a busy pool never delays them) and named apart in
    /// ComfyUI's log.
    let probes: ComfyUIBackend
    /// The headers it gets on forwarded requests (its own `Origin`).
    let headers: UpstreamRequestHeaders
    private let health: Mutex<BackendHealth>

    init(
        configuration: BackendConfiguration, transport: any UpstreamTransport, probeTransport: any UpstreamTransport,
        headers: UpstreamRequestHeaders
    ) {
        self.configuration = configuration
        self.transport = transport
        self.calls = ComfyUIBackend(transport: transport, name: configuration.name)
        self.probes = ComfyUIBackend(transport: probeTransport, name: configuration.name, userAgent: BackendWatch.userAgent)
        self.headers = headers
        self.health = Mutex(BackendHealth())
    }

    var name: String { configuration.name }
    var url: URL { configuration.url }
    /// Jobs it may have at once.
    var slots: Int { configuration.slots ?? 1 }

    /// What the gateway last saw of it.
    var current: BackendHealth { health.withLock { $0 } }

    /// Whether requests and jobs may go to it: it answers and is not drained.
    var isAvailable: Bool { health.withLock { $0.isAvailable && !$0.drained } }

    /// Changes what is known of it; answers what the change returns.
    func update<T>(_ change: (inout BackendHealth) -> T) -> T { health.withLock { change(&$0) } }

    /// Counts a failure (a probe's, or a hand-over's) against its circuit breaker, and says in the log when that
    /// opened it; true then.
    func recordFailure(_ cause: String, logger: Logger) -> Bool {
        let opened = update { $0.recordFailure(cause, at: Date()) }
        if opened {
            logger.warning("ComfyUI does not answer", metadata: [
                "backend": "\(name)", "upstream": "\(displayURL)", "cause": "\(cause)",
                "effect": "no new work goes there until it answers; its waiting jobs go to the others",
            ])
        }
        return opened
    }

    /// Reads its node catalog (`/object_info`, on the watch's connections, within `limit`) and keeps it; false when
    /// it could not be read.
    @discardableResult
    func readCatalog(within limit: Duration) async -> Bool {
        guard let info = try? await withDeadline(limit, { try await self.probes.objectInfo() }),
            let catalog = NodeCatalog(objectInfo: info)
        else { return false }
        update { health in
            health.catalog = catalog
            health.catalogReadAt = Date()
        }
        return true
    }

    /// The model files of `files` it lacks, by its node catalog; nil when it has not been read yet.
    func missing(_ files: ModelFiles) -> [String]? {
        guard !files.references.isEmpty else { return [] }
        return health.withLock { $0.catalog }.map(files.missing(in:))
    }
}

extension Backend {
    /// Its URL as shown to people: without user information.
    var displayURL: String {
        guard var components = URLComponents(url: url, resolvingAgainstBaseURL: false) else { return url.absoluteString }
        components.user = nil
        components.password = nil
        return components.string ?? url.absoluteString
    }

    /// What is known of it now, with the jobs the gateway has out there.
    func snapshot(inFlight: Int) -> BackendSnapshot {
        let health = current
        return BackendSnapshot(
            name: name, url: displayURL, state: health.state.rawValue, drained: health.drained, weight: configuration.weight,
            slots: slots, inFlight: inFlight, queueRunning: health.running.count, queuePending: health.pending,
            devices: health.devices, comfyUIVersion: health.comfyUIVersion, lastSeen: health.lastSeen, since: health.since,
            cause: health.cause, labels: configuration.labels)
    }
}

import ComfyGateCore
import ComfyGateJobs
import Foundation
import Synchronization

/// Every ComfyUI backend of the gateway, in the configured order, and the one place that says which of them a
/// request or a job goes to.
final class BackendPool: Sendable {
    let members: [Backend]
    /// Jobs out at each backend, as this gateway's job queue last counted them (handed over or being handed over).
    private let active = Mutex<[String: Int]>([:])
    /// Told when a backend answers again after being down (or for the first time).
    private let returnObservers = Mutex<[@Sendable (Backend) -> Void]>([])

    init(members: [Backend]) {
        precondition(!members.isEmpty, "a gateway has at least one backend")
        self.members = members
    }

    /// Builds each configured backend with its transports (one for requests, one for the watch): pooled SwiftNIO
    /// connections for http, AsyncHTTPClient for https.
    convenience init(configuration: GatewayConfiguration, headers: (URL) -> UpstreamRequestHeaders) {
        self.init(members: configuration.backends.map { backend in
            Backend(
                configuration: backend, transport: Self.makeTransport(for: backend.url, configuration: configuration),
                probeTransport: Self.makeTransport(
                    for: backend.url, configuration: configuration, readTimeout: min(configuration.upstreamTimeout, BackendWatch.probeTimeout)),
                headers: headers(backend.url))
        })
    }

    /// Every transport of every backend, to close when the gateway stops.
    var transports: [any UpstreamTransport] { members.flatMap { [$0.transport, $0.probes.transport] } }

    /// - Parameter readTimeout: how long the backend may stay silent (`upstream_timeout` unless given).
    static func makeTransport(for url: URL, configuration: GatewayConfiguration, readTimeout: TimeInterval? = nil) -> any UpstreamTransport {
        let silence = readTimeout ?? configuration.upstreamTimeout
        if url.scheme?.lowercased() == "https" {
            return HTTPClientTransport(upstream: url, connectTimeout: configuration.upstreamConnectTimeout, readTimeout: silence)
        }
        return PooledUpstreamTransport(upstream: url, connectTimeout: configuration.upstreamConnectTimeout, readTimeout: silence)
    }

    /// Whether there is more than one backend (then files and events must be looked for on the right one).
    var isShared: Bool { members.count > 1 }

    /// Where requests that are not about one job go (ComfyUI's front end, node catalog, models, user data): the
    /// first backend in the configured order whose breaker is closed and that is not drained, else the first whose
    /// breaker is closed, else the first.
    var primary: Backend {
        members.first(where: \.isAvailable) ?? members.first(where: { $0.current.isAvailable }) ?? members[0]
    }

    func backend(named name: String) -> Backend? {
        members.first { $0.name == name }
    }

    /// The backend a job was handed to: by name, or by URL for jobs stored before backends had names; nil when it
    /// was never handed over or its backend is no longer configured.
    func backend(of job: Job) -> Backend? {
        guard let stored = job.backend else { return nil }
        if let named = backend(named: stored) { return named }
        return members.first { Self.sameURL($0.url.absoluteString, stored) } ?? (isShared ? nil : members[0])
    }

    private static func sameURL(_ left: String, _ right: String) -> Bool {
        func trimmed(_ text: String) -> Substring {
            var text = Substring(text)
            while text.hasSuffix("/") { text.removeLast() }
            return text
        }
        return trimmed(left) == trimmed(right)
    }

    /// The backends that answer, are not drained and have every model file a job names, in the configured order.
    func candidates(for files: ModelFiles) -> [Backend] {
        members.filter { $0.isAvailable && $0.missing(files)?.isEmpty ?? true }
    }

    /// Why no backend can ever run a job naming `files`, when none has them all: nil when one has (or the catalogs
    /// are not read yet, when the hand-over finds out).
    func refusal(for files: ModelFiles) -> String? {
        guard !files.references.isEmpty else { return nil }
        let lacks = members.compactMap { backend in backend.missing(files).map { (backend.name, $0) } }
        guard lacks.count == members.count, lacks.allSatisfy({ !$0.1.isEmpty }) else { return nil }
        let nowhere = lacks.map { Set($0.1) }.reduce(Set(files.files)) { $0.intersection($1) }.sorted()
        if !nowhere.isEmpty {
            return "no ComfyUI backend has these model files: " + nowhere.joined(separator: ", ")
        }
        return "no single ComfyUI backend has every model file this graph names: "
            + lacks.map { "\($0.0) lacks \($0.1.joined(separator: ", "))" }.joined(separator: "; ")
    }

    // MARK: Returns

    /// Calls `observer` whenever a backend answers again (or for the first time).
    func onReturn(_ observer: @escaping @Sendable (Backend) -> Void) {
        returnObservers.withLock { $0.append(observer) }
    }

    /// Tells the observers that a backend answers again.
    func announceReturn(of backend: Backend) {
        for observer in returnObservers.withLock({ $0 }) { observer(backend) }
    }

    // MARK: Load

    /// Sets the jobs out at each backend, as the job queue counts them.
    func setActive(_ counts: [String: Int]) {
        active.withLock { $0 = counts }
    }

    func activeJobs(on backend: Backend) -> Int {
        active.withLock { $0[backend.name] ?? 0 }
    }
}

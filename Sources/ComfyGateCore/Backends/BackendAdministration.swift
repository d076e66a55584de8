public import Foundation

/// Draining and re-enabling backends, and what the gateways last saw of them: the one place the command line and
/// the admin page go through. A drain is kept in the store, so every replica follows it within a second.
public struct BackendAdministration: Sendable {
    public let store: any GatewayStore
    private let now: @Sendable () -> Date

    public init(store: any GatewayStore, now: @escaping @Sendable () -> Date = { Date() }) {
        self.store = store
        self.now = now
    }

    /// A backend nobody has reported on for this long shows as `unknown`.
    public static let staleAfter: TimeInterval = 30

    /// Drains a backend (it finishes what runs and takes nothing new) or enables it again, and records who did it.
    /// - Parameter known: the backend names the caller knows of; a name outside them is refused (when any are given).
    public func setDrained(
        _ drained: Bool, backend name: String, known: [String], by actor: String?, clientAddress: String? = nil
    ) async throws(BackendAdministrationError) {
        let names = Set(known)
        guard names.isEmpty || names.contains(name) else {
            throw .unknownBackend(name, known: names.sorted())
        }
        let time = now()
        do {
            try await store.setBackendControl(BackendControl(name: name, drained: drained, changedAt: time, changedBy: actor))
            try await store.appendAudit(AuditEvent(
                time: time, action: drained ? "backend.drain" : "backend.enable", userName: actor, clientAddress: clientAddress,
                detail: "backend \(name)"))
        } catch {
            throw .store("\(error)")
        }
    }

    /// Every backend that is configured or that a gateway reported on, in the configured order then by name: the
    /// freshest report of any replica, with the drain as the store has it. A backend no gateway reported on within
    /// ``staleAfter`` shows as `unknown`, saying since when.
    public func snapshots(configured: [BackendConfiguration]) async throws -> [BackendSnapshot] {
        let records = try await store.backendStatuses()
        let drained = Set(try await store.backendControls().filter(\.drained).map(\.name))
        let decoder = BackendSnapshot.decoder()
        var freshest: [String: (BackendSnapshot, Date)] = [:]
        for record in records {
            guard let snapshot = try? decoder.decode(BackendSnapshot.self, from: Data(record.status.utf8)) else { continue }
            if freshest[record.name].map({ $0.1 < record.observedAt }) ?? true { freshest[record.name] = (snapshot, record.observedAt) }
        }
        let names = configured.map(\.name) + freshest.keys.filter { name in !configured.contains { $0.name == name } }.sorted()
        let time = now()
        return names.map { name in
            let config = configured.first { $0.name == name }
            var snapshot = freshest[name]?.0 ?? BackendSnapshot(
                name: name, url: config?.url.absoluteString ?? "", state: "unknown", drained: false, weight: config?.weight ?? 1,
                slots: config?.slots ?? 0, inFlight: 0, queueRunning: 0, queuePending: 0, devices: [], comfyUIVersion: nil,
                lastSeen: nil, since: nil, cause: "no gateway has reported on it", labels: config?.labels ?? [:])
            if let observed = freshest[name]?.1, time.timeIntervalSince(observed) > Self.staleAfter {
                snapshot.state = "unknown"
                snapshot.cause = "no gateway has reported on it for \(Int(time.timeIntervalSince(observed))) s"
            }
            snapshot.drained = drained.contains(name)
            return snapshot
        }
    }
}

/// Why a backend could not be drained or enabled.
public enum BackendAdministrationError: Error, Equatable, CustomStringConvertible {
    case unknownBackend(String, known: [String])
    case store(String)

    public var description: String {
        switch self {
        case .unknownBackend(let name, let known):
            "no backend is named '\(name)'" + (known.isEmpty ? "" : " (backends: \(known.joined(separator: ", ")))")
        case .store(let why): "the store could not record it: \(why)"
        }
    }
}

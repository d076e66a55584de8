import ComfyGatePolicy
import ComfyGateRequestParsing

/// Which backend a forwarded request goes to, for every request path (fast path, router, websocket): `/view` of a
/// job's output file goes to the backend that ran the job; everything else to the pool's primary backend.
struct BackendRouter: Sendable {
    let pool: BackendPool
    let fileLocations: FileLocations

    /// Where a request goes.
    enum Route {
        case backend(Backend)
        /// A file that may be on any backend (its job is unknown to this gateway): ask each in turn.
        case anyBackend
    }

    func route(path: String, target: String) -> Route {
        guard pool.isShared, path == "/view" || path == "/api/view" else { return .backend(pool.primary) }
        let query = target.firstIndex(of: "?").map { String(target[target.index(after: $0)...]) } ?? ""
        let type = QueryString.firstValue(of: "type", in: query) ?? "output"
        guard type != "input", let name = QueryString.firstValue(of: "filename", in: query) else { return .backend(pool.primary) }
        let file = OwnershipIndex.FileReference(type: type, subfolder: QueryString.firstValue(of: "subfolder", in: query) ?? "", name: name)
        if let located = fileLocations.backend(of: file), let backend = pool.backend(named: located), backend.current.state != .down {
            return .backend(backend)
        }
        return .anyBackend
    }
}

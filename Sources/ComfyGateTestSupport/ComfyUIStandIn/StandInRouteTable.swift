import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Synchronization

/// Like aiohttp's `RouteTableDef` as ComfyUI uses it: every route is registered at `/api<path>` and `<path>`,
/// and a known path asked with another method answers `405: Method Not Allowed`.
final class StandInRouteTable: Sendable {
    typealias Handler = @Sendable (Request, StandInContext) async throws -> Response

    private let routes = Mutex<[(path: String, method: HTTPRequest.Method, handler: Handler)]>([])

    func add(_ path: String, _ method: HTTPRequest.Method, _ handler: @escaping Handler) {
        routes.withLock { $0.append((path, method, handler)) }
    }

    func register(on router: Router<StandInContext>) {
        let all = routes.withLock { $0 }
        var paths: [String] = []
        for route in all where !paths.contains(route.path) { paths.append(route.path) }
        for path in paths {
            let own = all.filter { $0.path == path }
            var allowed = Set(own.map(\.method.rawValue))
            if allowed.contains("GET") { allowed.insert("HEAD") }
            let allowHeader = allowed.sorted().joined(separator: ",")
            for prefixed in ["/api" + (path == "/" ? "/" : path), path] {
                for route in own { router.on(RouterPath(prefixed), method: route.method, use: route.handler) }
                for method in [HTTPRequest.Method.get, .post, .put, .delete, .patch] where !allowed.contains(method.rawValue) {
                    router.on(RouterPath(prefixed), method: method) { _, _ in
                        StandInResponses.aiohttpError(.methodNotAllowed, headers: [.allow: allowHeader])
                    }
                }
            }
        }
    }
}

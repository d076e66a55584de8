import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Synchronization

/// Like aiohttp's `RouteTableDef` as ComfyUI uses it: every route is registered at `/api<path>` and `<path>`,
/// and a known path asked with another method answers `405: Method Not Allowed`, unless the static route at `/`
/// takes it (GET and HEAD, when there is a web root).
final class StandInRouteTable: Sendable {
    typealias Handler = @Sendable (Request, StandInContext) async throws -> Response

    private let routes = Mutex<[(path: String, method: HTTPRequest.Method, handler: Handler)]>([])

    func add(_ path: String, _ method: HTTPRequest.Method, _ handler: @escaping Handler) {
        routes.withLock { $0.append((path, method, handler)) }
    }

    /// - Parameter staticFilesTakeGET: a static route at `/` follows the routes: GET requests that no route takes go
    ///   there, and every `Allow` header also names its GET and HEAD.
    func register(on router: Router<StandInContext>, staticFilesTakeGET: Bool) {
        let all = routes.withLock { $0 }
        var paths: [String] = []
        for route in all where !paths.contains(route.path) { paths.append(route.path) }
        for path in paths {
            let own = all.filter { $0.path == path }
            var allowed = Set(own.map(\.method.rawValue))
            if allowed.contains("GET") || staticFilesTakeGET { allowed.formUnion(["GET", "HEAD"]) }
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

import ComfyGatePolicy
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// What the gateway records of each answered request, on every request path: the request metrics and one
/// access-log line. The line holds the method, the path without its query (a query can carry `token=`), the
/// status, the answer's bytes when known, the duration, the user, the client's address (through trusted proxies),
/// the route class and the request path — never a header or a credential.
struct RequestObserver: Sendable {
    /// nil when `metrics = false`.
    let metrics: GatewayMetrics?
    /// Where access-log lines go; nil when `access_log = false`.
    let accessLog: Logger?
    let clientAddress: ClientAddressResolver

    /// The client's address for the access log; nil when nothing is logged (resolving it costs a little).
    func client(headers: HTTPFields, peer: String?) -> String? {
        accessLog == nil ? nil : clientAddress.resolve(headers: headers, peer: peer)
    }

    /// Records a request whose answer has ended (a websocket handshake: whose upgrade was decided).
    func answered(
        method: String, path: String, status: Int, bytes: Int?, since started: NIODeadline, user: String?, client: String?,
        route: RouteClass, via: GatewayMetrics.Via
    ) {
        let nanoseconds = (NIODeadline.now() - started).nanoseconds
        metrics?.requestAnswered(route: route, status: status, via: via, nanoseconds: nanoseconds)
        accessLog?.info("request", metadata: [
            "method": .string(method), "path": .string(path), "status": .stringConvertible(status),
            "bytes": bytes.map { .stringConvertible($0) } ?? "-", "duration_ms": .stringConvertible(Double(nanoseconds / 1000) / 1000),
            "user": .string(user ?? "-"), "client": .string(client ?? "unknown"), "route": .string(route.rawValue),
            "via": .string(via.rawValue),
        ])
    }
}

/// The route class and user of a request on the router path, told by the middleware that decides them to the
/// ``RequestObserverMiddleware`` around them (a request context is a value: inner middleware cannot change the
/// outer one's copy).
final class RequestTrace: Sendable {
    private let decided = Mutex<(route: RouteClass, user: String?)?>(nil)

    func record(_ route: RouteClass, user: String?) {
        decided.withLock { $0 = (route, user) }
    }

    var value: (route: RouteClass, user: String?)? { decided.withLock { $0 } }
}

/// The router's outermost middleware: records each request once its answer's body is written (or failed).
struct RequestObserverMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    let observer: RequestObserver

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = NIODeadline.now()
        let path = request.uri.path
        let trace = context.trace
        let client = observer.client(headers: request.headers, peer: context.peerAddress)
        let observer = observer
        let record = { @Sendable (status: Int, bytes: Int?) in
            let decided = trace.value
            let route = decided?.route ?? (AccessPolicy.isGatewayRoute(path: path) ? RouteClass(gatewayRoute: path) : .refused)
            observer.answered(
                method: request.method.rawValue, path: path, status: status, bytes: bytes, since: started, user: decided?.user,
                client: client, route: route, via: .router)
        }
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            record((error as? any HTTPResponseError)?.status.code ?? 500, nil)
            throw error
        }
        let body = response.body
        let status = response.status.code
        let bytes = body.contentLength
        response.body = ResponseBody(contentLength: bytes) { writer in
            do {
                try await body.write(writer)
            } catch {
                record(status, bytes)
                throw error
            }
            record(status, bytes)
        }
        return response
    }
}

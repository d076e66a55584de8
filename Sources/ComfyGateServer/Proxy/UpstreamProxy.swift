import ComfyGateRequestParsing
import HTTPTypes
import Hummingbird
import Logging

/// Forwards every request that reaches it to ComfyUI: method, path and query as sent (less the gateway's
/// `token` parameter), headers cleaned by ``UpstreamRequestHeaders``, bodies streamed both ways.
///
/// It is the last middleware of the router and never calls `next`.
struct UpstreamProxy: RouterMiddleware {
    typealias Context = GatewayRequestContext

    let transport: any UpstreamTransport
    let headers: UpstreamRequestHeaders

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var pathAndQuery = request.uri.path
        if let query = request.uri.query, let kept = QueryString.removing("token", from: query) {
            pathAndQuery += "?" + kept
        }
        // Everything that reaches this point may go on: a client waiting for `100 Continue` may send its body.
        context.proceedIfExpected(request)
        let contentLength = request.headers[.contentLength].flatMap { Int($0) }
        let hasBody = (contentLength ?? 0) > 0 || request.headers[.transferEncoding] != nil
        let upstreamRequest = UpstreamRequest(
            method: request.method,
            pathAndQuery: pathAndQuery,
            headers: headers.build(from: request.headers, authority: request.head.authority, peer: context.peerAddress),
            body: hasBody ? request.body : nil,
            contentLength: hasBody ? contentLength : nil
        )
        do {
            return try await transport.send(upstreamRequest)
        } catch {
            error.log(to: context.logger, path: request.uri.path)
            return GatewayResponse.json(error.status, error.answer)
        }
    }
}

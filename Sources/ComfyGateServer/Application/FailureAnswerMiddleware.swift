import ComfyGateCore
import Hummingbird

/// The router's outermost middleware: an error that escapes a route or middleware — most often the store
/// failing — becomes a JSON 500 (never an empty body), and a store failure is reported to ``StoreHealth``,
/// which logs it once. Hummingbird's own HTTP errors (a body too large, …) keep their status.
struct FailureAnswerMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    let storeHealth: StoreHealth

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as any HTTPResponseError {
            throw error
        } catch {
            storeHealth.recordFailure(error)
            return GatewayResponse.error(.internalServerError, "the gateway could not complete the request; its log says why")
        }
    }
}

import HTTPTypes
import HummingbirdCore
import Logging
import ServiceLifecycle

/// Says in the log, from the start, whether ComfyUI answers: once when the gateway starts, then at each change
/// (up to down, down to up), looking every ``interval``.
struct UpstreamWatch: Service {
    let transport: any UpstreamTransport
    let upstreamDescription: String
    /// Where ComfyUI's health is reported (``GatewayMetrics/backendHealth(name:up:)``), by ``upstreamDescription``.
    let metrics: GatewayMetrics?
    let logger: Logger
    var interval: Duration = .seconds(30)

    /// How the watch's requests name themselves to ComfyUI.
    static let userAgent = "comfygate-watch"

    func run() async throws {
        await cancelWhenGracefulShutdown { await watch() }
    }

    private func watch() async {
        var lastState: String?
        while !Task.isCancelled {
            let problem = await probe()
            let state = problem == nil ? "up" : "down:" + (problem ?? "")
            metrics?.backendHealth(name: upstreamDescription, up: problem == nil)
            if state != lastState {
                if let problem {
                    logger.warning("ComfyUI does not answer", metadata: [
                        "upstream": "\(upstreamDescription)", "cause": "\(problem)",
                        "effect": "requests for ComfyUI get 502 until it answers; jobs wait in the gateway",
                    ])
                } else {
                    logger.notice(lastState == nil ? "ComfyUI answers" : "ComfyUI answers again", metadata: ["upstream": "\(upstreamDescription)"])
                }
                lastState = state
            }
            try? await Task.sleep(for: interval)
        }
    }

    /// nil when `GET /system_stats` answers 200, else why not.
    private func probe() async -> String? {
        let request = UpstreamRequest(
            method: .get, pathAndQuery: "/system_stats", headers: [.accept: "application/json", .userAgent: Self.userAgent],
            body: nil, contentLength: nil)
        do {
            let response = try await transport.send(request)
            _ = try? await UpstreamProxy.collect(response, limit: 1 << 20)
            return response.status == .ok ? nil : "/system_stats answered \(response.status.code)"
        } catch {
            return error.cause
        }
    }
}

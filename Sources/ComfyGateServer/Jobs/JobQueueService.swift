import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOWebSocket
import ServiceLifecycle
import WSClient
import WSCore

/// Runs the job queue (loaded before the gateway listens): hands jobs over and watches them whenever a backend
/// broadcasts a change of its queue — on a websocket of the gateway's own to each backend, open while jobs are out
/// there and for ``lingering`` after — and at the latest every ``tick``; sweeps expired jobs every hour.
struct JobQueueService: Service {
    let queue: JobQueue
    let pool: BackendPool
    /// The client id the listener connects with; ComfyUI sends it the events of jobs submitted without one.
    let clientID: String
    let logger: Logger

    /// The longest time between two looks at the jobs out at ComfyUI.
    static let tick: Duration = .seconds(1)
    static let sweepInterval: TimeInterval = 3600

    func run() async throws {
        // Every look at the jobs runs in the one task that drains `wakeups`: a listener whose connection ends never
        // cuts a hand-over or a store write short, and looks never pile up.
        let (wakeups, wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                for backend in pool.members { group.addTask { await self.listen(to: backend, wake: wake) } }
                group.addTask {
                    while !Task.isCancelled {
                        wake.yield()
                        try? await Task.sleep(for: Self.tick)
                    }
                    wake.finish()
                }
                group.addTask { await self.look(on: wakeups) }
                await group.waitForAll()
            }
        }
    }

    /// Looks at the jobs on every wakeup, and sweeps every hour.
    private func look(on wakeups: AsyncStream<Void>) async {
        var lastSweep = Date.distantPast
        for await _ in wakeups {
            if Date().timeIntervalSince(lastSweep) >= Self.sweepInterval {
                lastSweep = Date()
                await queue.sweep()
            }
            await queue.watch()
            await queue.pump()
        }
    }

    /// While jobs are out at a backend, keeps a websocket to it open and asks for a look at the jobs on every
    /// message that tells of a prompt ending or of its queue changing.
    private func listen(to backend: Backend, wake: AsyncStream<Void>.Continuation) async {
        var configuration = WebSocketClientConfiguration()
        configuration.maxFrameSize = 64 << 20
        configuration.additionalHeaders[.userAgent] = ComfyUIBackend.userAgent
        let url = Gateway.eventsURL(of: backend.url) + "?clientId=" + clientID
        let queue = self.queue
        let name = backend.name
        while !Task.isCancelled {
            guard await queue.hasJobsOut(on: name) else {
                try? await Task.sleep(for: Self.idleLook)
                continue
            }
            do {
                try await WebSocketClient.connect(url: url, configuration: configuration, logger: logger) { inbound, outbound, _ in
                    await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask {
                            for try await message in inbound.messages(maxSize: 64 << 20) {
                                switch message {
                                case .text(let text):
                                    queue.events.comfyUIMessage(text)
                                    if Self.endsOrQueues(text) { wake.yield() }
                                case .binary(let buffer):
                                    queue.events.comfyUIBinary(Array(buffer.readableBytesView))
                                }
                            }
                        }
                        group.addTask {
                            // Open while jobs are out and for a while after, so a job handed over right after another
                            // ended finds the listener there for its end.
                            var idleSince: ContinuousClock.Instant?
                            while true {
                                if await queue.hasJobsOut(on: name) {
                                    idleSince = nil
                                } else if let since = idleSince {
                                    if ContinuousClock.now - since > Self.lingering { return }
                                } else {
                                    idleSince = .now
                                }
                                try await Task.sleep(for: Self.idleLook)
                            }
                        }
                        // Whichever ends first ends the connection; the close lets the reading task end too.
                        defer { group.cancelAll() }
                        _ = try? await group.next()
                        try? await outbound.close(.normalClosure, reason: nil)
                    }
                }
            } catch {
                logger.debug("ComfyUI's websocket for the job queue ended", metadata: ["backend": "\(name)", "error": "\(error)"])
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// How often an idle listener looks whether jobs went out.
    static let idleLook: Duration = .milliseconds(100)
    /// How long the listener stays connected once no job is out.
    static let lingering: Duration = .seconds(30)

    /// Whether a ComfyUI message tells of a prompt ending or of its queue changing.
    static func endsOrQueues(_ text: String) -> Bool {
        ["status", "execution_success", "execution_error", "execution_interrupted"].contains {
            text.hasPrefix("{\"type\": \"\($0)\"")
        }
    }
}

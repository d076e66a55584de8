import ComfyGatePolicy
import Foundation
import Synchronization

/// Tells whoever follows a job (a Comfy API v2 event stream) that it changed, and passes on what ComfyUI says of
/// it while it runs. Nothing is kept for a job nobody follows.
final class JobEvents: Sendable {
    /// Something about one job.
    enum Event: Sendable {
        /// Its row in the store changed (state, outputs): read it again.
        case changed
        /// A ComfyUI websocket message about it, `{"type", "data"}`.
        case comfyUI(type: String, data: PolicyJSON)
        /// A preview image ComfyUI sent while it ran.
        case preview(contentType: String, bytes: [UInt8])
        /// Time passed; sent by the follower's own clock.
        case tick
    }

    private struct Followers {
        var byJob: [String: [UInt64: AsyncStream<Event>.Continuation]] = [:]
        var nextID: UInt64 = 0
        /// The job ComfyUI said it is executing, for previews, which do not name their prompt.
        var executingJob: String?
    }

    private let followers = Mutex(Followers())

    /// Follows a job until the returned stream's consumer stops; `tick` every `interval`.
    func follow(jobID: String, tick interval: Duration) -> AsyncStream<Event> {
        let (stream, continuation) = AsyncStream<Event>.makeStream(bufferingPolicy: .bufferingNewest(256))
        let id = followers.withLock { state in
            state.nextID += 1
            state.byJob[jobID, default: [:]][state.nextID] = continuation
            return state.nextID
        }
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                continuation.yield(.tick)
            }
        }
        continuation.onTermination = { [weak self] _ in
            ticker.cancel()
            self?.followers.withLock { state in
                state.byJob[jobID]?[id] = nil
                if state.byJob[jobID]?.isEmpty == true { state.byJob[jobID] = nil }
            }
        }
        return stream
    }

    /// Whether anyone follows the job.
    func isFollowed(_ jobID: String) -> Bool {
        followers.withLock { $0.byJob[jobID] != nil }
    }

    func publish(_ event: Event, about jobID: String) {
        let targets = followers.withLock { state in state.byJob[jobID].map { Array($0.values) } ?? [] }
        for continuation in targets { continuation.yield(event) }
    }

    /// Reads a text message from ComfyUI's websocket and passes it on to the followers of the prompt it names.
    func comfyUIMessage(_ text: String) {
        guard let message = try? PolicyJSON(parsing: Array(text.utf8)), let type = message["type"]?.stringValue,
            let data = message["data"], let promptID = data["prompt_id"]?.stringValue
        else { return }
        if type == "executing" || type == "execution_start" {
            followers.withLock { $0.executingJob = data["node"] == .null ? nil : promptID }
        }
        publish(.comfyUI(type: type, data: data), about: promptID)
    }

    /// Reads a binary message from ComfyUI's websocket: a preview (type 1: 4-byte image format then the image) of
    /// the job being executed.
    func comfyUIBinary(_ bytes: [UInt8]) {
        guard bytes.count > 8, bytes[0...3] == [0, 0, 0, 1], let jobID = followers.withLock({ $0.executingJob }) else { return }
        let format = bytes[7]
        publish(.preview(contentType: format == 2 ? "image/png" : "image/jpeg", bytes: Array(bytes[8...])), about: jobID)
    }
}

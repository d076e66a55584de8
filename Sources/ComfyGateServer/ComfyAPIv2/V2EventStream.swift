import ComfyGateCore
import ComfyGateJobs
import ComfyGatePolicy
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// `GET /api/v2/jobs/{id}/events`: a job's life as server-sent events. A `status` snapshot first; then each change of
/// status, `progress` and `preview` while it runs, every `output` before the terminal `status`, which ends the
/// stream; a `: keepalive` comment whenever nothing else was sent for ``keepAlive``.
struct V2EventStream: Sendable {
    let job: Job
    let store: any GatewayStore
    let jobs: JobQueue
    let events: JobEvents
    let origin: String
    let now: @Sendable () -> Date

    /// The longest silence on a stream.
    static let keepAlive: TimeInterval = 15
    /// How often a follower reads its job again, should a change have been told to another gateway process.
    static let lookAgain: Duration = .seconds(2)

    var response: Response {
        let headers: HTTPFields = [
            .contentType: "text/event-stream", .cacheControl: "no-cache", .connection: "keep-alive",
            HTTPField.Name("X-Accel-Buffering")!: "no",
        ]
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            try await stream(to: &writer)
            try await writer.finish(nil)
        })
    }

    private func stream(to writer: inout some ResponseBodyWriter) async throws {
        let updates = events.follow(jobID: job.id, tick: Self.lookAgain)
        var current = (try await store.job(id: job.id)) ?? job
        var sentOutputs = 0
        var lastWrite = Date()
        var progress = ProgressTracker(workflow: current.workflow)

        if current.state.isFinished {
            try await sendOutputs(of: current, from: 0, to: &writer)
            try await send("status", status(of: current, position: nil), to: &writer)
            return
        }
        try await send("status", status(of: current, position: try await jobs.queuePosition(of: current)), to: &writer)
        for await update in updates {
            var changed = false
            switch update {
            case .changed:
                changed = true
            case .tick:
                changed = true
                if Date().timeIntervalSince(lastWrite) >= Self.keepAlive {
                    try await writer.write(ByteBuffer(string: ": keepalive\n\n"))
                    lastWrite = Date()
                }
            case .comfyUI(let type, let data):
                if let snapshot = progress.read(type: type, data: data) {
                    try await send("progress", snapshot, to: &writer)
                    lastWrite = Date()
                }
                if type == "execution_success" || type == "execution_error" || type == "execution_interrupted" {
                    // The end is near: the watch stores it soon after; look often until then.
                    changed = true
                }
            case .preview(let contentType, let bytes):
                try await send("preview", .object([
                    .init(key: "node_id", value: .string(progress.currentNode ?? "")),
                    .init(key: "content_type", value: .string(contentType)),
                    .init(key: "data_base64", value: .string(Data(bytes).base64EncodedString())),
                ]), to: &writer)
                lastWrite = Date()
            }
            guard changed, let latest = try await store.job(id: job.id) else { continue }
            if latest.state != current.state || latest.state == .queued {
                if latest.state.isFinished {
                    try await sendOutputs(of: latest, from: sentOutputs, to: &writer)
                    try await send("status", status(of: latest, position: nil), to: &writer)
                    return
                }
                if latest.state != current.state {
                    try await send("status", status(of: latest, position: try await jobs.queuePosition(of: latest)), to: &writer)
                    lastWrite = Date()
                }
            }
            if latest.outputs.count > sentOutputs {
                try await sendOutputs(of: latest, from: sentOutputs, to: &writer)
                sentOutputs = latest.outputs.count
            }
            current = latest
        }
    }

    private func status(of job: Job, position: Int?) -> PolicyJSON {
        var members: [PolicyJSON.Member] = [.init(key: "status", value: .string(job.state.rawValue))]
        if job.state == .queued { members.append(.init(key: "queue_position", value: position.map { .number(String($0)) } ?? .null)) }
        return .object(members)
    }

    private func sendOutputs(of job: Job, from start: Int, to writer: inout some ResponseBodyWriter) async throws {
        for output in job.outputs.dropFirst(start) {
            try await send("output", V2Representation.output(of: job, output, origin: origin, now: now()), to: &writer)
        }
    }

    private func send(_ event: String, _ data: PolicyJSON, to writer: inout some ResponseBodyWriter) async throws {
        var frame = ByteBuffer(string: "event: \(event)\ndata: ")
        frame.writeBytes(data.serialized())
        frame.writeString("\n\n")
        try await writer.write(frame)
    }
}

/// Turns ComfyUI's `progress_state`, `progress` and `executing` messages into the Comfy API v2 Progress object.
struct ProgressTracker {
    /// Nodes in the graph, for `nodes_total` until ComfyUI says more.
    private let nodeCount: Int
    private var finishedNodes: Set<String> = []
    private(set) var currentNode: String?
    private var step: Int?
    private var steps: Int?

    init(workflow: String) {
        nodeCount = (try? PolicyJSON(parsing: Array(workflow.utf8)))?.members?.count ?? 0
    }

    /// The Progress snapshot a message gives, or nil when it tells nothing new.
    mutating func read(type: String, data: PolicyJSON) -> PolicyJSON? {
        switch type {
        case "progress_state":
            for node in data["nodes"]?.members ?? [] where node.value["state"] == .string("finished") {
                finishedNodes.insert(node.key)
            }
            if let running = data["nodes"]?.members?.last(where: { $0.value["state"] == .string("running") }) {
                currentNode = running.key
            }
        case "executing":
            currentNode = data["node"]?.stringValue
            step = nil
            steps = nil
        case "progress":
            step = data["value"]?.doubleValue.map { Int($0) }
            steps = data["max"]?.doubleValue.map { Int($0) }
            currentNode = data["node"]?.stringValue ?? currentNode
        default:
            return nil
        }
        return snapshot
    }

    private var snapshot: PolicyJSON {
        let total = max(nodeCount, finishedNodes.count)
        var value = total > 0 ? Double(finishedNodes.count) / Double(total) : 0
        if let step, let steps, steps > 0, total > 0 {
            value += Double(min(step, steps)) / Double(steps) / Double(total)
        }
        var members: [PolicyJSON.Member] = [
            .init(key: "value", value: .number(String(min(1, max(0, value))))),
            .init(key: "nodes_done", value: .number(String(finishedNodes.count))),
            .init(key: "nodes_total", value: .number(String(total))),
        ]
        if let currentNode { members.append(.init(key: "current_node", value: .string(currentNode))) }
        if let step, let steps {
            members.append(.init(key: "step", value: .number(String(step))))
            members.append(.init(key: "steps", value: .number(String(steps))))
        }
        return .object(members)
    }
}

extension PolicyJSON {
    fileprivate var doubleValue: Double? {
        if case .number(let literal) = self { return Double(literal) }
        return nil
    }
}

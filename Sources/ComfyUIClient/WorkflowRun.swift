public import Foundation

/// One API-format workflow run to its end: the websocket opened first, the prompt submitted with the same client
/// id, its events followed until ComfyUI says it finished, its outputs read. What `comfygate generate` and
/// `doctor --generate` both run.
public enum WorkflowRun {
    /// What the run reports while it goes.
    public enum Step: Sendable, Equatable {
        /// ComfyUI accepted the prompt.
        case submitted(promptID: String)
        /// Started executing; `cached` nodes are answered from ComfyUI's cache.
        case started(cached: [String])
        /// A node began.
        case node(id: String)
        /// A step of a node that counts them (a sampler's steps).
        case progress(node: String?, value: Int, max: Int)
        /// A node finished (of how many in the graph).
        case finishedNodes(done: Int, total: Int)
    }

    /// A finished run.
    public struct Outcome: Sendable, Equatable {
        public var promptID: String
        /// The files the output nodes produced, in the order ComfyUI reported them.
        public var outputs: [ImageReference]
        /// From sending the prompt to ComfyUI's answer.
        public var submitted: Duration
        /// From sending the prompt to its end.
        public var finished: Duration
    }

    /// Why a run did not produce its outputs.
    public enum Failure: Error, Equatable, CustomStringConvertible {
        /// ComfyUI refused the prompt (validation): its error and node errors.
        case rejected(String)
        /// A node raised during execution.
        case execution(node: String, nodeType: String, exceptionType: String, message: String)
        /// Someone interrupted it.
        case interrupted(node: String?)
        /// It ended without any output file.
        case noOutputs

        public var description: String {
            switch self {
            case .rejected(let detail): "ComfyUI refused the workflow: \(detail)"
            case .execution(let node, let nodeType, let type, let message): "node \(node) (\(nodeType)) raised \(type): \(message)"
            case .interrupted(let node): "the run was interrupted" + (node.map { " at node \($0)" } ?? "")
            case .noOutputs: "the run finished without an output file"
            }
        }
    }

    /// Runs `prompt` on `client`, calling `report` as it goes.
    /// - Throws: ``Failure``, or the client's transport errors.
    public static func run(
        _ prompt: [String: JSONValue], with client: ComfyUIClient, clientID: String = UUID().uuidString.lowercased(),
        report: @escaping @Sendable (Step) -> Void = { _ in }
    ) async throws -> Outcome {
        let total = prompt.count
        return try await client.withEvents(clientID: clientID) { session in
            let clock = ContinuousClock()
            var events = session.events.makeAsyncIterator()
            _ = try await events.next()  // the connect `status`: the socket is registered
            let start = clock.now
            let submission: PromptSubmission
            do {
                submission = try await client.submit(prompt: prompt, clientID: clientID)
            } catch let error as ComfyUIClientError where error.isKind(of: .promptRejected(status: 0, "")) {
                throw Failure.rejected(error.detail)
            }
            let submitted = start.duration(to: clock.now)
            let id = submission.promptID
            report(.submitted(promptID: id))
            var outputs: [ImageReference] = []
            var finishedNodes: Set<String> = []
            while let event = try await events.next() {
                switch event {
                case .executionCached(let promptID, let nodes) where promptID == id:
                    finishedNodes.formUnion(nodes)
                    report(.started(cached: nodes))
                case .executing(let promptID, let node?) where promptID == id:
                    report(.node(id: node))
                case .progress(let promptID, let node, let value, let max) where promptID == id || promptID == nil:
                    report(.progress(node: node, value: value, max: max))
                case .progressState(let promptID, let nodes) where promptID == id:
                    let done = Set(nodes.filter { $0.value == "finished" }.keys).union(finishedNodes)
                    if done.count != finishedNodes.count {
                        finishedNodes = done
                        report(.finishedNodes(done: done.count, total: total))
                    }
                case .executed(let promptID, _, let produced) where promptID == id:
                    outputs += produced
                case .executionError(let promptID, let node, let nodeType, let type, let message) where promptID == id:
                    throw Failure.execution(node: node, nodeType: nodeType, exceptionType: type, message: message)
                case .executionInterrupted(let promptID, let node) where promptID == id:
                    throw Failure.interrupted(node: node)
                case .executing(let promptID, nil) where promptID == id:
                    let finished = start.duration(to: clock.now)
                    if let entry = try await client.history(promptID: id) {
                        // The history has every output, also those of nodes answered from the cache.
                        let recorded = entry.images.sorted { $0.key < $1.key }.flatMap(\.value)
                        if !recorded.isEmpty { outputs = recorded }
                    }
                    guard !outputs.isEmpty else { throw Failure.noOutputs }
                    return Outcome(promptID: id, outputs: outputs, submitted: submitted, finished: finished)
                default:
                    continue
                }
            }
            throw ComfyUIClientError.webSocketClosed
        }
    }
}

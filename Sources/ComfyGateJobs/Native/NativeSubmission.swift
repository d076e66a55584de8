public import ComfyGateCore
public import ComfyGatePolicy
public import Foundation

/// A `POST /prompt` body, already rewritten for its caller, taken apart into what a ``Job`` keeps — and put back
/// together when the job is handed to ComfyUI.
public struct NativeSubmission: Sendable, Equatable {
    /// The API-format graph.
    public var prompt: PolicyJSON
    public var extraData: PolicyJSON
    public var clientID: String?
    /// The id the client chose, if it sent one.
    public var promptID: String?
    /// The other members ComfyUI reads (`partial_execution_targets`, an admin's `number` and `front`), in order.
    public var others: [PolicyJSON.Member]

    /// Reads a request body; nil when it has no `prompt`, which ComfyUI answers with ``noPromptAnswer``.
    public init?(request: PolicyJSON) {
        guard let members = request.members, let prompt = request["prompt"] else { return nil }
        self.prompt = prompt
        extraData = request["extra_data"] ?? .object([])
        clientID = request["client_id"]?.stringValue
        promptID = request["prompt_id"]?.stringValue
        let kept: Set<String> = ["prompt", "extra_data", "client_id", "prompt_id"]
        others = members.filter { !kept.contains($0.key) }
    }

    /// The output node ids named by `partial_execution_targets`, when the request names some.
    public var partialExecutionTargets: [String]? {
        others.last { $0.key == "partial_execution_targets" }?.value.arrayValue?.compactMap(\.stringValue)
    }

    /// A queued job holding this submission. `extra_data.comfygate_retryable: true` lets it run again once on another
    /// backend when the backend running it dies.
    public func job(id: String, userID: String, createdAt: Date) -> Job {
        var job = Job(
            id: id, userID: userID, source: .native, workflow: Self.text(prompt), extraData: Self.text(extraData),
            clientID: clientID, metadata: others.isEmpty ? nil : Self.text(.object(others)), createdAt: createdAt)
        job.retryable = extraData[Self.retryableKey] == .bool(true)
        return job
    }

    /// The `extra_data` member that marks a job retryable: it may run again once on another backend when the backend
    /// running it dies.
    public static let retryableKey = "comfygate_retryable"

    /// The `POST /prompt` body that hands `job` to ComfyUI under the job's id; nil when the job's stored JSON does
    /// not parse (it was written by the gateway, so only a damaged store does that).
    /// - Parameter defaultClientID: the websocket client that gets the events of a job submitted without one (the
    ///   gateway's own listener, rather than ComfyUI broadcasting them to everyone).
    public static func dispatchBody(of job: Job, defaultClientID: String? = nil) -> [UInt8]? {
        guard let prompt = try? PolicyJSON(parsing: Array(job.workflow.utf8)),
            let extraData = try? PolicyJSON(parsing: Array(job.extraData.utf8))
        else { return nil }
        // A native job's metadata is the rest of its request; a v2 job's is the caller's own and stays with the job.
        var members =
            job.source == .native ? (job.metadata.flatMap { try? PolicyJSON(parsing: Array($0.utf8)) })?.members ?? [] : []
        members.append(.init(key: "prompt", value: prompt))
        members.append(.init(key: "extra_data", value: extraData))
        if let clientID = job.clientID ?? defaultClientID { members.append(.init(key: "client_id", value: .string(clientID))) }
        members.append(.init(key: "prompt_id", value: .string(job.id)))
        return PolicyJSON.object(members).serialized()
    }

    /// ComfyUI's `400` for a body without `prompt`.
    public static var noPromptAnswer: PolicyJSON {
        PromptValidator.answer(PromptValidator.error("no_prompt", "No prompt provided", "No prompt provided"))
    }

    /// The refusal of a job whose stored graph no longer parses.
    public static var unreadableJobAnswer: PolicyJSON {
        PromptValidator.answer(PromptValidator.error("invalid_prompt", "The stored job could not be read", ""))
    }

    static func text(_ value: PolicyJSON) -> String {
        String(decoding: value.serialized(), as: UTF8.self)
    }
}

public import ComfyGateCore
public import ComfyGatePolicy
public import Foundation

/// ComfyUI's native `/queue` and `/history` shapes, built from the gateway's jobs.
public enum NativeViews {
    /// A held job as a `/queue` item: `[number, prompt_id, prompt, extra_data, outputs_to_execute]`.
    public static func queueItem(_ job: Job, number: Int, outputsToExecute: [String]) -> PolicyJSON {
        .array([
            .number(String(number)), .string(job.id), parsed(job.workflow), parsed(job.extraData),
            .array(outputsToExecute.map(PolicyJSON.string)),
        ])
    }

    /// ComfyUI's `/queue` answer with the held jobs added to `queue_pending` after ComfyUI's own, numbered on from
    /// the largest number ComfyUI shows (or from `firstNumber` when it shows none).
    public static func queue(
        _ answer: [UInt8], adding held: [Job], firstNumber: Int, outputsToExecute: (Job) -> [String]
    ) throws(PolicyRefusal) -> [UInt8] {
        guard !held.isEmpty else { return answer }
        guard var queue = try? PolicyJSON(parsing: answer), queue.members != nil else {
            throw PolicyRefusal(status: 502, message: "ComfyUI's /queue answer is not a JSON object")
        }
        let shown = ["queue_running", "queue_pending"].flatMap { queue[$0]?.arrayValue ?? [] }
        let largest = shown.compactMap { item -> Int? in
            guard case .number(let literal)? = item.arrayValue?.first else { return nil }
            return Double(literal).map { Int($0.rounded(.down)) }
        }.max()
        let start = largest.map { $0 + 1 } ?? firstNumber
        var pending = queue["queue_pending"]?.arrayValue ?? []
        for (offset, job) in held.enumerated() {
            pending.append(queueItem(job, number: start + offset, outputsToExecute: outputsToExecute(job)))
        }
        queue["queue_pending"] = .array(pending)
        return queue.serialized()
    }

    /// A `/history` answer, `{prompt_id: entry}`, of the jobs that have a history entry, in the given order.
    /// Entries go in as stored, without being parsed again.
    public static func history(_ jobs: [Job]) -> [UInt8] {
        var bytes: [UInt8] = [UInt8(ascii: "{")]
        var first = true
        for job in jobs {
            guard let entry = job.historyEntry else { continue }
            if !first { bytes += Array(", ".utf8) }
            first = false
            bytes += PolicyJSON.string(job.id).serialized()
            bytes += Array(": ".utf8)
            bytes += Array(entry.utf8)
        }
        bytes.append(UInt8(ascii: "}"))
        return bytes
    }

    /// A job ComfyUI refused when the gateway handed it over: the `execution_error` event its owner's websocket
    /// gets, and the history entry their `/history` shows, both carrying ComfyUI's reason.
    public struct RefusedDispatch: Sendable, Equatable {
        /// `{"type": "execution_error", "data": {…}}`.
        public var event: PolicyJSON
        /// `{"prompt", "outputs": {}, "status": {"status_str": "error", …}, "meta": {}}`.
        public var historyEntry: PolicyJSON
        public var failure: JobFailure

        /// - Parameters:
        ///   - answer: ComfyUI's `400` body (`{"error": {…}, "node_errors": {…}}`).
        public init(job: Job, answer: PolicyJSON, number: Int, at time: Date) {
            let error = answer["error"]
            let message = error?.stringValue ?? error?["message"]?.stringValue ?? "ComfyUI refused the prompt"
            let details = error?["details"]?.stringValue ?? ""
            let firstNode = answer["node_errors"]?.members?.first
            let timestamp = PolicyJSON.number(String(Int64((time.timeIntervalSince1970 * 1000).rounded())))
            var data: [PolicyJSON.Member] = [
                .init(key: "prompt_id", value: .string(job.id)),
                .init(key: "node_id", value: firstNode.map { .string($0.key) } ?? .null),
                .init(key: "node_type", value: firstNode?.value["class_type"] ?? .null),
                .init(key: "executed", value: .array([])),
                .init(key: "exception_message", value: .string(details.isEmpty ? message : "\(message)\n\(details)")),
                .init(key: "exception_type", value: .string(error?["type"]?.stringValue ?? "invalid_prompt")),
                .init(key: "traceback", value: .array([])),
                .init(key: "current_inputs", value: .object([])),
                .init(key: "current_outputs", value: .object([])),
            ]
            event = .object([.init(key: "type", value: .string("execution_error")), .init(key: "data", value: .object(data))])
            data.append(.init(key: "timestamp", value: timestamp))
            historyEntry = .object([
                .init(key: "prompt", value: queueItem(job, number: number, outputsToExecute: [])),
                .init(key: "outputs", value: .object([])),
                .init(
                    key: "status",
                    value: .object([
                        .init(key: "status_str", value: .string("error")),
                        .init(key: "completed", value: .bool(false)),
                        .init(key: "messages", value: .array([.array([.string("execution_error"), .object(data)])])),
                    ])),
                .init(key: "meta", value: .object([])),
            ])
            failure = JobFailure(
                code: "invalid_prompt", message: message, nodeID: firstNode?.key,
                classType: firstNode?.value["class_type"]?.stringValue,
                details: NativeSubmission.text(answer))
        }
    }

    private static func parsed(_ text: String) -> PolicyJSON {
        (try? PolicyJSON(parsing: Array(text.utf8))) ?? .null
    }
}

public import ComfyGateCore
public import ComfyGatePolicy
public import Foundation

/// The Comfy API v2 shapes of the gateway's jobs and errors, as `comfy-sdk` validates them: every required key
/// present (null where unknown), date-times with an offset, statuses and output types from the closed lists,
/// links host-relative so the SDK sends its token with them.
public enum V2Representation {
    /// Where a job stands beyond its row: its place in the gateway's queue and its progress, when known.
    public struct Live: Sendable, Equatable {
        /// 1-based place among the held jobs in hand-over order; nil unless queued.
        public var queuePosition: Int?
        /// `{"value", "nodes_done", "nodes_total", …}`, while it runs.
        public var progress: PolicyJSON?

        public init(queuePosition: Int? = nil, progress: PolicyJSON? = nil) {
            self.queuePosition = queuePosition
            self.progress = progress
        }
    }

    /// The Job object.
    /// - Parameters:
    ///   - origin: `scheme://host[:port]` the client reached the gateway at, for the absolute output `url`s.
    ///   - urlLifetime: how long an output `url` is announced as valid.
    public static func job(_ job: Job, live: Live = Live(), origin: String, now: Date, urlLifetime: TimeInterval = 3600)
        -> PolicyJSON
    {
        let base = "/api/v2/jobs/" + job.id
        var members: [PolicyJSON.Member] = [
            .init(key: "id", value: .string(job.id)),
            .init(key: "status", value: .string(job.state.rawValue)),
            .init(key: "created_at", value: date(job.createdAt)),
            .init(key: "started_at", value: job.startedAt.map(date) ?? .null),
            .init(key: "completed_at", value: job.completedAt.map(date) ?? .null),
            .init(key: "expires_at", value: date(job.expiresAt ?? job.createdAt.addingTimeInterval(30 * 86_400))),
            .init(key: "queue_position", value: live.queuePosition.map { .number(String($0)) } ?? .null),
            .init(key: "progress", value: live.progress ?? .null),
            .init(
                key: "outputs",
                value: .array(job.outputs.map { output(of: job, $0, origin: origin, now: now, urlLifetime: urlLifetime) })),
            .init(key: "error", value: job.failure.map(error) ?? .null),
            .init(
                key: "urls",
                value: .object([
                    .init(key: "self", value: .string(base)),
                    .init(key: "events", value: .string(base + "/events")),
                    .init(key: "cancel", value: .string(base + "/cancel")),
                ])),
        ]
        if job.source == .v2, let metadata = job.metadata.flatMap({ try? PolicyJSON(parsing: Array($0.utf8)) }) {
            members.append(.init(key: "metadata", value: metadata))
        }
        return .object(members)
    }

    /// One Output: a file a job made, named by its asset id when it has one (else by the job and its place).
    public static func output(
        of job: Job, _ output: JobOutput, origin: String, now: Date, urlLifetime: TimeInterval = 3600
    ) -> PolicyJSON {
        let id = output.assetID ?? outputID(of: job, output)
        return .object([
            .init(key: "id", value: .string(id)),
            .init(key: "job_id", value: .string(job.id)),
            .init(key: "node_id", value: .string(output.nodeID)),
            .init(key: "name", value: .string(output.fileName)),
            .init(key: "type", value: .string(output.mediaKind.rawValue)),
            .init(key: "content_type", value: .string(output.contentType)),
            .init(key: "size_bytes", value: .number(String(output.sizeBytes ?? 0))),
            .init(key: "hash", value: .null),
            .init(key: "url", value: .string(origin + "/api/v2/assets/" + id + "/content")),
            .init(key: "url_expires_at", value: date(now.addingTimeInterval(urlLifetime))),
        ])
    }

    /// An Asset: an upload of the caller's, or (with `jobID`) a job's output.
    /// - Parameter createdNew: for the answers that make one: whether a new blob was stored.
    public static func asset(_ asset: Asset, origin: String, now: Date, createdNew: Bool? = nil, urlLifetime: TimeInterval = 3600)
        -> PolicyJSON
    {
        var members: [PolicyJSON.Member] = [
            .init(key: "id", value: .string(asset.id)),
            .init(key: "hash", value: asset.hash.map(PolicyJSON.string) ?? .null),
            .init(key: "size_bytes", value: .number(String(asset.sizeBytes))),
            .init(key: "content_type", value: .string(asset.contentType)),
            .init(key: "file_path", value: .string(asset.name)),
            .init(key: "created_at", value: date(asset.createdAt)),
            .init(key: "url", value: .string(origin + "/api/v2/assets/" + asset.id + "/content")),
            .init(key: "url_expires_at", value: date(now.addingTimeInterval(urlLifetime))),
            .init(key: "expires_at", value: asset.expiresAt.map(date) ?? .null),
            .init(key: "job_id", value: asset.jobID.map(PolicyJSON.string) ?? .null),
        ]
        if let createdNew { members.append(.init(key: "created_new", value: .bool(createdNew))) }
        return .object(members)
    }

    /// The id an output without an asset is known by: the job's id and the output's place in its list.
    public static func outputID(of job: Job, _ output: JobOutput) -> String {
        let index = job.outputs.firstIndex(of: output) ?? 0
        return "\(job.id).\(index)"
    }

    /// JobError: `code`, `message`, `node_id`, `class_type`, `traceback` (null where unknown).
    static func error(_ failure: JobFailure) -> PolicyJSON {
        let traceback = failure.details.flatMap { try? PolicyJSON(parsing: Array($0.utf8)) }?["traceback"]
        let tracebackText: PolicyJSON =
            switch traceback {
            case .string(let text)?: .string(text)
            case .array(let lines)?: .string(lines.compactMap(\.stringValue).joined())
            default: .null
            }
        return .object([
            .init(key: "code", value: .string(failure.code == "execution_error" ? "node_execution_error" : failure.code)),
            .init(key: "message", value: .string(failure.message)),
            .init(key: "node_id", value: failure.nodeID.map(PolicyJSON.string) ?? .null),
            .init(key: "class_type", value: failure.classType.map(PolicyJSON.string) ?? .null),
            .init(key: "traceback", value: tracebackText),
        ])
    }

    /// The error envelope, `{"error": {"code", "message", "details"}}`.
    public static func errorEnvelope(code: String, message: String, details: PolicyJSON = .null) -> PolicyJSON {
        .object([
            .init(
                key: "error",
                value: .object([
                    .init(key: "code", value: .string(code)),
                    .init(key: "message", value: .string(message)),
                    .init(key: "details", value: details),
                ]))
        ])
    }

    /// RFC 3339 in UTC with milliseconds and `Z`.
    public static func date(_ date: Date) -> PolicyJSON {
        .string(date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)))
    }
}

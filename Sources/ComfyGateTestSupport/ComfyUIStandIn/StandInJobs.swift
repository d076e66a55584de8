import Hummingbird
import Synchronization

/// The [newer] jobs API (`server.py` `get_jobs`/`get_job_by_id`, `comfy_execution/jobs.py`): running, pending and
/// finished prompts as one list of jobs built from the queue and the history. Registered at `/api/jobs…` (so, as in
/// ComfyUI, also at `/api/api/jobs…`).
enum StandInJobs {
    static let statuses = ["pending", "in_progress", "completed", "failed", "cancelled"]

    static func register(on routes: StandInRouteTable, state: StandInState) {
        routes.add("/api/jobs", .get) { request, _ in list(request, state: state) }
        routes.add("/api/jobs/{job_id}", .get) { _, context in
            let id = context.parameters.get("job_id") ?? ""
            let job: StandInJSON? = state.inner.withLock { s in
                if let entry = s.history.last(where: { $0.0 == id })?.1 { return historyJob(id: id, entry: entry, withDetails: true) }
                if let running = s.running, running.promptId == id { return queueJob(running, status: "in_progress", withWorkflow: true) }
                return pendingInQueueOrder(s).first { $0.promptId == id }.map { queueJob($0, status: "pending", withWorkflow: true) }
            }
            guard let job else { return StandInResponses.json(["error": "Job not found"], status: .notFound) }
            return StandInResponses.json(job)
        }
    }

    static func pendingInQueueOrder(_ s: StandInState.Inner) -> [StandInQueueItem] {
        s.pending.sorted { ($0.sortKey, $0.sequence) < ($1.sortKey, $1.sequence) }
    }

    /// `GET /api/jobs?status=a,b&workflow_id=…&sort_by=created_at|execution_duration&sort_order=asc|desc&limit=N&offset=K`.
    static func list(_ request: Request, state: StandInState) -> Response {
        func query(_ name: String) -> String? { StandInLoginMiddleware.queryValue(request, name) }
        func failure(_ message: String) -> Response { StandInResponses.json(["error": .string(message)], status: .badRequest) }
        var statusFilter = statuses
        if let param = query("status"), !param.isEmpty {
            statusFilter = param.split(separator: ",").map { String($0).trimmingWhitespace().lowercased() }.filter { !$0.isEmpty }
            let invalid = statusFilter.filter { !statuses.contains($0) }
            if !invalid.isEmpty {
                return failure(
                    "Invalid status value(s): \(invalid.joined(separator: ", ")). Valid values: \(statuses.joined(separator: ", "))")
            }
        }
        let sortBy = (query("sort_by") ?? "created_at").lowercased()
        guard sortBy == "created_at" || sortBy == "execution_duration" else {
            return failure("sort_by must be 'created_at' or 'execution_duration'")
        }
        let sortOrder = (query("sort_order") ?? "desc").lowercased()
        guard sortOrder == "asc" || sortOrder == "desc" else { return failure("sort_order must be 'asc' or 'desc'") }
        var limit: Int?
        if let value = query("limit") {
            guard let number = Int(value.trimmingWhitespace()) else { return failure("limit must be an integer") }
            guard number > 0 else { return failure("limit must be a positive integer") }
            limit = number
        }
        var offset = 0
        if let value = query("offset") {
            guard let number = Int(value.trimmingWhitespace()) else { return failure("offset must be an integer") }
            offset = max(number, 0)
        }

        var jobs: [StandInJSON] = state.inner.withLock { s in
            var jobs: [StandInJSON] = []
            if statusFilter.contains("in_progress"), let running = s.running {
                jobs.append(queueJob(running, status: "in_progress", withWorkflow: false))
            }
            if statusFilter.contains("pending") {
                jobs += pendingInQueueOrder(s).map { queueJob($0, status: "pending", withWorkflow: false) }
            }
            for (id, entry) in s.history {
                let job = historyJob(id: id, entry: entry, withDetails: false)
                if let status = job["status"]?.stringValue, statusFilter.contains(status) { jobs.append(job) }
            }
            return jobs
        }
        if let workflowId = query("workflow_id"), !workflowId.isEmpty {
            jobs = jobs.filter { $0["workflow_id"] == .string(workflowId) }
        }
        jobs = sorted(jobs, byDuration: sortBy == "execution_duration", descending: sortOrder == "desc")
        let total = jobs.count
        let page = Array(jobs.dropFirst(offset).prefix(limit ?? Int.max))
        return StandInResponses.json([
            "jobs": .array(page),
            "pagination": [
                "offset": .int(offset), "limit": limit.map { .int($0) } ?? .null, "total": .int(total),
                "has_more": .bool(offset + page.count < total),
            ],
        ])
    }

    /// `apply_sorting`: by `create_time` (missing = 0) or by end − start of execution; a stable sort, as Python's `sorted`.
    static func sorted(_ jobs: [StandInJSON], byDuration: Bool, descending: Bool) -> [StandInJSON] {
        func number(_ value: StandInJSON?) -> Double {
            switch value {
            case .int(let i): return Double(i)
            case .double(let d): return d
            default: return 0
            }
        }
        func key(_ job: StandInJSON) -> Double {
            guard byDuration else { return number(job["create_time"]) }
            let start = number(job["execution_start_time"])
            let end = number(job["execution_end_time"])
            return start != 0 && end != 0 ? end - start : 0
        }
        return jobs.enumerated().sorted { a, b in
            let (ka, kb) = (key(a.element), key(b.element))
            if ka != kb { return descending ? ka > kb : ka < kb }
            return a.offset < b.offset
        }.map(\.element)
    }

    /// `create_time` and `extra_pnginfo.workflow.id` of `extra_data` (nil when absent or null, as `prune_dict` drops them).
    static func metadata(_ extraData: StandInJSON) -> (createTime: StandInJSON?, workflowId: StandInJSON?) {
        func present(_ value: StandInJSON?) -> StandInJSON? { value == .null ? nil : value }
        return (present(extraData["create_time"]), present(extraData["extra_pnginfo"]?["workflow"]?["id"]))
    }

    /// `normalize_queue_item`.
    static func queueJob(_ item: StandInQueueItem, status: String, withWorkflow: Bool) -> StandInJSON {
        let (createTime, workflowId) = metadata(item.extraData)
        var job: [(String, StandInJSON)] = [("id", .string(item.promptId)), ("status", .string(status)), ("priority", item.number)]
        if let createTime { job.append(("create_time", createTime)) }
        job += [("outputs_count", 0), ("previewable_outputs_count", 0)]
        if let workflowId { job.append(("workflow_id", workflowId)) }
        if withWorkflow { job.append(("workflow", ["prompt": item.prompt, "extra_data": item.extraData])) }
        return .object(job)
    }

    /// `normalize_history_item`; `withDetails` adds `outputs`, `execution_status` and `workflow` (the single-job answer).
    static func historyJob(id: String, entry: StandInJSON, withDetails: Bool) -> StandInJSON {
        let tuple = entry["prompt"]?.arrayValue ?? []
        func element(_ i: Int) -> StandInJSON { i < tuple.count ? tuple[i] : .null }
        let extraData = element(3)
        let (createTime, workflowId) = metadata(extraData)
        let statusInfo = entry["status"] ?? .null
        let outputs = entry["outputs"] ?? [:]
        let summary = outputsSummary(outputs)

        var start: StandInJSON?
        var end: StandInJSON?
        var error: StandInJSON?
        var interrupted = false
        if statusInfo.isTruthy {
            for message in statusInfo["messages"]?.arrayValue ?? [] {
                guard let pair = message.arrayValue, pair.count >= 2, pair[1].objectValue != nil else { continue }
                switch pair[0].stringValue {
                case "execution_start": start = pair[1]["timestamp"]
                case "execution_success": end = pair[1]["timestamp"]
                case "execution_error":
                    end = pair[1]["timestamp"]
                    error = pair[1]
                case "execution_interrupted":
                    end = pair[1]["timestamp"]
                    interrupted = true
                default: break
                }
            }
        }
        let status = statusInfo["status_str"] == "error" ? (interrupted ? "cancelled" : "failed") : "completed"

        var job: [(String, StandInJSON)] = [("id", .string(id)), ("status", .string(status)), ("priority", element(0))]
        let optional: [(String, StandInJSON?)] = [
            ("create_time", createTime), ("execution_start_time", start), ("execution_end_time", end), ("execution_error", error),
            ("outputs_count", .int(summary.count)), ("previewable_outputs_count", .int(summary.previewable)),
            ("preview_output", summary.preview), ("workflow_id", workflowId),
        ]
        for (key, value) in optional { if let value, value != .null { job.append((key, value)) } }
        if withDetails {
            job += [("outputs", outputs), ("execution_status", statusInfo), ("workflow", ["prompt": element(2), "extra_data": extraData])]
        }
        return .object(job)
    }

    static let previewableMediaTypes: Set<String> = ["images", "video", "audio", "3d", "text"]
    static let threeDExtensions = [".obj", ".fbx", ".gltf", ".glb", ".usdz"]
    static let textExtensions = [".txt", ".md", ".json"]

    /// `get_outputs_summary` and `count_previewable_outputs` over the dict items of each node's media lists (the only
    /// items the stand-in's nodes produce): every item counts; the preview is the first previewable `type: output`
    /// item, else the first other previewable one, else the first text file.
    static func outputsSummary(_ outputs: StandInJSON) -> (count: Int, previewable: Int, preview: StandInJSON?) {
        var count = 0
        var previewable = 0
        var preview: StandInJSON?
        var fallback: StandInJSON?
        var textFile: StandInJSON?
        for (nodeId, nodeOutputs) in outputs.objectValue ?? [] {
            for (mediaType, items) in nodeOutputs.objectValue ?? [] where mediaType != "animated" {
                for item in items.arrayValue ?? [] {
                    guard var enriched = item.objectValue else { continue }
                    count += 1
                    let filename = (item["filename"]?.stringValue ?? "").lowercased()
                    let format = item["format"]?.stringValue ?? ""
                    let isText = mediaType == "text" || textExtensions.contains { filename.hasSuffix($0) }
                    guard
                        previewableMediaTypes.contains(mediaType) || format.hasPrefix("video/") || format.hasPrefix("audio/")
                            || threeDExtensions.contains(where: { filename.hasSuffix($0) }) || isText
                    else { continue }
                    previewable += 1
                    guard preview == nil else { continue }
                    StandInJSON.setMember("nodeId", .string(nodeId), in: &enriched)
                    if item["mediaType"] == nil { enriched.append(("mediaType", .string(mediaType))) }
                    if isText {
                        textFile = textFile ?? .object(enriched)
                    } else if item["type"] == "output" {
                        preview = .object(enriched)
                    } else {
                        fallback = fallback ?? .object(enriched)
                    }
                }
            }
        }
        return (count, previewable, preview ?? fallback ?? textFile)
    }
}

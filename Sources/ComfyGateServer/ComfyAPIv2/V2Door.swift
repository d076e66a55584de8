import ComfyGateAssets
import ComfyGateCore
import ComfyGateJobs
import ComfyGatePolicy
import ComfyGateRequestParsing
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOPosix

/// The Comfy API v2 door: `/api/v2/jobs` and `/api/v2/assets` served from the gateway's own jobs and assets, on
/// the same fair queue as ComfyUI's native `POST /prompt`. The access policy decided the route and what the caller
/// may reach (``V2Request``); this only carries it out.
struct V2Door: RouterMiddleware {
    typealias Context = GatewayRequestContext

    let store: any GatewayStore
    let jobs: JobQueue
    let library: AssetLibrary
    let isolation: Isolation
    let pool: BackendPool
    /// The scheme of the configured public URL; the host is the one the client dialled, so the SDK keeps its token.
    let publicScheme: String?
    let now: @Sendable () -> Date

    /// The largest submission read.
    static let maxSubmission = 64 << 20

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let v2 = context.v2Request else { return try await next(request, context) }
        guard let caller = context.identity?.caller else {
            return Self.failure(V2Failure(status: 500, message: "no access decision was taken for this request"))
        }
        do {
            return try await answer(v2, request: request, caller: caller, context: context)
        } catch let failure as V2Failure {
            return Self.failure(failure)
        } catch let refusal as PolicyRefusal {
            return Self.failure(V2Failure(status: refusal.status, message: refusal.message))
        } catch {
            context.logger.error("Comfy API v2 request failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
            return Self.failure(V2Failure(status: 500, message: "the gateway could not complete the request; see its log"))
        }
    }

    /// The error envelope, with `Retry-After` when waiting helps.
    static func failure(_ failure: V2Failure) -> Response {
        var response = json(HTTPResponse.Status(code: failure.status), failure.envelope)
        if let retryAfter = failure.retryAfter { response.headers[.retryAfter] = String(retryAfter) }
        return response
    }

    static func json(_ status: HTTPResponse.Status, _ body: PolicyJSON) -> Response {
        GatewayResponse.rawJSON(status, body.serialized())
    }

    private func answer(_ v2: V2Request, request: Request, caller: Caller, context: Context) async throws -> Response {
        let origin = (publicScheme ?? "http") + "://" + (request.head.authority ?? "127.0.0.1")
        switch v2.route {
        case .submitJob:
            context.proceedIfExpected(request)
            return try await submit(request, caller: caller, origin: origin)
        case .listJobs:
            return try await list(request, caller: caller, origin: origin)
        case .job(let id):
            let job = try await visibleJob(id, v2: v2, caller: caller)
            return Self.json(.ok, try await representation(of: job, origin: origin))
        case .jobWorkflow(let id):
            let job = try await visibleJob(id, v2: v2, caller: caller)
            let workflow = (try? PolicyJSON(parsing: Array(job.workflow.utf8))) ?? .object([])
            return Self.json(.ok, .object([.init(key: "workflow", value: workflow), .init(key: "format", value: .string("api"))]))
        case .cancelJob(let id):
            return try await cancel(try await visibleJob(id, v2: v2, caller: caller), caller: caller, origin: origin)
        case .jobEvents(let id):
            let job = try await visibleJob(id, v2: v2, caller: caller)
            return V2EventStream(job: job, store: store, jobs: jobs, events: jobs.events, origin: origin, now: now).response
        case .uploadAsset:
            context.proceedIfExpected(request)
            return try await upload(request, caller: caller, origin: origin)
        case .assetFromHash:
            context.proceedIfExpected(request)
            return try await fromHash(request, caller: caller, origin: origin)
        case .assetByHash(let text):
            guard let hash = BlobHash(text), library.blobs.contains(hash),
                !(try await store.assets(userID: caller.userID, hash: hash.description)).isEmpty
            else { return Response(status: .notFound) }
            return Response(status: .ok)
        case .asset(let id):
            switch try await visibleAsset(id, v2: v2, caller: caller) {
            case .upload(let asset):
                return Self.json(.ok, V2Representation.asset(asset, origin: origin, now: now()))
            case .output(let job, let output):
                return Self.json(.ok, V2Representation.asset(Self.asset(of: job, output), origin: origin, now: now()))
            }
        case .assetContent(let id):
            return try await content(try await visibleAsset(id, v2: v2, caller: caller), request: request)
        case .deleteAsset(let id):
            switch try await visibleAsset(id, v2: v2, caller: caller) {
            case .upload(let asset):
                try await library.delete(asset)
                return Response(status: .noContent)
            case .output:
                throw V2Failure(status: 409, code: "asset_in_use", message: "a job's output goes with its job")
            }
        }
    }

    // MARK: Jobs

    private func submit(_ request: Request, caller: Caller, origin: String) async throws -> Response {
        let key = request.headers[HTTPField.Name("Idempotency-Key")!]
        if let key {
            guard (1...255).contains(key.utf8.count), key.utf8.allSatisfy({ (0x20...0x7E).contains($0) }) else {
                throw V2Failure.invalidRequest("Idempotency-Key must be 1 to 255 printable ASCII characters")
            }
            if try await store.job(userID: caller.userID, idempotencyKey: key) != nil { throw Self.keyReused }
        }
        let body = try await UpstreamProxy.collect(request.body, limit: Self.maxSubmission)
        let submission = try V2Submission(body: body)

        var fileNames: [String: String] = [:]
        var missing: [String] = []
        for reference in submission.assetReferences where fileNames[reference.assetID] == nil {
            guard let asset = try await store.asset(id: reference.assetID), asset.userID == caller.userID else {
                missing.append(reference.assetID)
                continue
            }
            fileNames[asset.id] = try library.inputFile(for: asset, space: caller.space)
        }
        if !missing.isEmpty {
            throw V2Failure(
                status: 422, code: "missing_asset", message: "no such asset of yours: \(missing.joined(separator: ", "))",
                details: .object([.init(key: "missing_ids", value: .array(missing.map(PolicyJSON.string)))]))
        }
        // The native rules apply as they are: the graph confined to the caller's folder, owner marked.
        let native = PolicyJSON.object([
            .init(key: "prompt", value: submission.workflow(resolving: fileNames)),
            .init(key: "extra_data", value: submission.extraData),
        ])
        let rewritten: PromptSubmission
        do {
            rewritten = try PromptSubmission.rewrite(native.serialized(), for: caller, rules: isolation.promptRules(for: caller))
        } catch {
            throw error.status == 403
                ? V2Failure(status: 403, code: "forbidden", message: error.message) : V2Failure.invalidWorkflow(error.message)
        }
        guard let prompt = (try? PolicyJSON(parsing: rewritten.body)).flatMap(NativeSubmission.init(request:)) else {
            throw V2Failure.invalidWorkflow("the workflow could not be read")
        }
        var job = Job(
            userID: caller.userID, source: .v2, workflow: Self.text(prompt.prompt), extraData: Self.text(prompt.extraData),
            idempotencyKey: key, requestDigest: SHA256.hash(data: body).map { String(format: "%02x", $0) }.joined(),
            metadata: submission.metadata.map(Self.text), createdAt: now())
        job.retryable = prompt.extraData[NativeSubmission.retryableKey] == .bool(true)
        let admission: JobQueue.Admission
        do {
            admission = try await jobs.submit(job, prompt: prompt.prompt, caller: caller)
        } catch StoreError.duplicate {
            throw Self.keyReused
        }
        switch admission {
        case .overQuota(let refusal):
            throw Self.failure(refusal)
        case .refused(_, let answer):
            let reason = (try? PolicyJSON(parsing: answer)) ?? .null
            throw V2Failure.invalidWorkflow(
                reason["error"]?["message"]?.stringValue ?? "ComfyUI refused the workflow",
                details: .object([
                    .init(key: "node_errors", value: reason["node_errors"] ?? .object([])),
                    .init(key: "error", value: reason["error"] ?? .null),
                ]))
        case .handedOver(let accepted, _), .held(let accepted, _):
            return Self.json(.created, try await representation(of: accepted, origin: origin))
        }
    }

    static let keyReused = V2Failure(
        status: 422, code: "idempotency_key_reuse", message: "this Idempotency-Key was used already; send a new one for a new job")

    /// A quota refusal as the contract words it: a full queue is `queue_full` (429, the SDK waits and retries), a
    /// day's budget used up `insufficient_credits` (402), an image too large an invalid workflow (422).
    static func failure(_ refusal: QuotaRefusal) -> V2Failure {
        let details = PolicyJSON.object([.init(key: "limit", value: .string(refusal.limit.rawValue))])
        if refusal.limit == .maxWaitingJobs {
            return V2Failure(status: 429, code: "queue_full", message: refusal.message, details: details, retryAfter: refusal.retryAfter)
        }
        if refusal.isBudget {
            return V2Failure(
                status: 402, code: "insufficient_credits", message: refusal.message, details: details, retryAfter: refusal.retryAfter)
        }
        return V2Failure.invalidWorkflow(refusal.message, details: details)
    }

    private func list(_ request: Request, caller: Caller, origin: String) async throws -> Response {
        let query = request.uri.queryParameters
        var limit = 20
        if let text = query["limit"].map(String.init) {
            guard let value = Int(text), (1...100).contains(value) else { throw V2Failure.invalidRequest("limit must be 1 to 100") }
            limit = value
        }
        var states: Set<JobState>?
        if let text = query["status"].map(String.init), !text.isEmpty {
            var chosen: Set<JobState> = []
            for name in text.split(separator: ",") {
                guard let state = JobState(rawValue: String(name)) else { throw V2Failure.invalidRequest("unknown status '\(name)'") }
                chosen.insert(state)
            }
            states = chosen
        }
        var before: Date?
        if let cursor = query["cursor"].map(String.init), !cursor.isEmpty {
            guard let milliseconds = Int64(cursor), milliseconds > 0 else {
                throw V2Failure(status: 422, code: "invalid_cursor", message: "the cursor is not one this gateway gave")
            }
            before = Date(timeIntervalSince1970: Double(milliseconds) / 1000)
        }
        var filters: [(String, String)] = []
        for (name, value) in query where name.hasPrefix("metadata[") && name.hasSuffix("]") {
            filters.append((String(name.dropFirst(9).dropLast()), String(value)))
        }
        guard filters.count <= 3 else {
            throw V2Failure(status: 422, code: "invalid_metadata_filter", message: "at most 3 metadata filters")
        }
        let page = try await store.jobs(userID: caller.userID, states: states, limit: limit, createdBefore: before)
        let positions = page.contains { $0.state == .queued } ? try await jobs.queuePositions() : [:]
        let matching = page.filter { job in
            let metadata = job.metadata.flatMap { try? PolicyJSON(parsing: Array($0.utf8)) }
            return filters.allSatisfy { metadata?[$0.0] == .string($0.1) }
        }
        var items: [PolicyJSON] = []
        for job in matching {
            let live = V2Representation.Live(queuePosition: job.state == .queued ? positions[job.id] : nil)
            guard case .object(var members) = V2Representation.job(job, live: live, origin: origin, now: now()) else { continue }
            members.append(.init(key: "create_time", value: V2Representation.date(job.createdAt)))
            members.append(.init(key: "update_time", value: V2Representation.date(job.completedAt ?? job.startedAt ?? job.createdAt)))
            items.append(.object(members))
        }
        var answer: [PolicyJSON.Member] = [.init(key: "jobs", value: .array(items))]
        if page.count == limit, let last = page.last {
            answer.append(.init(key: "next_cursor", value: .string(String(Int64((last.createdAt.timeIntervalSince1970 * 1000).rounded())))))
        }
        answer.append(.init(key: "truncated", value: .bool(false)))
        return Self.json(.ok, .object(answer))
    }

    private func cancel(_ job: Job, caller: Caller, origin: String) async throws -> Response {
        if !job.state.isFinished {
            let owner = Caller(userID: job.userID, userName: caller.userName, role: caller.role)
            let leftForComfyUI = try await jobs.cancel([job.id], by: caller.userID == job.userID ? caller : owner)
            if leftForComfyUI.contains(job.id), job.state == .running || job.state == .canceling {
                do {
                    try await jobs.stopAtBackend(job)
                } catch {
                    // The job stays `canceling`; the watch ends it once ComfyUI drops or finishes it.
                }
            }
        }
        let latest = try await store.job(id: job.id) ?? job
        return Self.json(.ok, try await representation(of: latest, origin: origin))
    }

    private func visibleJob(_ id: String, v2: V2Request, caller: Caller) async throws -> Job {
        guard let job = try await store.job(id: id), v2.reachesEveryone || job.userID == caller.userID else {
            throw V2Failure.notFound("no such job")
        }
        return job
    }

    private func representation(of job: Job, origin: String) async throws -> PolicyJSON {
        let position = try await jobs.queuePosition(of: job)
        return V2Representation.job(job, live: .init(queuePosition: position), origin: origin, now: now())
    }

    // MARK: Assets

    private enum FoundAsset {
        case upload(Asset)
        case output(Job, JobOutput)
    }

    /// An uploaded asset of the caller's, or one of their jobs' outputs (`<job id>.<index>`).
    private func visibleAsset(_ id: String, v2: V2Request, caller: Caller) async throws -> FoundAsset {
        if let asset = try await store.asset(id: id), v2.reachesEveryone || asset.userID == caller.userID {
            return .upload(asset)
        }
        if let dot = id.lastIndex(of: "."), let index = Int(id[id.index(after: dot)...]),
            let job = try await store.job(id: String(id[..<dot])), v2.reachesEveryone || job.userID == caller.userID,
            job.outputs.indices.contains(index)
        {
            return .output(job, job.outputs[index])
        }
        throw V2Failure.notFound("no such asset")
    }

    /// A job's output as an Asset record.
    static func asset(of job: Job, _ output: JobOutput) -> Asset {
        Asset(
            id: V2Representation.outputID(of: job, output), userID: job.userID, hash: nil, sizeBytes: output.sizeBytes ?? 0,
            contentType: output.contentType, name: output.fileName, createdAt: job.completedAt ?? job.createdAt, jobID: job.id,
            expiresAt: job.expiresAt)
    }

    private func upload(_ request: Request, caller: Caller, origin: String) async throws -> Response {
        let received = try await library.receive(request.body, contentType: request.headers[.contentType] ?? "")
        guard let path = received.filePath, let name = Self.inputPath(path) else {
            throw V2Failure(status: 422, code: "invalid_request", message: "file_path must name a file under input/, without '..'")
        }
        let contentType = received.contentType.flatMap { $0.isEmpty ? nil : $0 } ?? "application/octet-stream"
        let recorded = try await library.record(
            blob: received.blob.hash, size: received.blob.size, contentType: contentType, name: name, for: caller.userID, now: now())
        return Self.json(
            recorded.isNewRecord ? .created : .ok,
            V2Representation.asset(recorded.asset, origin: origin, now: now(), createdNew: recorded.isNewBlob))
    }

    private func fromHash(_ request: Request, caller: Caller, origin: String) async throws -> Response {
        let body = try await UpstreamProxy.collect(request.body, limit: 64 * 1024)
        guard let json = try? PolicyJSON(parsing: body), json.members != nil else {
            throw V2Failure.invalidRequest("the body is not a JSON object")
        }
        guard let text = json["hash"]?.stringValue, let hash = BlobHash(text.lowercased()) else {
            throw V2Failure(status: 422, code: "invalid_request", message: "hash must be blake3:<64 hex digits>")
        }
        let mine = try await store.assets(userID: caller.userID, hash: hash.description)
        guard let model = mine.first, library.blobs.contains(hash) else {
            throw V2Failure(status: 404, code: "blob_not_found", message: "no content of yours has this hash")
        }
        var name = model.name
        if let path = json["file_path"]?.stringValue {
            guard let checked = Self.inputPath(path) else {
                throw V2Failure(status: 422, code: "invalid_request", message: "file_path must name a file under input/, without '..'")
            }
            name = checked
        }
        let recorded = try await library.record(
            blob: hash, size: model.sizeBytes, contentType: model.contentType, name: name, for: caller.userID, now: now())
        return Self.json(
            recorded.isNewRecord ? .created : .ok, V2Representation.asset(recorded.asset, origin: origin, now: now(), createdNew: false))
    }

    /// `photo.png` or `input/<sub>/photo.png` as the name kept (without `input/`); nil for an absolute path, `..`, a
    /// backslash, or another root.
    static func inputPath(_ path: String) -> String? {
        guard !path.isEmpty, !path.hasPrefix("/"), !path.contains("\\"), path.utf8.count <= 1024 else { return nil }
        var parts = path.split(separator: "/", omittingEmptySubsequences: true)
        guard !parts.contains(where: { $0 == ".." || $0 == "." }), !parts.isEmpty else { return nil }
        if parts.count > 1 {
            guard parts.first == "input" else { return nil }
            parts.removeFirst()
        }
        return parts.joined(separator: "/")
    }

    private func content(_ found: FoundAsset, request: Request) async throws -> Response {
        switch found {
        case .upload(let asset):
            guard let hash = asset.hash.flatMap(BlobHash.init), let url = library.blobs.url(of: hash),
                let size = library.blobs.size(of: hash)
            else { throw V2Failure(status: 404, code: "output_unavailable", message: "the asset's content is gone") }
            var headers: HTTPFields = [.contentType: asset.contentType, .acceptRanges: "bytes", .cacheControl: "private, no-store"]
            var status = HTTPResponse.Status.ok
            var range = 0..<size
            switch ByteRange.request(request.headers[.range], size: size) {
            case .whole:
                break
            case .part(let part):
                range = part
                status = .partialContent
                headers[.contentRange] = "bytes \(part.lowerBound)-\(part.upperBound - 1)/\(size)"
            case .unsatisfiable:
                headers[.contentRange] = "bytes */\(size)"
                return Response(status: .rangeNotSatisfiable, headers: headers)
            }
            headers[.contentLength] = String(range.count)
            if request.method == .head || range.isEmpty { return Response(status: status, headers: headers) }
            let path = url.path
            let byteRange = range
            return Response(status: status, headers: headers, body: ResponseBody(contentLength: range.count) { writer in
                try await Self.stream(path: path, range: byteRange, to: &writer)
                try await writer.finish(nil)
            })
        case .output(let job, let output):
            guard let backend = pool.backend(of: job) else {
                throw V2Failure(status: 404, code: "output_unavailable", message: "the backend that ran this job is no longer configured")
            }
            let answer = try await backend.calls.view(output, range: request.headers[.range])
            switch answer.status.code {
            case 200, 206, 416:
                var headers: HTTPFields = [.cacheControl: "private, no-store"]
                for name in [HTTPField.Name.contentType, .contentLength, .contentRange, .acceptRanges] {
                    if let value = answer.headers[name] { headers[name] = value }
                }
                return Response(status: answer.status, headers: headers, body: request.method == .head ? ResponseBody() : answer.body)
            case 404:
                throw V2Failure(status: 404, code: "output_unavailable", message: "ComfyUI no longer has this output")
            default:
                throw V2Failure(status: 502, code: "upstream_error", message: "ComfyUI answered \(answer.status.code) for the output")
            }
        }
    }

    /// Streams part of a file in 64 KiB reads on the blocking-I/O thread pool.
    private static func stream(path: String, range: Range<Int>, to writer: inout some ResponseBodyWriter) async throws {
        let handle = try await NIOThreadPool.singleton.runIfActive { try FileHandle(forReadingFrom: URL(fileURLWithPath: path)) }
        defer { try? handle.close() }
        var offset = range.lowerBound
        while offset < range.upperBound {
            let length = min(64 * 1024, range.upperBound - offset)
            let start = offset
            let chunk = try await NIOThreadPool.singleton.runIfActive { () throws -> Data in
                try handle.seek(toOffset: UInt64(start))
                return try handle.read(upToCount: length) ?? Data()
            }
            guard !chunk.isEmpty else { break }
            try await writer.write(ByteBuffer(bytes: chunk))
            offset += chunk.count
        }
    }

    static func text(_ value: PolicyJSON) -> String {
        String(decoding: value.serialized(), as: UTF8.self)
    }
}

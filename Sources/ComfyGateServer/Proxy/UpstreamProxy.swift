import ComfyGateCore
import ComfyGateJobs
import ComfyGatePolicy
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// Carries every request that reaches it to ComfyUI as the access policy planned it (``ForwardPlan``): the
/// target as planned, headers cleaned by ``UpstreamRequestHeaders``, bodies streamed both ways — or, where the
/// plan rewrites a body or an answer, read and rewritten by the policy's own rewrites.
///
/// It is the last middleware of the router and never calls `next`.
struct UpstreamProxy: RouterMiddleware {
    typealias Context = GatewayRequestContext

    let router: BackendRouter
    let placement: InputPlacement
    let isolation: Isolation
    let comfyUIUsers: ComfyUIUsers
    let jobs: JobQueue

    /// The largest JSON request body read for a rewrite (`POST /prompt` carries whole workflows).
    static let maxJSONRequest = 64 << 20
    /// The largest JSON answer read for a rewrite (`/history` of 10,000 items, `/object_info`).
    static let maxJSONAnswer = 512 << 20

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let plan = context.plan else {
            return GatewayResponse.error(.internalServerError, "no access decision was taken for this request")
        }
        let route = router.route(path: request.uri.path, target: plan.target)
        let backend = if case .backend(let chosen) = route { chosen } else { router.pool.primary }
        var outgoing = UpstreamRequest(
            method: request.method,
            pathAndQuery: plan.target,
            headers: backend.headers.build(from: request.headers, authority: request.head.authority, peer: context.peerAddress),
            body: nil,
            contentLength: nil
        )
        guard let caller = context.identity?.caller else {
            // A public front-end file (``AccessPolicy/isPublicFrontEndFile(method:path:)``): as is, as nobody.
            do {
                return try await backend.transport.send(outgoing)
            } catch {
                error.log(to: context.logger, path: request.uri.path)
                return GatewayResponse.json(error.status, error.answer)
            }
        }
        if let comfyUser = await comfyUIUsers.header(for: caller) { outgoing.headers[ComfyUIUsers.header] = comfyUser }
        do {
            if let answer = try await answerFromJobs(request, plan: plan, caller: caller, context: context) {
                return answer
            }
            var uploadRefusal: RefusalBox?
            switch try await rewriteBody(of: request, plan: plan, caller: caller, context: context, into: &outgoing) {
            case .send:
                break
            case .sendUpload(let refusal):
                uploadRefusal = refusal
            case .answer(let response):
                return response
            }
            let response: Response
            do {
                response = try await send(outgoing, plan: plan, route: route, to: backend)
            } catch {
                // A form that broke a rule as it streamed: the client learns which.
                if error.kind == .clientBody, let refusal = uploadRefusal?.value { throw refusal }
                throw error
            }
            if router.pool.isShared, request.method == .post, Self.isUpload(request.uri.path), response.status == .ok {
                return try await keepUpload(response, from: backend)
            }
            return try await rewriteAnswer(response, plan: plan, caller: caller, request: request, backend: backend, headers: outgoing.headers)
        } catch let refusal as PolicyRefusal {
            return GatewayResponse.error(refusal.httpStatus, refusal.message)
        } catch let error as UpstreamError {
            error.log(to: context.logger, path: request.uri.path)
            return GatewayResponse.json(error.status, error.answer)
        }
    }

    /// Sends a request where it goes: to its backend; a file whose backend is not known to each backend in turn
    /// until one has it; a control of the queue or an interrupt naming prompts to every backend that answers (each
    /// acts only on the prompts it has). The answer is the chosen backend's (the primary's for controls).
    private func send(_ outgoing: UpstreamRequest, plan: ForwardPlan, route: BackendRouter.Route, to backend: Backend)
        async throws(UpstreamError) -> Response
    {
        let pool = router.pool
        if case .anyBackend = route, outgoing.body == nil {
            var answer = try await backend.transport.send(outgoing)
            for other in pool.members where other !== backend && other.isAvailable && answer.status == .notFound {
                if let found = try? await other.transport.send(outgoing) { answer = found }
            }
            return answer
        }
        let namesPrompt = outgoing.bodyBytes.flatMap { try? PolicyJSON(parsing: $0) }?["prompt_id"] != nil
        let fansOut = plan.body == .queueControl || (plan.body == .interrupt && namesPrompt)
        if pool.isShared, fansOut, let bytes = outgoing.bodyBytes {
            for other in pool.members where other !== backend && other.isAvailable {
                var copy = outgoing
                copy.setJSONBody(bytes)
                if let response = try? await other.transport.send(copy) {
                    _ = try? await Self.collect(response, limit: Self.maxJSONAnswer)
                }
            }
        }
        return try await backend.transport.send(outgoing)
    }

    static func isUpload(_ path: String) -> Bool {
        ["/upload/image", "/upload/mask", "/api/upload/image", "/api/upload/mask"].contains(path)
    }

    /// Keeps a file just uploaded to one backend, so that the backend running a job that names it gets it too; the
    /// client gets the backend's answer as it was.
    private func keepUpload(_ response: Response, from backend: Backend) async throws -> Response {
        var response = response
        let answer = try await Self.collect(response, limit: Self.maxJSONAnswer)
        response.body = ResponseBody(byteBuffer: ByteBuffer(bytes: answer))
        guard let uploaded = try? PolicyJSON(parsing: answer), let name = uploaded["name"]?.stringValue,
            (uploaded["type"]?.stringValue ?? "input") == "input"
        else { return response }
        let subfolder = uploaded["subfolder"]?.stringValue ?? ""
        let file = JobOutput(nodeID: "", fileName: name, subfolder: subfolder, fileType: .output, mediaKind: .image, contentType: "")
        do {
            let view = try await backend.calls.viewInput(file)
            let bytes = try await Self.collect(view, limit: UpstreamProxy.maxJSONRequest)
            guard view.status == .ok else { return response }
            try await placement.keep(
                bytes: bytes, path: subfolder.isEmpty ? name : subfolder + "/" + name,
                contentType: view.headers[.contentType] ?? "application/octet-stream", placedOn: backend.name)
        } catch {
            isolation.logger.warning("an upload could not be kept for the other backends", metadata: ["file": "\(name)", "error": "\(error)"])
        }
        return response
    }

    private enum BodyOutcome {
        case send
        /// A streamed upload: a refusal found in the form as it streams ends the exchange.
        case sendUpload(RefusalBox)
        /// Nothing is left to ask ComfyUI: the gateway answers.
        case answer(Response)
    }

    /// Sets the body ComfyUI gets, as the plan says.
    private func rewriteBody(
        of request: Request, plan: ForwardPlan, caller: Caller, context: Context, into outgoing: inout UpstreamRequest
    ) async throws -> BodyOutcome {
        let contentLength = request.headers[.contentLength].flatMap { Int($0) }
        let hasBody = (contentLength ?? 0) > 0 || request.headers[.transferEncoding] != nil
        if plan.body != .asSent, let encoding = request.headers[.contentEncoding], encoding.lowercased() != "identity" {
            // ComfyUI would unpack the body; the gateway checks the bytes as sent, so they must be what ComfyUI reads.
            throw PolicyRefusal(status: 415, message: "a \(encoding)-encoded body cannot be checked: send it unencoded")
        }
        switch plan.body {
        case .asSent:
            // Everything that reaches this point may go on: a client waiting for `100 Continue` may send its body.
            context.proceedIfExpected(request)
            if hasBody {
                outgoing.body = request.body
                outgoing.contentLength = contentLength
            }
        case .prompt:
            preconditionFailure("prompts are answered by the job queue")
        case .upload:
            guard let rewriter = UploadFormRewriter(
                contentType: request.headers[.contentType] ?? "", space: caller.space,
                ownsFile: isolation.fileOwnership(of: caller)
            ) else {
                throw PolicyRefusal.badRequest("an upload must be multipart/form-data")
            }
            context.proceedIfExpected(request)
            let upload = RewrittenUploadBody(
                body: CheckedRequestBody(body: request.body, expectedLength: contentLength), rewriter: rewriter
            )
            outgoing.body = RequestBody(asyncSequence: upload)
            outgoing.contentLength = nil
            return .sendUpload(upload.refusal)
        case .queueControl, .historyControl:
            context.proceedIfExpected(request)
            var body = try await Self.collect(request.body, limit: Self.maxJSONRequest)
            if !caller.isAdmin {
                guard let rewritten = try ControlRequests.deletion(
                    body, ownIDs: isolation.policy.ownership.prompts(ownedBy: caller.userID), owns: isolation.promptOwnership(of: caller)
                ) else { return .answer(Self.emptyOK) }
                body = rewritten
            }
            guard let rest = try await settleControl(body, isQueue: plan.body == .queueControl, caller: caller) else {
                return .answer(Self.emptyOK)
            }
            outgoing.setJSONBody(rest)
        case .interrupt:
            context.proceedIfExpected(request)
            let body = try await Self.collect(request.body, limit: Self.maxJSONRequest)
            let running = try await runningPrompt(of: caller, headers: outgoing.headers)
            guard let rewritten = try ControlRequests.interrupt(
                body, runningOwnPrompt: running, owns: isolation.promptOwnership(of: caller)
            ) else { return .answer(Self.emptyOK) }
            outgoing.setJSONBody(rewritten)
        }
        return .send
    }

    /// ComfyUI's answer, rewritten as the plan says when it is a successful JSON answer.
    private func rewriteAnswer(
        _ response: Response, plan: ForwardPlan, caller: Caller, request: Request, backend: Backend, headers: HTTPFields
    ) async throws -> Response {
        guard plan.answer != .asSent, response.status == .ok else { return response }
        var response = response
        var answer = try await Self.collect(response, limit: Self.maxJSONAnswer)
        if plan.answer == .queue { answer = await mergingOtherQueues(into: answer, besides: backend, headers: headers) }
        let rewritten: [UInt8]
        switch plan.answer {
        case .asSent, .webSocket, .history, .historyItem:
            rewritten = answer
        case .queue:
            let held = try await jobs.heldJobs(visibleTo: caller)
            var outputs: [String: [String]] = [:]
            for job in held { outputs[job.id] = await jobs.outputsToExecute(of: job) }
            rewritten = try NativeViews.queue(
                try AnswerFilter.queue(answer, for: caller), adding: held, firstNumber: 0,
                outputsToExecute: { outputs[$0.id] ?? [] })
        case .objectInfo:
            let filtered = try AnswerFilter.objectInfo(answer, for: caller)
            isolation.learn(uploadInputs: filtered.uploadInputs)
            rewritten = filtered.answer
        case .jobs(let limit, let offset):
            rewritten = try AnswerFilter.jobs(
                answer, page: try JobsPage(queryLimit: limit, queryOffset: offset), for: caller,
                owns: isolation.promptOwnership(of: caller)
            )
        case .job:
            rewritten = try AnswerFilter.job(answer, for: caller)
        case .extensions:
            rewritten = Self.addingGatewayExtension(to: answer)
        }
        response.headers[.contentLength] = String(rewritten.count)
        response.headers[.contentEncoding] = nil
        response.body = ResponseBody(byteBuffer: ByteBuffer(bytes: rewritten))
        return response
    }

    /// ComfyUI's list of front-end extension URLs with the gateway's own at the end (the list as it came when it is
    /// not a list of strings).
    static func addingGatewayExtension(to answer: [UInt8]) -> [UInt8] {
        guard var urls = (try? JSONSerialization.jsonObject(with: Data(answer))) as? [String] else { return answer }
        if !urls.contains(StaticFiles.extensionURL) { urls.append(StaticFiles.extensionURL) }
        return (try? JSONSerialization.data(withJSONObject: urls, options: [.withoutEscapingSlashes])).map(Array.init) ?? answer
    }

    /// Answers what the gateway's jobs answer without ComfyUI: `POST /prompt` (a job), `GET /history` and
    /// `GET /history/{id}` (the jobs' entries); nil for everything else.
    private func answerFromJobs(_ request: Request, plan: ForwardPlan, caller: Caller, context: Context) async throws -> Response? {
        if plan.body == .prompt {
            context.proceedIfExpected(request)
            let submission = try PromptSubmission.rewrite(
                try await Self.collect(request.body, limit: Self.maxJSONRequest), for: caller, rules: isolation.promptRules(for: caller)
            )
            guard let native = (try? PolicyJSON(parsing: submission.body)).flatMap(NativeSubmission.init(request:)) else {
                return GatewayResponse.rawJSON(.badRequest, NativeSubmission.noPromptAnswer.serialized())
            }
            let answer = try await jobs.submit(native, caller: caller)
            var response = GatewayResponse.rawJSON(HTTPResponse.Status(code: answer.status), answer.body)
            if let retryAfter = answer.retryAfter { response.headers[.retryAfter] = String(retryAfter) }
            return response
        }
        switch plan.answer {
        case .history(let maxItems, let offset):
            let page = try HistoryPage(queryMaxItems: maxItems, queryOffset: offset)
            // "The last N" needs only the newest N jobs: a user's jobs finish in the order they were made.
            let newest = page.offset < 0 ? page.maxItems.map { max($0, 1) } ?? Self.historyLimit : Self.historyLimit
            let entries = NativeViews.history(try await jobs.history(for: caller, newest: min(newest, Self.historyLimit)))
            let cut = try AnswerFilter.history(entries, page: page, for: caller)
            isolation.recordOutputs(cut.outputFiles, caller: caller)
            return GatewayResponse.rawJSON(.ok, cut.answer)
        case .historyItem(let promptID):
            let entries = NativeViews.history(try await jobs.historyItem(promptID, for: caller).map { [$0] } ?? [])
            let cut = try AnswerFilter.historyItem(entries, for: caller)
            isolation.recordOutputs(cut.outputFiles, caller: caller)
            return GatewayResponse.rawJSON(.ok, cut.answer)
        default:
            return nil
        }
    }

    /// The most history entries a `/history` answer holds, as ComfyUI keeps at most.
    static let historyLimit = 10_000

    /// Carries out a `POST /queue` or `POST /history` body on the gateway's jobs: held jobs are cancelled, history
    /// entries forgotten. Returns the body still to send ComfyUI (ids it may hold), or nil when nothing is left.
    private func settleControl(_ body: [UInt8], isQueue: Bool, caller: Caller) async throws -> [UInt8]? {
        guard var request = try? PolicyJSON(parsing: body), request.members != nil else {
            throw PolicyRefusal.badRequest("the body must be a JSON object")
        }
        let clear = request["clear"]?.isTruthy == true
        let ids: [String]?
        switch request["delete"] {
        case nil: ids = nil
        case .array(let sent)?: ids = sent.compactMap(\.stringValue)
        default: throw PolicyRefusal.badRequest("delete must be an array of prompt ids")
        }
        if isQueue {
            if clear { try await jobs.cancelAllHeld(by: caller) }
            if let ids { request["delete"] = .array(try await jobs.cancel(ids, by: caller).map(PolicyJSON.string)) }
        } else {
            if clear { try await jobs.forgetHistory(nil, by: caller) }
            if let ids { try await jobs.forgetHistory(ids, by: caller) }
        }
        if !clear, request["delete"]?.arrayValue?.isEmpty ?? true { return nil }
        return request.serialized()
    }

    /// The id of the caller's prompt a backend is running, from their `/queue`s.
    private func runningPrompt(of caller: Caller, headers: HTTPFields) async throws -> String? {
        for backend in router.pool.members where backend.isAvailable || !router.pool.isShared {
            let response = try await backend.transport.send(
                UpstreamRequest(method: .get, pathAndQuery: "/queue", headers: headers, body: nil, contentLength: nil)
            )
            guard response.status == .ok else { continue }
            let queue = try await Self.collect(response, limit: Self.maxJSONAnswer)
            if let running = Isolation.runningPrompt(inQueue: queue, ownedBy: caller, ownership: isolation.policy.ownership) {
                return running
            }
        }
        return nil
    }

    /// ComfyUI's `/queue` answer with the running and waiting items of the other backends added.
    private func mergingOtherQueues(into answer: [UInt8], besides backend: Backend, headers: HTTPFields) async -> [UInt8] {
        guard router.pool.isShared, var merged = try? PolicyJSON(parsing: answer) else { return answer }
        for other in router.pool.members where other !== backend && other.isAvailable {
            guard let response = try? await other.transport.send(
                UpstreamRequest(method: .get, pathAndQuery: "/queue", headers: headers, body: nil, contentLength: nil)),
                response.status == .ok, let bytes = try? await Self.collect(response, limit: Self.maxJSONAnswer),
                let queue = try? PolicyJSON(parsing: bytes)
            else { continue }
            for list in ["queue_running", "queue_pending"] {
                merged[list] = .array((merged[list]?.arrayValue ?? []) + (queue[list]?.arrayValue ?? []))
            }
        }
        return merged.serialized()
    }

    static var emptyOK: Response { Response(status: .ok, headers: [.contentLength: "0"]) }

    /// A request body read whole, for a rewrite.
    static func collect(_ body: RequestBody, limit: Int) async throws -> [UInt8] {
        var collected: [UInt8] = []
        do {
            for try await buffer in body {
                guard collected.count + buffer.readableBytes <= limit else {
                    throw PolicyRefusal(status: 413, message: "the request body is larger than \(limit) bytes")
                }
                collected += buffer.readableBytesView
            }
        } catch let refusal as PolicyRefusal {
            throw refusal
        } catch {
            throw PolicyRefusal.badRequest("the request body broke off")
        }
        return collected
    }

    /// A response body read whole, for a rewrite.
    static func collect(_ response: Response, limit: Int) async throws -> [UInt8] {
        let collector = ResponseCollector(limit: limit)
        try await response.body.write(collector)
        guard !collector.overflowed else {
            throw PolicyRefusal(status: 502, message: "ComfyUI's answer is larger than \(limit) bytes")
        }
        return collector.bytes
    }
}

extension UpstreamRequest {
    /// Sends a rewritten JSON body.
    fileprivate mutating func setJSONBody(_ bytes: [UInt8]) {
        body = RequestBody(buffer: ByteBuffer(bytes: bytes))
        contentLength = bytes.count
        headers[.contentType] = "application/json"
        bodyBytes = bytes
    }
}

/// Gathers a response body that is about to be rewritten.
private final class ResponseCollector: ResponseBodyWriter {
    let limit: Int
    var bytes: [UInt8] = []
    var overflowed = false

    init(limit: Int) { self.limit = limit }

    func write(_ buffer: ByteBuffer) async throws {
        guard !overflowed else { return }
        if bytes.count + buffer.readableBytes > limit { overflowed = true } else { bytes += buffer.readableBytesView }
    }

    func finish(_ trailingHeaders: HTTPFields?) async throws {}
}

/// The refusal a streamed upload ran into, kept for the answer.
final class RefusalBox: Sendable {
    private let stored = Mutex<PolicyRefusal?>(nil)

    var value: PolicyRefusal? { stored.withLock { $0 } }

    func set(_ refusal: PolicyRefusal) { stored.withLock { $0 = refusal } }
}

/// An upload's body with its form rewritten as it streams.
struct RewrittenUploadBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer

    let body: CheckedRequestBody
    let rewriter: UploadFormRewriter
    let refusal = RefusalBox()

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: body.makeAsyncIterator(), rewriter: rewriter, refusal: refusal)
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: CheckedRequestBody.AsyncIterator
        var rewriter: UploadFormRewriter
        let refusal: RefusalBox
        var finished = false

        mutating func next() async throws -> ByteBuffer? {
            do {
                while !finished {
                    guard let chunk = try await base.next() else {
                        finished = true
                        let rest = try rewriter.finish()
                        return rest.isEmpty ? nil : ByteBuffer(bytes: rest)
                    }
                    let out = try rewriter.consume(chunk.readableBytesView)
                    if !out.isEmpty { return ByteBuffer(bytes: out) }
                }
                return nil
            } catch let error as PolicyRefusal {
                refusal.set(error)
                throw error
            }
        }
    }
}

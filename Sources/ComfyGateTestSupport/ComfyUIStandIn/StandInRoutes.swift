import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import NIOCore
import Synchronization

/// ComfyUI core routes (A.5) with the shapes and status codes of 0.3.64.
enum StandInRoutes {
    struct Unhandled: Error {}

    static func jsonBody(_ request: Request, state: StandInState) async throws -> StandInJSON {
        let bytes = try await standInReadBody(request, limit: state.options.maxUploadSize)
        do { return try StandInJSON.parse(bytes) } catch { throw Unhandled() }  // json.loads failure → 500
    }

    static func register(on routes: StandInRouteTable, state: StandInState) {
        let options = state.options
        routes.add("/", .get) { request, context in
            var response =
                if let webRoot = state.webRoot {
                    try await StandInStaticFiles.file("index.html", in: webRoot, request: request, context: context)
                } else {
                    StandInResponses.text(options.indexHTML, contentType: "text/html")
                }
            response.headers[.cacheControl] = "no-cache"
            response.headers[HTTPField.Name("Pragma")!] = "no-cache"
            response.headers[.expires] = "0"
            return response
        }
        routes.add("/ws", .get) { request, _ in StandInWebSocket.notAnUpgrade(request) }
        routes.add("/embeddings", .get) { _, _ in StandInResponses.json(.array(options.embeddings.map { .string($0) })) }
        routes.add("/models", .get) { _, _ in StandInResponses.json(.array(options.models.keys.sorted().map { .string($0) })) }
        routes.add("/models/{folder}", .get) { _, context in
            guard let folder = context.parameters.get("folder"), let files = options.models[folder] else {
                return StandInResponses.bare(.notFound)
            }
            return StandInResponses.json(.array(files.map { .string($0) }))
        }
        routes.add("/extensions", .get) { _, _ in
            let urls = state.webRoot.map(StandInStaticFiles.extensionURLs(root:)) ?? options.extensions
            return StandInResponses.json(.array(urls.map { .string($0) }))
        }
        routes.add("/system_stats", .get) { _, _ in StandInResponses.json(systemStats(options)) }
        routes.add("/features", .get) { _, _ in StandInResponses.json(state.featureFlags) }
        routes.add("/prompt", .get) { _, _ in
            let remaining = state.inner.withLock { StandInState.queueRemaining($0) }
            return StandInResponses.json(["exec_info": ["queue_remaining": .int(remaining)]])
        }
        routes.add("/prompt", .post) { request, _ in try await postPrompt(request, state: state) }
        routes.add("/object_info", .get) { _, _ in
            let inputs = state.files.list(.input)
            return StandInResponses.json(
                .object(state.catalog.nodes.map { ($0.name, state.catalog.nodeInfo($0, models: options.models, inputFiles: inputs)) }))
        }
        routes.add("/object_info/{node_class}", .get) { _, context in
            guard let name = context.parameters.get("node_class"), let node = state.catalog.node(name) else {
                return StandInResponses.json([:])
            }
            let info = state.catalog.nodeInfo(node, models: options.models, inputFiles: state.files.list(.input))
            return StandInResponses.json(.object([(name, info)]))
        }
        routes.add("/history", .get) { request, _ in
            let maxItems = try StandInLoginMiddleware.queryValue(request, "max_items").map { value -> Int in
                guard let n = Int(value) else { throw Unhandled() }
                return n
            }
            var offset = try StandInLoginMiddleware.queryValue(request, "offset").map { value -> Int in
                guard let n = Int(value) else { throw Unhandled() }
                return n
            } ?? -1
            let history = state.inner.withLock { $0.history }
            if offset < 0, let maxItems { offset = history.count - maxItems }
            var out: [(String, StandInJSON)] = []
            for (i, entry) in history.enumerated() where i >= offset {
                out.append(entry)
                if let maxItems, out.count >= maxItems { break }
            }
            return StandInResponses.json(.object(out))
        }
        routes.add("/history/{prompt_id}", .get) { _, context in
            let id = context.parameters.get("prompt_id") ?? ""
            let entry = state.inner.withLock { s in s.history.last(where: { $0.0 == id })?.1 }
            return StandInResponses.json(entry.map { .object([(id, $0)]) } ?? [:])
        }
        routes.add("/history", .post) { request, _ in
            let json = try await jsonBody(request, state: state)
            guard json.objectValue != nil else { throw Unhandled() }
            state.inner.withLock { s in
                if json["clear"]?.isTruthy == true { s.history.removeAll() }
                for id in json["delete"]?.arrayValue ?? [] { s.history.removeAll { $0.0 == id.stringValue } }
            }
            return StandInResponses.bare(.ok)
        }
        routes.add("/queue", .get) { _, _ in
            let (running, pending) = state.inner.withLock { s in
                (s.running.map { [$0.tuple] } ?? [], s.pending.sorted { ($0.sortKey, $0.sequence) < ($1.sortKey, $1.sequence) }.map(\.tuple))
            }
            return StandInResponses.json(["queue_running": .array(running), "queue_pending": .array(pending)])
        }
        routes.add("/queue", .post) { request, _ in
            let json = try await jsonBody(request, state: state)
            guard json.objectValue != nil else { throw Unhandled() }
            state.inner.withLock { s in
                if let clear = json["clear"], clear.isTruthy {
                    s.pending.removeAll()
                    StandInState.broadcastStatus(in: &s)
                }
                for id in json["delete"]?.arrayValue ?? [] {
                    let before = s.pending.count
                    s.pending.removeAll { $0.promptId == id.stringValue }
                    if s.pending.count != before { StandInState.broadcastStatus(in: &s) }
                }
            }
            return StandInResponses.bare(.ok)
        }
        routes.add("/interrupt", .post) { request, _ in
            let bytes = try await standInReadBody(request, limit: options.maxUploadSize)
            let json = (try? StandInJSON.parse(bytes)) ?? [:]
            let promptId = json["prompt_id"]
            state.inner.withLock { s in
                if let promptId, promptId.isTruthy {
                    if let running = s.running, running.promptId == promptId.stringValue { s.interruptRequested = true }
                } else {
                    s.interruptRequested = true
                }
            }
            return StandInResponses.bare(.ok)
        }
        routes.add("/free", .post) { request, _ in
            let json = try await jsonBody(request, state: state)
            guard json.objectValue != nil else { throw Unhandled() }
            state.inner.withLock { $0.freeRequests.append(json) }
            return StandInResponses.bare(.ok)
        }
        StandInUserRoutes.register(on: routes, state: state)
        StandInAppManagerRoutes.register(on: routes, state: state)
        if options.jobsAPI { StandInJobs.register(on: routes, state: state) }
        routes.add("/upload/image", .post) { request, _ in try await StandInFileRoutes.upload(request, state: state) }
        routes.add("/view", .get) { request, context in try await StandInFileRoutes.view(request, context: context, state: state) }
    }

    static func systemStats(_ options: ComfyUIStandIn.Options) -> StandInJSON {
        [
            "system": [
                "os": "posix",
                "ram_total": .int(options.ramTotal),
                "ram_free": .int(options.ramFree),
                "comfyui_version": .string(options.comfyUIVersion),
                "required_frontend_version": .string(options.requiredFrontendVersion),
                "installed_templates_version": .string(options.installedTemplatesVersion),
                "required_templates_version": .string(options.requiredTemplatesVersion),
                "python_version": .string(options.pythonVersion),
                "pytorch_version": .string(options.pytorchVersion),
                "embedded_python": false,
                "argv": .array(options.argv.map { .string($0) }),
            ],
            "devices": .array(
                options.devices.map { d in
                    [
                        "name": .string(d.name), "type": .string(d.type), "index": d.index.map { .int($0) } ?? .null,
                        "vram_total": .int(d.vramTotal), "vram_free": .int(d.vramFree),
                        "torch_vram_total": .int(d.vramTotal), "torch_vram_free": .int(d.vramFree),
                    ]
                }),
        ]
    }

    static func postPrompt(_ request: Request, state: StandInState) async throws -> Response {
        let json = try await jsonBody(request, state: state)
        guard json.objectValue != nil else { throw Unhandled() }
        let (number, sortKey, sequence): (StandInJSON, Double, Int) = try state.inner.withLock { s in
            s.sequence += 1
            if let explicit = json["number"] {
                let value: Double
                switch explicit {
                case .int(let i): value = Double(i)
                case .double(let d): value = d
                case .string(let str): guard let d = Double(str) else { throw Unhandled() }; value = d
                default: throw Unhandled()
                }
                return (.double(value), value, s.sequence)
            }
            var n = s.number
            if let front = json["front"], front.isTruthy { n = -n }
            s.number += 1
            return (.int(n), Double(n), s.sequence)
        }
        guard let prompt = json["prompt"] else {
            return StandInResponses.json(
                ["error": StandInNodeCatalog.error("no_prompt", "No prompt provided", "No prompt provided"), "node_errors": [:]],
                status: .badRequest)
        }
        guard let members = prompt.objectValue else { throw Unhandled() }
        let promptId: String
        switch json["prompt_id"] {
        case .none: promptId = UUID().uuidString.lowercased()
        case .some(.string(let s)): promptId = s
        case .some(let other): promptId = other.serialized
        }
        let targets = json["partial_execution_targets"]?.arrayValue?.compactMap { $0.stringValue }
        let validation = state.catalog.validate(
            prompt: members, models: state.options.models, inputFiles: state.files.list(.input), targets: targets,
            imageFileExists: { name in
                state.files.annotatedFilePath(name, confined: state.options.confineAnnotatedFilePaths)
                    .map(FileManager.default.fileExists(atPath:)) ?? false
            })
        var extra = json["extra_data"]?.objectValue ?? []
        if let client = json["client_id"] { StandInJSON.setMember("client_id", client, in: &extra) }
        switch validation {
        case .failed(let error, let nodeErrors):
            return StandInResponses.json(["error": error, "node_errors": nodeErrors], status: .badRequest)
        case .ok(let outputs, let nodeErrors):
            extra.removeAll { $0.0 == "api_key_comfy_org" || $0.0 == "auth_token_comfy_org" }
            if state.options.jobsAPI { StandInJSON.setMember("create_time", StandInExecutor.timestamp(), in: &extra) }
            let item = StandInQueueItem(
                number: number, sortKey: sortKey, sequence: sequence, promptId: promptId, prompt: prompt, extraData: .object(extra),
                outputs: outputs)
            state.inner.withLock { s in
                s.pending.append(item)
                StandInState.broadcastStatus(in: &s)
            }
            state.workerWake.yield()
            return StandInResponses.json(["prompt_id": .string(promptId), "number": number, "node_errors": nodeErrors])
        }
    }
}

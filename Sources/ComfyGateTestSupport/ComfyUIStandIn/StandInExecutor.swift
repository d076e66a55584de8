import Foundation
import Logging
import Synchronization

/// Runs queued prompts one at a time, in queue order, emitting the websocket messages of F.1.
struct StandInExecutor: Sendable {
    enum NodeValue: Sendable {
        case image(width: Int, height: Int, batch: Int, color: Int)
        /// A latent of an image this size (pixels).
        case latent(width: Int, height: Int, batch: Int)
        case opaque(String)
    }

    struct NodeResult: Sendable {
        var outputs: [NodeValue]
        var ui: StandInJSON?
    }

    struct NodeFailure: Error {
        let message: String
        let type: String
    }

    let state: StandInState

    static func timestamp() -> StandInJSON { .int(Int(Date().timeIntervalSince1970 * 1000)) }

    func run() async {
        for await _ in state.workerStream {
            while let item = takeNext() {
                await execute(item)
            }
        }
    }

    private func takeNext() -> StandInQueueItem? {
        state.inner.withLock { s in
            guard !s.pending.isEmpty else { return nil }
            let index = s.pending.indices.min { a, b in
                (s.pending[a].sortKey, s.pending[a].sequence) < (s.pending[b].sortKey, s.pending[b].sequence)
            }!
            let item = s.pending.remove(at: index)
            s.running = item
            s.runningNode = nil
            s.interruptRequested = false
            StandInState.broadcastStatus(in: &s)
            return item
        }
    }

    // MARK: graph helpers

    private static func inputs(of node: StandInJSON) -> [(String, StandInJSON)] { node["inputs"]?.objectValue ?? [] }

    private static func link(_ value: StandInJSON) -> (String, Int)? {
        guard case .array(let a) = value, a.count == 2, let slot = a[1].intValue,
            let id = a[0].stringValue ?? a[0].intValue.map(String.init)
        else { return nil }
        return (id, slot)
    }

    /// Cache key: class and literal inputs, with linked inputs replaced by their source's key.
    private static func signature(_ id: String, graph: [String: StandInJSON], memo: inout [String: String], depth: Int = 0) -> String {
        if let known = memo[id] { return known }
        guard let node = graph[id], depth < 1000 else { return "missing:\(id)" }
        var parts: [String] = [node["class_type"]?.serialized ?? "null"]
        for (name, value) in inputs(of: node).sorted(by: { $0.0 < $1.0 }) {
            if let (source, slot) = link(value) {
                parts.append("\(name)=<\(signature(source, graph: graph, memo: &memo, depth: depth + 1))>[\(slot)]")
            } else {
                parts.append("\(name)=\(value.serialized)")
            }
        }
        let sig = parts.joined(separator: ";")
        memo[id] = sig
        return sig
    }

    // MARK: execution

    private func execute(_ item: StandInQueueItem) async {
        let promptId = StandInJSON.string(item.promptId)
        let client = item.clientId
        let members = item.prompt.objectValue ?? []
        let graph = Dictionary(members, uniquingKeysWith: { _, last in last })
        var messages: [StandInJSON] = []
        func addMessage(_ event: String, _ data: StandInJSON, broadcast: Bool = false) {
            messages.append([.string(event), data])
            if broadcast {
                state.send(event, data, to: nil)
            } else if client != nil {
                state.send(event, data, to: client)
            }
        }

        addMessage("execution_start", ["prompt_id": promptId, "timestamp": Self.timestamp()])

        var memo: [String: String] = [:]
        var signatures: [String: String] = [:]
        for (id, _) in members { signatures[id] = Self.signature(id, graph: graph, memo: &memo) }
        let previousCache = state.inner.withLock { $0.cache }
        var results: [String: NodeResult] = [:]
        var cachedIds: [String] = []
        for (id, _) in members where signatures[id].flatMap({ previousCache[$0] }) != nil {
            cachedIds.append(id)
            results[id] = previousCache[signatures[id]!]
        }
        addMessage(
            "execution_cached", ["nodes": .array(cachedIds.map { .string($0) }), "prompt_id": promptId, "timestamp": Self.timestamp()])

        // Execution order: outputs and their non-cached ancestors, dependencies first.
        var order: [String] = []
        var visited: Set<String> = []
        func stage(_ id: String) {
            guard visited.insert(id).inserted, let node = graph[id] else { return }
            for (_, value) in Self.inputs(of: node) {
                if let (source, _) = Self.link(value), !cachedIds.contains(source) { stage(source) }
            }
            order.append(id)
        }
        for output in item.outputs { stage(output) }

        var progress: [(String, String)] = []  // node id → "running" | "finished"
        func sendProgress(_ id: String, _ nodeState: String) {
            if let i = progress.firstIndex(where: { $0.0 == id }) { progress[i].1 = nodeState } else { progress.append((id, nodeState)) }
            let nodes = StandInJSON.object(
                progress.map { id, st in
                    (
                        id,
                        [
                            "value": .double(st == "finished" ? 1.0 : 0.0), "max": 1.0, "state": .string(st), "node_id": .string(id),
                            "prompt_id": promptId, "display_node_id": .string(id), "parent_node_id": nil, "real_node_id": .string(id),
                        ]
                    )
                })
            // progress_state goes to the prompt's client, or is broadcast when there is none (B.2).
            state.send("progress_state", ["prompt_id": promptId, "nodes": nodes], to: client)
        }

        var executed: [String] = []
        var success = true
        /// `execution_interrupted`, broadcast as `PromptExecutor.handle_execution_error` sends it (G.6).
        func interrupted(at id: String, classType: String) {
            addMessage(
                "execution_interrupted",
                [
                    "prompt_id": promptId, "node_id": .string(id), "node_type": .string(classType),
                    "executed": .array(executed.map { .string($0) }), "timestamp": Self.timestamp(),
                ], broadcast: true)
            success = false
        }
        for id in order {
            let classType = graph[id]?["class_type"]?.stringValue ?? ""
            if state.inner.withLock({ $0.interruptRequested }) {
                interrupted(at: id, classType: classType)
                break
            }
            if let cached = results[id], cachedIds.contains(id) {
                if client != nil {
                    state.send(
                        "executed", ["node": .string(id), "display_node": .string(id), "output": cached.ui ?? .null, "prompt_id": promptId],
                        to: client)
                }
                sendProgress(id, "finished")
                continue
            }
            state.inner.withLock { $0.runningNode = id }
            sendProgress(id, "running")
            if client != nil {
                state.send("executing", ["node": .string(id), "display_node": .string(id), "prompt_id": promptId], to: client)
            }
            if classType == "KSampler", client != nil, let node = graph[id] {
                // The sampler's step callback: `progress` per step (comfy.utils.ProgressBar via the server's hook).
                let steps = intInput(node, "steps", default: 20)
                for step in 1...max(1, min(steps, 10000)) {
                    state.send("progress", ["value": .int(step), "max": .int(steps), "prompt_id": promptId, "node": .string(id)], to: client)
                }
            }
            // A node interrupted while it runs stops where it is, as `throw_exception_if_processing_interrupted` does.
            guard await waitWhileHeld(until: .now + state.options.nodeExecutionDelay) else { return }
            if state.inner.withLock({ $0.interruptRequested }) {
                interrupted(at: id, classType: classType)
                break
            }
            do {
                let result = try compute(id: id, graph: graph, results: results, item: item)
                results[id] = result
                executed.append(id)
                if let ui = result.ui, client != nil {
                    state.send("executed", ["node": .string(id), "display_node": .string(id), "output": ui, "prompt_id": promptId], to: client)
                }
                sendProgress(id, "finished")
            } catch {
                let failure = error as? NodeFailure ?? NodeFailure(message: "\(error)", type: "Exception")
                addMessage(
                    "execution_error",
                    [
                        "prompt_id": promptId, "node_id": .string(id), "node_type": .string(classType),
                        "executed": .array(executed.map { .string($0) }), "exception_message": .string(failure.message),
                        "exception_type": .string(failure.type), "traceback": [], "current_inputs": [:], "current_outputs": [:],
                        "timestamp": Self.timestamp(),
                    ])
                success = false
                break
            }
        }
        if success { addMessage("execution_success", ["prompt_id": promptId, "timestamp": Self.timestamp()]) }

        var outputs: [(String, StandInJSON)] = []
        var meta: [(String, StandInJSON)] = []
        for (id, _) in members {
            guard let ui = results[id]?.ui else { continue }
            outputs.append((id, ui))
            meta.append(
                (id, ["node_id": .string(id), "display_node": .string(id), "parent_node": nil, "real_node_id": .string(id)]))
        }
        let entry: StandInJSON = [
            "prompt": item.tuple,
            "outputs": .object(outputs),
            "status": ["status_str": success ? "success" : "error", "completed": .bool(success), "messages": .array(messages)],
            "meta": .object(meta),
        ]
        state.inner.withLock { s in
            var cache: [String: NodeResult] = [:]
            for (id, result) in results { if let sig = signatures[id] { cache[sig] = result } }
            s.cache = cache
            s.history.removeAll { $0.0 == item.promptId }
            s.history.append((item.promptId, entry))
            if s.history.count > 10000 { s.history.removeFirst() }
            s.running = nil
            s.runningNode = nil
            StandInState.broadcastStatus(in: &s)
            let done = StandInState.message("executing", ["node": nil, "prompt_id": promptId])
            StandInState.deliver(.text(done), to: client, in: &s)
        }
    }

    /// Waits while the stand-in holds execution (``ComfyUIStandIn/holdExecution()``) or the node's time
    /// (``ComfyUIStandIn/Options/nodeExecutionDelay``) is not up, and no interrupt is requested; false when the
    /// stand-in is shutting down.
    private func waitWhileHeld(until end: ContinuousClock.Instant) async -> Bool {
        while state.inner.withLock({ ($0.executionHeld || .now < end) && !$0.interruptRequested }) {
            do { try await Task.sleep(for: .milliseconds(2)) } catch { return false }
        }
        return !Task.isCancelled
    }

    private func intInput(_ node: StandInJSON, _ name: String, default def: Int) -> Int {
        guard let value = Self.inputs(of: node).last(where: { $0.0 == name })?.1 else { return def }
        switch value {
        case .int(let i): return i
        case .double(let d) where d.isFinite: return Int(d)
        case .string(let s): return Int(s.trimmingWhitespace()) ?? def
        case .bool(let b): return b ? 1 : 0
        default: return def
        }
    }

    private func linkedValue(_ node: StandInJSON, _ name: String, results: [String: NodeResult]) throws -> NodeValue {
        guard let value = Self.inputs(of: node).last(where: { $0.0 == name })?.1, let (source, slot) = Self.link(value),
            let result = results[source], slot < result.outputs.count
        else { throw NodeFailure(message: "missing input \(name)", type: "KeyError") }
        return result.outputs[slot]
    }

    private func compute(id: String, graph: [String: StandInJSON], results: [String: NodeResult], item: StandInQueueItem) throws
        -> NodeResult
    {
        let node = graph[id] ?? .null
        switch node["class_type"]?.stringValue ?? "" {
        case "EmptyImage":
            return NodeResult(
                outputs: [
                    .image(
                        width: intInput(node, "width", default: 512), height: intInput(node, "height", default: 512),
                        batch: intInput(node, "batch_size", default: 1), color: intInput(node, "color", default: 0))
                ], ui: nil)
        case "SaveImage":
            let prefix = Self.inputs(of: node).last(where: { $0.0 == "filename_prefix" })?.1.stringValue ?? "ComfyUI"
            return try save(node: node, results: results, prefix: prefix, type: .output, item: item)
        case "PreviewImage":
            let letters = Array("abcdefghijklmnopqrstupvxyz")
            let suffix = String((0..<5).map { _ in letters.randomElement()! })
            return try save(node: node, results: results, prefix: "ComfyUI_temp_" + suffix, type: .temp, item: item)
        case "LoadImageMask":
            _ = try loadImage(node)
            return NodeResult(outputs: [.opaque("MASK")], ui: nil)
        case "EmptySD3LatentImage":
            return NodeResult(
                outputs: [.latent(width: intInput(node, "width", default: 1024), height: intInput(node, "height", default: 1024),
                    batch: intInput(node, "batch_size", default: 1))], ui: nil)
        case "EmptyLatentImage":
            return NodeResult(
                outputs: [.latent(width: intInput(node, "width", default: 512), height: intInput(node, "height", default: 512),
                    batch: intInput(node, "batch_size", default: 1))], ui: nil)
        case "KSampler":
            return NodeResult(outputs: [try linkedValue(node, "latent_image", results: results)], ui: nil)
        case "VAEEncode":
            guard case .image(let width, let height, let batch, _) = try linkedValue(node, "pixels", results: results) else {
                throw NodeFailure(message: "pixels is not an IMAGE", type: "TypeError")
            }
            return NodeResult(outputs: [.latent(width: width, height: height, batch: batch)], ui: nil)
        case "VAEDecode":
            guard case .latent(let width, let height, let batch) = try linkedValue(node, "samples", results: results) else {
                throw NodeFailure(message: "samples is not a LATENT", type: "TypeError")
            }
            return NodeResult(outputs: [.image(width: width, height: height, batch: batch, color: 0x6699CC)], ui: nil)
        case "LoadImage":
            let bytes = try loadImage(node)
            var width = 64, height = 64
            if bytes.count >= 24, Array(bytes[0..<8]) == StandInPNG.signature {
                width = bytes[16..<20].reduce(0) { $0 << 8 | Int($1) }
                height = bytes[20..<24].reduce(0) { $0 << 8 | Int($1) }
            }
            return NodeResult(outputs: [.image(width: width, height: height, batch: 1, color: 0x808080), .opaque("MASK")], ui: nil)
        default:
            let outputs = state.catalog.node(node["class_type"]?.stringValue ?? "")?.outputs ?? []
            return NodeResult(outputs: outputs.map { .opaque($0) }, ui: nil)
        }
    }

    /// The bytes of the file a `LoadImage`/`LoadImageMask` `image` value names (`folder_paths.get_annotated_filepath`).
    private func loadImage(_ node: StandInJSON) throws -> [UInt8] {
        let name = Self.inputs(of: node).last(where: { $0.0 == "image" })?.1.stringValue ?? ""
        guard let path = state.files.annotatedFilePath(name, confined: state.options.confineAnnotatedFilePaths),
            let data = FileManager.default.contents(atPath: path)
        else { throw NodeFailure(message: "Invalid image file: \(name)", type: "FileNotFoundError") }
        return [UInt8](data)
    }

    private func save(node: StandInJSON, results: [String: NodeResult], prefix rawPrefix: String, type: ComfyUIStandIn.FileType,
        item: StandInQueueItem) throws -> NodeResult
    {
        guard case .image(let width, let height, let batch, let color) = try linkedValue(node, "images", results: results) else {
            throw NodeFailure(message: "images is not an IMAGE", type: "TypeError")
        }
        let prefix = rawPrefix.replacingOccurrences(of: "%width%", with: String(width))
            .replacingOccurrences(of: "%height%", with: String(height))
        let base = state.files.directory(type)
        let normalizedPrefix = StandInFileStore.normalize(prefix)
        let subfolder: String
        let filename: String
        if let slash = normalizedPrefix.lastIndex(of: "/") {
            subfolder = String(normalizedPrefix[..<slash])
            filename = String(normalizedPrefix[normalizedPrefix.index(after: slash)...])
        } else {
            subfolder = ""
            filename = normalizedPrefix
        }
        guard let folder = StandInFileStore.confined(base: base, sub: subfolder.isEmpty ? "." : subfolder) else {
            throw NodeFailure(
                message:
                    "**** ERROR: Saving image outside the output folder is not allowed.\n full_output_folder: \(base)/\(subfolder)\n         output_dir: \(base)",
                type: "Exception")
        }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var counter = state.files.nextCounter(dir: folder, prefix: filename)
        var text: [(String, String)] = [("prompt", item.prompt.serialized)]
        for (key, value) in item.extraData["extra_pnginfo"]?.objectValue ?? [] { text.append((key, value.serialized)) }
        let png = StandInPNG.solidImage(width: width, height: height, color: color, textChunks: text)
        var images: [StandInJSON] = []
        for batchNumber in 0..<max(batch, 1) {
            let name = filename.replacingOccurrences(of: "%batch_num%", with: String(batchNumber))
                + "_" + String(format: "%05d", counter) + "_.png"
            try Data(png).write(to: URL(fileURLWithPath: folder + "/" + name))
            images.append(["filename": .string(name), "subfolder": .string(subfolder), "type": .string(type.rawValue)])
            counter += 1
        }
        return NodeResult(outputs: [], ui: ["images": .array(images)])
    }
}

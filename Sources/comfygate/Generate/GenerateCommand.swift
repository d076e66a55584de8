import ArgumentParser
import AsyncHTTPClient
import ComfyGateDoctor
import ComfyUIClient
import Foundation
import NIOCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// `comfygate generate`: runs a workflow against ComfyGate or a bare ComfyUI and saves what it makes.
struct GenerateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Run a workflow (an API-format JSON file or a built-in template) and save its outputs.",
        discussion: """
            Follows the run on ComfyUI's websocket with a progress line (node, sampler steps, elapsed) on standard
            error, saves each output under --out with the name ComfyUI gave it and prints the paths (or --json).
            Exit status: 0 the outputs were saved, 1 ComfyUI refused or failed the workflow (node, error type and
            message shown), 2 usage error.

            Examples:
              comfygate generate --template qwen-image --prompt "a lighthouse at \\
                  dusk" --seed 7 --url http://127.0.0.1:8189 --token-file token
              comfygate generate --template qwen-image-edit --image photo.png \\
                  --prompt "make it snow" --out results/
              comfygate generate my_workflow_api.json --set 3.steps=8 --set 3.cfg=1.0 --json
            """)

    @Argument(help: ArgumentHelp("A workflow in ComfyUI's API format (Export (API)).", valueName: "workflow.json"))
    var workflow: String?
    @Option(help: ArgumentHelp("A built-in workflow: qwen-image or qwen-image-edit.", valueName: "name"))
    var template: String?
    @Option(help: ArgumentHelp("ComfyGate's or ComfyUI's root URL (default http://127.0.0.1:8189).", valueName: "url"))
    var url = "http://127.0.0.1:8189"
    @Option(help: ArgumentHelp("API token (default: COMFYGATE_TOKEN).", valueName: "token")) var token: String?
    @Option(help: ArgumentHelp("Read the token from a file (with --token-key: one variable of a dotenv file).", valueName: "file"))
    var tokenFile: String?
    @Option(help: ArgumentHelp("Variable holding the token in --token-file.", valueName: "name")) var tokenKey: String?
    @Option(help: ArgumentHelp("The text of the prompt (the encoder feeding the sampler's positive input).", valueName: "text"))
    var prompt: String?
    @Option(help: ArgumentHelp("The sampler's seed (templates: random when not given).", valueName: "number")) var seed: Int?
    @Option(help: ArgumentHelp("The sampler's steps.", valueName: "count")) var steps: Int?
    @Option(help: ArgumentHelp("The image size, e.g. 1024x768.", valueName: "WxH")) var size: String?
    @Option(name: .customLong("set"), help: ArgumentHelp("Set one input: NODE.INPUT=VALUE (JSON or text).", valueName: "node.input=value"))
    var settings: [String] = []
    @Option(help: ArgumentHelp("An input image, uploaded and given to the LoadImage nodes.", valueName: "file")) var image: String?
    @Option(help: ArgumentHelp("Where outputs are saved (default: the current directory).", valueName: "dir")) var out = "."
    @Option(help: ArgumentHelp("Seconds the whole run may take.", valueName: "seconds")) var timeout: Double = 3600
    @Flag(help: "Print the outcome as JSON (version 1).") var json = false

    func validate() throws {
        if (workflow == nil) == (template == nil) { throw ValidationError("give a workflow file or --template, one of them") }
        if let template, WorkflowTemplate(rawValue: template) == nil {
            throw ValidationError("--template: '\(template)' is not one of \(WorkflowTemplate.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if WorkflowTemplate(rawValue: template ?? "")?.needsImage == true, image == nil {
            throw ValidationError("--template \(template ?? ""): give the picture to edit with --image FILE")
        }
        if let size, Self.size(size) == nil { throw ValidationError("--size: '\(size)' is not WIDTHxHEIGHT, e.g. 1024x768") }
        if let steps, !(1...10000).contains(steps) { throw ValidationError("--steps must be 1 to 10000") }
        if let seed, seed < 0 { throw ValidationError("--seed must be 0 or more") }
        for setting in settings where WorkflowOverrides.setting(setting) == nil {
            throw ValidationError("--set: '\(setting)' is not NODE.INPUT=VALUE")
        }
        if token != nil && tokenFile != nil { throw ValidationError("use --token or --token-file, not both") }
        guard timeout > 0 else { throw ValidationError("--timeout must be more than 0") }
    }

    static func size(_ text: String) -> (width: Int, height: Int)? {
        let parts = text.lowercased().split(separator: "x")
        guard parts.count == 2, let width = Int(parts[0]), let height = Int(parts[1]), width > 0, height > 0 else { return nil }
        return (width, height)
    }

    func run() async throws {
        try await CommandFailure.report {
            let graph = try loadGraph()
            let credential = try resolvedToken().map(ComfyUIClient.Credential.bearer) ?? .none
            let imageBytes = try image.map { path -> [UInt8] in
                guard let data = FileManager.default.contents(atPath: path) else { throw CommandFailure.usage("--image: cannot read \(path)") }
                return [UInt8](data)
            }
            let outDirectory = URL(fileURLWithPath: out)
            do {
                try FileManager.default.createDirectory(at: outDirectory, withIntermediateDirectories: true)
            } catch {
                throw CommandFailure.usage("--out: cannot create \(out): \(CommandFailure.reason(error))")
            }
            let progress = RunProgress(isTerminal: isatty(STDERR_FILENO) == 1, graph: graph)
            let started = ContinuousClock.now
            let saved = try await ComfyUIClient.withHTTPClient(readTimeout: .seconds(300)) { http in
                let client: ComfyUIClient
                do {
                    client = try ComfyUIClient(baseURL: url, credential: credential, httpClient: http, timeout: .seconds(120))
                } catch let error as ComfyUIClientError {
                    throw CommandFailure.usage("--url: \(error.description)")
                }
                var overrides = WorkflowOverrides(
                    prompt: prompt, seed: seed ?? (template != nil ? Int.random(in: 0...Int(Int32.max)) : nil), steps: steps,
                    size: size.flatMap(Self.size), settings: settings.compactMap(WorkflowOverrides.setting))
                if let imageBytes, let path = image {
                    let uploaded = try await client.uploadImage(imageBytes, filename: URL(fileURLWithPath: path).lastPathComponent, overwrite: true)
                    overrides.image = uploaded.subfolder.isEmpty ? uploaded.filename : uploaded.subfolder + "/" + uploaded.filename
                }
                let finalGraph: [String: JSONValue]
                do throws(WorkflowOverrideError) {
                    finalGraph = try overrides.apply(to: graph)
                } catch {
                    throw CommandFailure.usage(error.description)
                }
                let outcome: WorkflowRun.Outcome
                do {
                    outcome = try await Self.within(timeout) {
                        try await WorkflowRun.run(finalGraph, with: client) { step in progress.show(step) }
                    }
                } catch let failure as WorkflowRun.Failure {
                    progress.end()
                    throw CommandFailure.failed(failure.description)
                }
                progress.end()
                var saved: [(reference: ImageReference, path: String, bytes: Int)] = []
                for reference in outcome.outputs where reference.type == "output" {
                    let bytes = try await client.view(reference)
                    let path = try Self.save(bytes, named: reference.filename, in: outDirectory)
                    saved.append((reference, path, bytes.count))
                }
                return (outcome, saved)
            }
            let elapsed = started.duration(to: .now)
            if json {
                try Output.printJSON([
                    "version": 1, "prompt_id": saved.0.promptID, "seconds": Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18,
                    "outputs": saved.1.map { ["path": $0.path, "filename": $0.reference.filename, "subfolder": $0.reference.subfolder, "bytes": $0.bytes] as [String: any Sendable] },
                ] as [String: any Sendable])
            } else {
                for file in saved.1 { print(file.path) }
            }
        }
    }

    private func loadGraph() throws -> [String: JSONValue] {
        if let template { return WorkflowTemplate(rawValue: template)!.graph }
        let path = workflow ?? ""
        guard let data = FileManager.default.contents(atPath: path) else { throw CommandFailure.usage("cannot read the workflow \(path)") }
        guard let json = try? JSONValue.decode([UInt8](data)), var graph = json.objectValue else {
            throw CommandFailure.usage("\(path) is not a JSON object")
        }
        if let prompt = graph["prompt"]?.objectValue, graph["class_type"] == nil { graph = prompt }  // a whole POST /prompt body
        if graph["nodes"]?.arrayValue != nil, graph["links"] != nil {
            throw CommandFailure.usage("\(path) is in ComfyUI's UI format; save it with Export (API) and run that file")
        }
        guard !graph.isEmpty, graph.values.allSatisfy({ $0["class_type"]?.stringValue != nil }) else {
            throw CommandFailure.usage("\(path) is not an API-format workflow (every node needs a class_type)")
        }
        return graph
    }

    private func resolvedToken() throws -> String? {
        if let token { return token }
        if let tokenFile {
            do {
                return try TokenSource.read(file: tokenFile, key: tokenKey)
            } catch {
                throw CommandFailure.usage(error.description)
            }
        }
        return ProcessInfo.processInfo.environment["COMFYGATE_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Writes `bytes` as `name` in `directory`, or `name-2`, `name-3`… when that name is taken; the path.
    static func save(_ bytes: [UInt8], named name: String, in directory: URL) throws -> String {
        let base = (name as NSString).deletingPathExtension, ext = (name as NSString).pathExtension
        var candidate = directory.appendingPathComponent(name)
        var counter = 1
        while FileManager.default.fileExists(atPath: candidate.path) {
            counter += 1
            candidate = directory.appendingPathComponent(base + "-\(counter)" + (ext.isEmpty ? "" : "." + ext))
        }
        do {
            try Data(bytes).write(to: candidate, options: .withoutOverwriting)
        } catch {
            throw CommandFailure.failed("cannot save \(candidate.path): \(CommandFailure.reason(error))")
        }
        return candidate.path
    }

    /// `body`, or a failure once `seconds` have passed.
    static func within<T: Sendable>(_ seconds: Double, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let value = first else {
                throw CommandFailure.failed("the run did not finish within \(Int(seconds)) s (--timeout)")
            }
            return value
        }
    }
}

/// The progress line of a run on standard error: redrawn in place on a terminal, one line per node otherwise.
final class RunProgress: Sendable {
    private struct State {
        var node: String?
        var step: (Int, Int)?
        var done = 0
        var drawn = false
    }

    private let isTerminal: Bool
    private let classes: [String: String]
    private let total: Int
    private let start = ContinuousClock.now
    private let state = Mutex(State())

    init(isTerminal: Bool, graph: [String: JSONValue]) {
        self.isTerminal = isTerminal
        classes = graph.compactMapValues { $0["class_type"]?.stringValue }
        total = graph.count
    }

    func show(_ step: WorkflowRun.Step) {
        let line: String? = state.withLock { state in
            switch step {
            case .submitted(let id):
                return isTerminal ? nil : "queued as \(id)"
            case .started(let cached):
                state.done = cached.count
                return isTerminal ? render(state) : (cached.isEmpty ? "started" : "started (\(cached.count) nodes from cache)")
            case .node(let id):
                state.node = id
                state.step = nil
                return isTerminal ? render(state) : "node \(id) (\(classes[id] ?? "?"))"
            case .progress(_, let value, let max):
                let previous = state.step
                state.step = (value, max)
                if isTerminal { return render(state) }
                // Plain output: every 25 % of the steps, not each one.
                let quarter = Swift.max(1, max / 4)
                return previous == nil || value == max || value % quarter == 0 ? "  step \(value)/\(max)" : nil
            case .finishedNodes(let done, _):
                state.done = done
                return isTerminal ? render(state) : nil
            }
        }
        guard let line else { return }
        FileHandle.standardError.write(Data((isTerminal ? "\r" + line + "\u{1B}[K" : line + "\n").utf8))
        if isTerminal { state.withLock { $0.drawn = true } }
    }

    func end() {
        if state.withLock({ $0.drawn }) { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    private func render(_ state: State) -> String {
        let elapsed = start.duration(to: .now).components.seconds
        var parts = ["[\(state.done)/\(total) nodes]"]
        if let node = state.node { parts.append("node \(node) \(classes[node] ?? "")") }
        if let (value, max) = state.step, max > 0 {
            let filled = Int(Double(value) / Double(max) * 20)
            parts.append("[" + String(repeating: "#", count: filled) + String(repeating: ".", count: 20 - filled) + "] step \(value)/\(max)")
        }
        parts.append(String(format: "%d:%02d", elapsed / 60, elapsed % 60))
        return parts.joined(separator: "  ")
    }
}

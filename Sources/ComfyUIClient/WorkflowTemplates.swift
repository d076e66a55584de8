/// The built-in workflows of `comfygate generate`: ComfyUI's own Qwen-Image examples in API format, with the FP8
/// model files `comfygate models` downloads.
public enum WorkflowTemplate: String, Sendable, CaseIterable {
    /// Text to image.
    case qwenImage = "qwen-image"
    /// An image and an instruction to an edited image (needs `--image`).
    case qwenImageEdit = "qwen-image-edit"

    /// Whether the template needs an input image.
    public var needsImage: Bool { self == .qwenImageEdit }

    /// The graph, with its defaults (20 steps, seed 0, cfg 2.5, 1328×1328 for text to image).
    public var graph: [String: JSONValue] {
        var graph: [String: JSONValue] = [
            "37": ["class_type": "UNETLoader", "inputs": ["unet_name": .string(diffusionModel), "weight_dtype": "default"]],
            "38": ["class_type": "CLIPLoader", "inputs": ["clip_name": "qwen_2.5_vl_7b_fp8_scaled.safetensors", "type": "qwen_image", "device": "default"]],
            "39": ["class_type": "VAELoader", "inputs": ["vae_name": "qwen_image_vae.safetensors"]],
            "66": ["class_type": "ModelSamplingAuraFlow", "inputs": ["model": ["37", 0], "shift": 3.1]],
            "3": ["class_type": "KSampler", "inputs": [
                "model": ["66", 0], "seed": 0, "steps": 20, "cfg": 2.5, "sampler_name": "euler", "scheduler": "simple",
                "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["58", 0], "denoise": 1,
            ]],
            "8": ["class_type": "VAEDecode", "inputs": ["samples": ["3", 0], "vae": ["39", 0]]],
            "60": ["class_type": "SaveImage", "inputs": ["filename_prefix": .string(rawValue), "images": ["8", 0]]],
        ]
        switch self {
        case .qwenImage:
            graph["6"] = ["class_type": "CLIPTextEncode", "inputs": ["text": "a cup of coffee on a wooden table, morning light", "clip": ["38", 0]]]
            graph["7"] = ["class_type": "CLIPTextEncode", "inputs": ["text": "", "clip": ["38", 0]]]
            graph["58"] = ["class_type": "EmptySD3LatentImage", "inputs": ["width": 1328, "height": 1328, "batch_size": 1]]
        case .qwenImageEdit:
            graph["78"] = ["class_type": "LoadImage", "inputs": ["image": ""]]
            graph["6"] = ["class_type": "TextEncodeQwenImageEdit", "inputs": [
                "clip": ["38", 0], "prompt": "make it a watercolour painting", "vae": ["39", 0], "image": ["78", 0],
            ]]
            graph["7"] = ["class_type": "TextEncodeQwenImageEdit", "inputs": ["clip": ["38", 0], "prompt": "", "vae": ["39", 0], "image": ["78", 0]]]
            graph["58"] = ["class_type": "VAEEncode", "inputs": ["pixels": ["78", 0], "vae": ["39", 0]]]
        }
        return graph
    }

    private var diffusionModel: String {
        switch self {
        case .qwenImage: "qwen_image_fp8_e4m3fn.safetensors"
        case .qwenImageEdit: "qwen_image_edit_fp8_e4m3fn.safetensors"
        }
    }
}

/// Changes `comfygate generate` makes to a workflow before it runs it, found by what the nodes do.
public struct WorkflowOverrides: Sendable, Equatable {
    public var prompt: String?
    public var seed: Int?
    public var steps: Int?
    public var size: (width: Int, height: Int)?
    /// `NODE.INPUT=VALUE`, in order; a value that reads as JSON (a number, `true`, `"text"`, `[…]`) is that value,
    /// anything else a string.
    public var settings: [(node: String, input: String, value: String)]
    /// The name ComfyUI gave the uploaded input image, for the `LoadImage` nodes.
    public var image: String?

    public init(
        prompt: String? = nil, seed: Int? = nil, steps: Int? = nil, size: (width: Int, height: Int)? = nil,
        settings: [(node: String, input: String, value: String)] = [], image: String? = nil
    ) {
        self.prompt = prompt
        self.seed = seed
        self.steps = steps
        self.size = size
        self.settings = settings
        self.image = image
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.prompt == rhs.prompt && lhs.seed == rhs.seed && lhs.steps == rhs.steps && lhs.size?.width == rhs.size?.width
            && lhs.size?.height == rhs.size?.height && lhs.image == rhs.image
            && lhs.settings.map { "\($0.node).\($0.input)=\($0.value)" } == rhs.settings.map { "\($0.node).\($0.input)=\($0.value)" }
    }

    /// Reads `NODE.INPUT=VALUE`; nil when it is not of that form.
    public static func setting(_ text: String) -> (node: String, input: String, value: String)? {
        guard let equals = text.firstIndex(of: "="), let dot = text[..<equals].firstIndex(of: ".") else { return nil }
        let node = String(text[..<dot]), input = String(text[text.index(after: dot)..<equals])
        guard !node.isEmpty, !input.isEmpty else { return nil }
        return (node, input, String(text[text.index(after: equals)...]))
    }

    /// Samplers (`KSampler`, `KSamplerAdvanced`) and the prompt and size nodes they read.
    static let samplers: Set<String> = ["KSampler", "KSamplerAdvanced"]
    static let promptInputs = ["CLIPTextEncode": "text", "TextEncodeQwenImageEdit": "prompt", "TextEncodeQwenImageEditPlus": "prompt"]
    static let latentSizes: Set<String> = ["EmptySD3LatentImage", "EmptyLatentImage", "EmptyImage"]

    /// The graph with the overrides made; throws a sentence saying which one has nothing to change.
    public func apply(to graph: [String: JSONValue]) throws(WorkflowOverrideError) -> [String: JSONValue] {
        var graph = graph
        func nodes(_ classes: Set<String>) -> [String] {
            graph.keys.sorted().filter { classes.contains(graph[$0]?["class_type"]?.stringValue ?? "") }
        }
        func set(_ node: String, _ input: String, _ value: JSONValue) {
            guard case .object(var members)? = graph[node] else { return }
            var inputs = members["inputs"]?.objectValue ?? [:]
            inputs[input] = value
            members["inputs"] = .object(inputs)
            graph[node] = .object(members)
        }
        let samplers = nodes(Self.samplers)
        if let prompt {
            // The prompt node linked to a sampler's `positive` input.
            let positive = samplers.compactMap { graph[$0]?["inputs"]?["positive"]?.arrayValue?.first?.stringValue }
                .filter { Self.promptInputs[graph[$0]?["class_type"]?.stringValue ?? ""] != nil }
            guard !positive.isEmpty else { throw .nothingToChange("--prompt: no text encoder feeds a sampler's positive input") }
            for node in Set(positive) { set(node, Self.promptInputs[graph[node]!["class_type"]!.stringValue!]!, .string(prompt)) }
        }
        if let seed {
            guard !samplers.isEmpty else { throw .nothingToChange("--seed: the workflow has no KSampler") }
            for node in samplers { set(node, graph[node]?["class_type"]?.stringValue == "KSamplerAdvanced" ? "noise_seed" : "seed", .number(Double(seed))) }
        }
        if let steps {
            guard !samplers.isEmpty else { throw .nothingToChange("--steps: the workflow has no KSampler") }
            for node in samplers { set(node, "steps", .number(Double(steps))) }
        }
        if let size {
            let latents = nodes(Self.latentSizes)
            guard !latents.isEmpty else { throw .nothingToChange("--size: the workflow has no empty latent or image node") }
            for node in latents {
                set(node, "width", .number(Double(size.width)))
                set(node, "height", .number(Double(size.height)))
            }
        }
        if let image {
            let loaders = nodes(["LoadImage"])
            guard !loaders.isEmpty else { throw .nothingToChange("--image: the workflow has no LoadImage node") }
            for node in loaders { set(node, "image", .string(image)) }
        }
        for setting in settings {
            guard graph[setting.node] != nil else { throw .nothingToChange("--set \(setting.node).\(setting.input): no node \(setting.node)") }
            set(setting.node, setting.input, (try? JSONValue.decode(Array(setting.value.utf8))) ?? .string(setting.value))
        }
        return graph
    }
}

/// An override that has nothing to change in the workflow.
public enum WorkflowOverrideError: Error, Equatable, CustomStringConvertible {
    case nothingToChange(String)

    public var description: String {
        switch self {
        case .nothingToChange(let text): text
        }
    }
}

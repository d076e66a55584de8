/// The node classes the stand-in knows: their `object_info` and the validation rules `POST /prompt` applies.
struct StandInNodeCatalog: Sendable {
    enum InputKind: Sendable {
        case int(default: Int, min: Int, max: Int, step: Int?, extra: [(String, StandInJSON)])
        case float(default: Double, min: Double, max: Double, step: Double)
        case string(default: String, tooltip: String?)
        /// A combo whose values come from a lookup (model folder, input files, fixed list).
        case combo(source: ComboSource, extra: [(String, StandInJSON)])
        /// A linked type such as IMAGE or MODEL.
        case type(String, extra: [(String, StandInJSON)])
    }

    enum ComboSource: Sendable {
        case fixed([String])
        case modelFolder(String)
        /// The regular files directly in input/ (`os.listdir`), with `imagesOnly` those `mimetypes` calls `image/*`.
        case inputFiles(imagesOnly: Bool)
    }

    struct Input: Sendable {
        let name: String
        let kind: InputKind
    }

    struct Node: Sendable {
        let name: String
        let displayName: String
        let description: String
        let category: String
        let required: [Input]
        var optional: [Input] = []
        var hidden: [(String, String)] = []
        let outputs: [String]
        let outputNode: Bool
        /// `VALIDATE_INPUTS(s, image)`: the `image` value is not checked against its combo list; instead the file it
        /// names (`folder_paths.exists_annotated_filepath`) must exist, else `custom_validation_failed`.
        var validatesImageFile = false
    }

    let nodes: [Node]

    func node(_ name: String) -> Node? { nodes.first { $0.name == name } }

    static let standard = StandInNodeCatalog(nodes: [
        Node(
            name: "EmptyImage", displayName: "EmptyImage", description: "", category: "image",
            required: [
                Input(name: "width", kind: .int(default: 512, min: 1, max: 16384, step: 1, extra: [])),
                Input(name: "height", kind: .int(default: 512, min: 1, max: 16384, step: 1, extra: [])),
                Input(name: "batch_size", kind: .int(default: 1, min: 1, max: 4096, step: nil, extra: [])),
                Input(name: "color", kind: .int(default: 0, min: 0, max: 0xFFFFFF, step: 1, extra: [("display", "color")])),
            ],
            outputs: ["IMAGE"], outputNode: false),
        Node(
            name: "SaveImage", displayName: "Save Image",
            description: "Saves the input images to your ComfyUI output directory.", category: "image",
            required: [
                Input(name: "images", kind: .type("IMAGE", extra: [("tooltip", "The images to save.")])),
                Input(
                    name: "filename_prefix",
                    kind: .string(
                        default: "ComfyUI",
                        tooltip:
                            "The prefix for the file to save. This may include formatting information such as %date:yyyy-MM-dd% or %Empty Latent Image.width% to include values from nodes."
                    )),
            ],
            hidden: [("prompt", "PROMPT"), ("extra_pnginfo", "EXTRA_PNGINFO")],
            outputs: [], outputNode: true),
        Node(
            name: "PreviewImage", displayName: "Preview Image",
            description: "Saves the input images to your ComfyUI output directory.", category: "image",
            required: [Input(name: "images", kind: .type("IMAGE", extra: []))],
            hidden: [("prompt", "PROMPT"), ("extra_pnginfo", "EXTRA_PNGINFO")],
            outputs: [], outputNode: true),
        Node(
            name: "LoadImage", displayName: "Load Image", description: "", category: "image",
            required: [Input(name: "image", kind: .combo(source: .inputFiles(imagesOnly: true), extra: [("image_upload", true)]))],
            outputs: ["IMAGE", "MASK"], outputNode: false, validatesImageFile: true),
        Node(
            name: "LoadImageMask", displayName: "Load Image (as Mask)", description: "", category: "mask",
            required: [
                Input(name: "image", kind: .combo(source: .inputFiles(imagesOnly: false), extra: [("image_upload", true)])),
                Input(name: "channel", kind: .combo(source: .fixed(["alpha", "red", "green", "blue"]), extra: [])),
            ],
            outputs: ["MASK"], outputNode: false, validatesImageFile: true),
        Node(
            name: "CheckpointLoaderSimple", displayName: "Load Checkpoint",
            description: "Loads a diffusion model checkpoint, diffusion models are used to denoise latents.",
            category: "loaders",
            required: [
                Input(
                    name: "ckpt_name",
                    kind: .combo(source: .modelFolder("checkpoints"), extra: [("tooltip", "The name of the checkpoint (model) to load.")]))
            ],
            outputs: ["MODEL", "CLIP", "VAE"], outputNode: false),
        Node(
            name: "UNETLoader", displayName: "Load Diffusion Model", description: "", category: "advanced/loaders",
            required: [
                Input(name: "unet_name", kind: .combo(source: .modelFolder("diffusion_models"), extra: [])),
                Input(
                    name: "weight_dtype",
                    kind: .combo(source: .fixed(["default", "fp8_e4m3fn", "fp8_e4m3fn_fast", "fp8_e5m2"]), extra: [])),
            ],
            outputs: ["MODEL"], outputNode: false),
        Node(
            name: "CLIPLoader", displayName: "Load CLIP", description: "", category: "advanced/loaders",
            required: [
                Input(name: "clip_name", kind: .combo(source: .modelFolder("text_encoders"), extra: [])),
                Input(
                    name: "type",
                    kind: .combo(
                        source: .fixed([
                            "stable_diffusion", "stable_cascade", "sd3", "stable_audio", "mochi", "ltxv", "pixart", "cosmos",
                            "lumina2", "wan", "hidream", "chroma", "ace", "omnigen2", "qwen_image", "hunyuan_image",
                        ]), extra: [])),
            ],
            optional: [Input(name: "device", kind: .combo(source: .fixed(["default", "cpu"]), extra: [("advanced", true)]))],
            outputs: ["CLIP"], outputNode: false),
        Node(
            name: "VAELoader", displayName: "Load VAE", description: "", category: "loaders",
            required: [Input(name: "vae_name", kind: .combo(source: .modelFolder("vae"), extra: []))],
            outputs: ["VAE"], outputNode: false),
        // The other loaders whose model folders the front end's model-to-node store names (it needs every one).
        Node(
            name: "ImageOnlyCheckpointLoader", displayName: "Image Only Checkpoint Loader (img2vid model)", description: "",
            category: "loaders/video_models",
            required: [Input(name: "ckpt_name", kind: .combo(source: .modelFolder("checkpoints"), extra: []))],
            outputs: ["MODEL", "CLIP_VISION", "VAE"], outputNode: false),
        Node(
            name: "LoraLoader", displayName: "Load LoRA",
            description: "LoRAs are used to modify diffusion and CLIP models, altering the way in which latents are denoised such as "
                + "applying styles. Multiple LoRA nodes can be linked together.",
            category: "loaders",
            required: [
                Input(name: "model", kind: .type("MODEL", extra: [("tooltip", "The diffusion model the LoRA will be applied to.")])),
                Input(name: "clip", kind: .type("CLIP", extra: [("tooltip", "The CLIP model the LoRA will be applied to.")])),
                Input(name: "lora_name", kind: .combo(source: .modelFolder("loras"), extra: [("tooltip", "The name of the LoRA.")])),
                Input(name: "strength_model", kind: .float(default: 1, min: -100, max: 100, step: 0.01)),
                Input(name: "strength_clip", kind: .float(default: 1, min: -100, max: 100, step: 0.01)),
            ],
            outputs: ["MODEL", "CLIP"], outputNode: false),
        Node(
            name: "ControlNetLoader", displayName: "Load ControlNet Model", description: "", category: "loaders",
            required: [Input(name: "control_net_name", kind: .combo(source: .modelFolder("controlnet"), extra: []))],
            outputs: ["CONTROL_NET"], outputNode: false),
        Node(
            name: "UpscaleModelLoader", displayName: "Load Upscale Model", description: "", category: "loaders",
            required: [Input(name: "model_name", kind: .combo(source: .modelFolder("upscale_models"), extra: []))],
            outputs: ["UPSCALE_MODEL"], outputNode: false),
        Node(
            name: "StyleModelLoader", displayName: "Load Style Model", description: "", category: "loaders",
            required: [Input(name: "style_model_name", kind: .combo(source: .modelFolder("style_models"), extra: []))],
            outputs: ["STYLE_MODEL"], outputNode: false),
        Node(
            name: "GLIGENLoader", displayName: "GLIGENLoader", description: "", category: "loaders",
            required: [Input(name: "gligen_name", kind: .combo(source: .modelFolder("gligen"), extra: []))],
            outputs: ["GLIGEN"], outputNode: false),
        // The latent of ComfyUI's default workflow, which the front end shows to a returning user.
        Node(
            name: "EmptyLatentImage", displayName: "Empty Latent Image",
            description: "Create a new batch of empty latent images to be denoised via sampling.", category: "latent",
            required: [
                Input(
                    name: "width",
                    kind: .int(default: 512, min: 16, max: 16384, step: 8, extra: [("tooltip", "The width of the latent images in pixels.")])),
                Input(
                    name: "height",
                    kind: .int(default: 512, min: 16, max: 16384, step: 8, extra: [("tooltip", "The height of the latent images in pixels.")])),
                Input(
                    name: "batch_size",
                    kind: .int(default: 1, min: 1, max: 4096, step: nil, extra: [("tooltip", "The number of latent images in the batch.")])),
            ],
            outputs: ["LATENT"], outputNode: false),
    ] + qwenWorkflowNodes)

    /// The other nodes of ComfyUI's Qwen-Image and Qwen-Image-Edit workflow examples, with their inputs as
    /// `nodes.py` and `comfy_extras` declare them (KSampler's seed maximum is 2^64 − 1 there, `Int.max` here).
    static let qwenWorkflowNodes: [Node] = [
        Node(
            name: "CLIPTextEncode", displayName: "CLIP Text Encode (Prompt)", description: "", category: "conditioning",
            required: [
                Input(name: "text", kind: .string(default: "", tooltip: "The text to be encoded.")),
                Input(name: "clip", kind: .type("CLIP", extra: [])),
            ],
            outputs: ["CONDITIONING"], outputNode: false),
        Node(
            name: "TextEncodeQwenImageEdit", displayName: "TextEncodeQwenImageEdit", description: "", category: "advanced/conditioning",
            required: [Input(name: "clip", kind: .type("CLIP", extra: [])), Input(name: "prompt", kind: .string(default: "", tooltip: nil))],
            optional: [Input(name: "vae", kind: .type("VAE", extra: [])), Input(name: "image", kind: .type("IMAGE", extra: []))],
            outputs: ["CONDITIONING"], outputNode: false),
        Node(
            name: "EmptySD3LatentImage", displayName: "EmptySD3LatentImage", description: "", category: "latent/sd3",
            required: [
                Input(name: "width", kind: .int(default: 1024, min: 16, max: 16384, step: 16, extra: [])),
                Input(name: "height", kind: .int(default: 1024, min: 16, max: 16384, step: 16, extra: [])),
                Input(name: "batch_size", kind: .int(default: 1, min: 1, max: 4096, step: nil, extra: [])),
            ],
            outputs: ["LATENT"], outputNode: false),
        Node(
            name: "ModelSamplingAuraFlow", displayName: "ModelSamplingAuraFlow", description: "", category: "advanced/model",
            required: [
                Input(name: "model", kind: .type("MODEL", extra: [])),
                Input(name: "shift", kind: .float(default: 1.73, min: 0, max: 100, step: 0.01)),
            ],
            outputs: ["MODEL"], outputNode: false),
        Node(
            name: "LoraLoaderModelOnly", displayName: "LoraLoaderModelOnly", description: "", category: "loaders",
            required: [
                Input(name: "model", kind: .type("MODEL", extra: [])),
                Input(name: "lora_name", kind: .combo(source: .modelFolder("loras"), extra: [])),
                Input(name: "strength_model", kind: .float(default: 1, min: -100, max: 100, step: 0.01)),
            ],
            outputs: ["MODEL"], outputNode: false),
        Node(
            name: "KSampler", displayName: "KSampler", description: "", category: "sampling",
            required: [
                Input(name: "model", kind: .type("MODEL", extra: [])),
                Input(name: "seed", kind: .int(default: 0, min: 0, max: Int.max, step: nil, extra: [("control_after_generate", true)])),
                Input(name: "steps", kind: .int(default: 20, min: 1, max: 10000, step: nil, extra: [])),
                Input(name: "cfg", kind: .float(default: 8, min: 0, max: 100, step: 0.1)),
                Input(name: "sampler_name", kind: .combo(source: .fixed(["euler", "euler_ancestral", "heun", "dpmpp_2m", "res_multistep", "uni_pc"]), extra: [])),
                Input(name: "scheduler", kind: .combo(source: .fixed(["simple", "normal", "karras", "exponential", "sgm_uniform", "beta"]), extra: [])),
                Input(name: "positive", kind: .type("CONDITIONING", extra: [])),
                Input(name: "negative", kind: .type("CONDITIONING", extra: [])),
                Input(name: "latent_image", kind: .type("LATENT", extra: [])),
                Input(name: "denoise", kind: .float(default: 1, min: 0, max: 1, step: 0.01)),
            ],
            outputs: ["LATENT"], outputNode: false),
        Node(
            name: "VAEEncode", displayName: "VAE Encode", description: "", category: "latent",
            required: [Input(name: "pixels", kind: .type("IMAGE", extra: [])), Input(name: "vae", kind: .type("VAE", extra: []))],
            outputs: ["LATENT"], outputNode: false),
        Node(
            name: "VAEDecode", displayName: "VAE Decode", description: "", category: "latent",
            required: [Input(name: "samples", kind: .type("LATENT", extra: [])), Input(name: "vae", kind: .type("VAE", extra: []))],
            outputs: ["IMAGE"], outputNode: false),
    ]

    // MARK: object_info

    func comboValues(_ source: ComboSource, models: [String: [String]], inputFiles: [String]) -> [String] {
        switch source {
        case .fixed(let values): return values
        case .modelFolder(let folder): return models[folder] ?? []
        case .inputFiles(let imagesOnly): return imagesOnly ? inputFiles.filter(Self.isImageFile) : inputFiles
        }
    }

    /// `folder_paths.filter_files_content_types(files, ["image"])`: the extension's `mimetypes` type is `image/*`.
    static func isImageFile(_ name: String) -> Bool {
        guard let dot = name.lastIndex(of: ".") else { return false }
        return imageExtensions.contains(name[name.index(after: dot)...].lowercased())
    }

    /// Extensions Python's `mimetypes` maps to `image/*` (strict and common types).
    static let imageExtensions: Set<String> = [
        "bmp", "gif", "ico", "ief", "jpe", "jpeg", "jpg", "pbm", "pct", "pgm", "pic", "pict", "png", "pnm", "ppm", "ras", "rgb",
        "svg", "tif", "tiff", "webp", "xbm", "xpm", "xwd",
    ]

    private func spec(_ input: Input, models: [String: [String]], inputFiles: [String]) -> StandInJSON {
        switch input.kind {
        case .int(let def, let min, let max, let step, let extra):
            var options: [(String, StandInJSON)] = [("default", .int(def)), ("min", .int(min)), ("max", .int(max))]
            if let step { options.append(("step", .int(step))) }
            options += extra
            return ["INT", .object(options)]
        case .float(let def, let min, let max, let step):
            return ["FLOAT", ["default": .double(def), "min": .double(min), "max": .double(max), "step": .double(step)]]
        case .string(let def, let tooltip):
            var options: [(String, StandInJSON)] = [("default", .string(def))]
            if let tooltip { options.append(("tooltip", .string(tooltip))) }
            return ["STRING", .object(options)]
        case .combo(let source, let extra):
            let values = StandInJSON.array(comboValues(source, models: models, inputFiles: inputFiles).map { .string($0) })
            return extra.isEmpty ? [values] : [values, .object(extra)]
        case .type(let type, let extra):
            return extra.isEmpty ? [.string(type)] : [.string(type), .object(extra)]
        }
    }

    func nodeInfo(_ node: Node, models: [String: [String]], inputFiles: [String]) -> StandInJSON {
        var input: [(String, StandInJSON)] = [
            ("required", .object(node.required.map { ($0.name, spec($0, models: models, inputFiles: inputFiles)) }))
        ]
        var order: [(String, StandInJSON)] = [("required", .array(node.required.map { .string($0.name) }))]
        if !node.optional.isEmpty {
            input.append(("optional", .object(node.optional.map { ($0.name, spec($0, models: models, inputFiles: inputFiles)) })))
            order.append(("optional", .array(node.optional.map { .string($0.name) })))
        }
        if !node.hidden.isEmpty {
            input.append(("hidden", .object(node.hidden.map { ($0.0, .string($0.1)) })))
            order.append(("hidden", .array(node.hidden.map { .string($0.0) })))
        }
        return [
            "input": .object(input),
            "input_order": .object(order),
            "output": .array(node.outputs.map { .string($0) }),
            "output_is_list": .array(node.outputs.map { _ in false }),
            "output_name": .array(node.outputs.map { .string($0) }),
            "name": .string(node.name),
            "display_name": .string(node.displayName),
            "description": .string(node.description),
            "python_module": "nodes",
            "category": .string(node.category),
            "output_node": .bool(node.outputNode),
        ]
    }

    // MARK: validation (execution.validate_prompt)

    enum Validation {
        case ok(outputs: [String], nodeErrors: StandInJSON)
        case failed(error: StandInJSON, nodeErrors: StandInJSON)
    }

    /// `value_smaller_than_min` / `value_bigger_than_max` for a number outside its input's range, nil inside it.
    static func rangeError<Number: Comparable>(_ input: String, _ number: Number, _ min: Number, _ max: Number, received: StandInJSON)
        -> StandInJSON?
    {
        let extra: [(String, StandInJSON)] = [("input_name", .string(input)), ("received_value", received)]
        if number < min { return error("value_smaller_than_min", "Value \(number) smaller than min of \(min)", input, extra) }
        if number > max { return error("value_bigger_than_max", "Value \(number) bigger than max of \(max)", input, extra) }
        return nil
    }

    static func error(_ type: String, _ message: String, _ details: String, _ extra: [(String, StandInJSON)] = []) -> StandInJSON {
        ["type": .string(type), "message": .string(message), "details": .string(details), "extra_info": .object(extra)]
    }

    func validate(
        prompt: [(String, StandInJSON)], models: [String: [String]], inputFiles: [String], targets: [String]?,
        imageFileExists: (String) -> Bool
    ) -> Validation {
        let graph = Dictionary(prompt, uniquingKeysWith: { _, last in last })
        var outputs: [String] = []
        for (id, node) in prompt {
            guard let classType = node["class_type"]?.stringValue else {
                return .failed(
                    error: Self.error(
                        "invalid_prompt", "Cannot execute because a node is missing the class_type property.", "Node ID '#\(id)'"),
                    nodeErrors: [:])
            }
            guard let definition = self.node(classType) else {
                return .failed(
                    error: Self.error("invalid_prompt", "Cannot execute because node \(classType) does not exist.", "Node ID '#\(id)'"),
                    nodeErrors: [:])
            }
            if definition.outputNode, targets == nil || targets!.contains(id), !outputs.contains(id) { outputs.append(id) }
        }
        guard !outputs.isEmpty else {
            return .failed(error: Self.error("prompt_no_outputs", "Prompt has no outputs", ""), nodeErrors: [:])
        }

        var validated: [String: (Bool, [StandInJSON])] = [:]
        var validatedOrder: [String] = []
        var nodeErrors: [(String, StandInJSON)] = []
        var goodOutputs: [String] = []
        var failureLines: [String] = []

        func validateNode(_ id: String) -> Bool {
            if let done = validated[id] { return done.0 }
            validated[id] = (true, [])  // breaks cycles
            guard let node = graph[id], let classType = node["class_type"]?.stringValue, let def = self.node(classType) else {
                validated[id] = (false, [])
                return false
            }
            let inputs = node["inputs"]?.objectValue ?? []
            var errors: [StandInJSON] = []
            var valid = true
            func lookup(_ name: String) -> StandInJSON? { inputs.last(where: { $0.0 == name })?.1 }
            for (input, isRequired) in def.required.map({ ($0, true) }) + def.optional.map({ ($0, false) }) {
                guard let value = lookup(input.name) else {
                    if isRequired {
                        errors.append(
                            Self.error("required_input_missing", "Required input is missing", input.name, [("input_name", .string(input.name))]))
                        valid = false
                    }
                    continue
                }
                if case .array(let link) = value {
                    guard link.count == 2, let sourceId = link[0].stringValue ?? link[0].intValue.map(String.init),
                        let slot = link[1].intValue
                    else {
                        errors.append(
                            Self.error(
                                "bad_linked_input", "Bad linked input, must be a length-2 list of [node_id, slot_index]", input.name,
                                [("input_name", .string(input.name)), ("received_value", value)]))
                        valid = false
                        continue
                    }
                    guard let source = graph[sourceId], let sourceClass = source["class_type"]?.stringValue,
                        let sourceDef = self.node(sourceClass), slot >= 0, slot < sourceDef.outputs.count
                    else {
                        errors.append(
                            Self.error(
                                "exception_during_inner_validation", "Exception when validating inner node",
                                "'\(sourceId)'", [("input_name", .string(input.name))]))
                        valid = false
                        continue
                    }
                    let receivedType = sourceDef.outputs[slot]
                    let expected: String? =
                        switch input.kind {
                        case .type(let t, _): t
                        case .int: "INT"
                        case .float: "FLOAT"
                        case .string: "STRING"
                        case .combo: nil
                        }
                    if let expected, expected != receivedType {
                        errors.append(
                            Self.error(
                                "return_type_mismatch", "Return type mismatch between linked nodes",
                                "\(input.name), received_type(\(receivedType)) mismatch input_type(\(expected))",
                                [("input_name", .string(input.name)), ("received_type", .string(receivedType))]))
                        valid = false
                        continue
                    }
                    if !validateNode(sourceId) { valid = false }
                    continue
                }
                switch input.kind {
                case .int(_, let min, let max, _, _):
                    let number: Int?
                    switch value {
                    case .int(let i): number = i
                    case .double(let d) where d.isFinite: number = Int(d)
                    case .string(let s): number = Int(s.trimmingWhitespace())
                    case .bool(let b): number = b ? 1 : 0
                    default: number = nil
                    }
                    guard let number else {
                        errors.append(
                            Self.error(
                                "invalid_input_type", "Failed to convert an input value to a INT value",
                                "\(input.name), \(value.serialized), invalid literal for int()",
                                [("input_name", .string(input.name)), ("received_value", value)]))
                        valid = false
                        continue
                    }
                    if let error = Self.rangeError(input.name, number, min, max, received: .int(number)) {
                        errors.append(error)
                        valid = false
                    }
                case .float(_, let min, let max, _):
                    let number: Double?
                    switch value {
                    case .int(let i): number = Double(i)
                    case .double(let d): number = d
                    case .string(let s): number = Double(s.trimmingWhitespace())
                    case .bool(let b): number = b ? 1 : 0
                    default: number = nil
                    }
                    guard let number, number.isFinite else {
                        errors.append(
                            Self.error(
                                "invalid_input_type", "Failed to convert an input value to a FLOAT value",
                                "\(input.name), \(value.serialized), could not convert string to float",
                                [("input_name", .string(input.name)), ("received_value", value)]))
                        valid = false
                        continue
                    }
                    if let error = Self.rangeError(input.name, number, min, max, received: .double(number)) {
                        errors.append(error)
                        valid = false
                    }
                case .string:
                    break
                case .combo where def.validatesImageFile && input.name == "image":
                    break
                case .combo(let source, _):
                    let allowed = comboValues(source, models: models, inputFiles: inputFiles)
                    if value.stringValue.map({ allowed.contains($0) }) != true {
                        let shown = value.stringValue ?? value.serialized
                        errors.append(
                            Self.error(
                                "value_not_in_list", "Value not in list",
                                "\(input.name): '\(shown)' not in \(StandInJSON.array(allowed.map { .string($0) }).serialized.replacingDoubleQuotes())",
                                [("input_name", .string(input.name)), ("received_value", value)]))
                        valid = false
                    }
                case .type(let t, _):
                    errors.append(
                        Self.error(
                            "bad_linked_input", "Bad linked input, must be a length-2 list of [node_id, slot_index]", input.name,
                            [("input_name", .string(input.name)), ("input_config", [.string(t)]), ("received_value", value)]))
                    valid = false
                }
            }
            if def.validatesImageFile, let image = lookup("image"), image.arrayValue == nil {
                let name = image.stringValue ?? image.serialized
                if image.stringValue.map(imageFileExists) != true {
                    errors.append(
                        Self.error(
                            "custom_validation_failed", "Custom validation failed for node", "image - Invalid image file: \(name)",
                            [("input_name", "image")]))
                }
            }
            if !valid || !errors.isEmpty { valid = false }
            validated[id] = (valid, errors)
            validatedOrder.append(id)
            return valid
        }

        for output in outputs {
            if validateNode(output) {
                goodOutputs.append(output)
                continue
            }
            for id in validatedOrder {
                guard let (ok, reasons) = validated[id], !ok, !reasons.isEmpty else { continue }
                if let index = nodeErrors.firstIndex(where: { $0.0 == id }) {
                    if case .object(var entry) = nodeErrors[index].1,
                        let depIndex = entry.firstIndex(where: { $0.0 == "dependent_outputs" }),
                        case .array(var deps) = entry[depIndex].1
                    {
                        if !deps.contains(.string(output)) { deps.append(.string(output)) }
                        entry[depIndex].1 = .array(deps)
                        nodeErrors[index].1 = .object(entry)
                    }
                } else {
                    let classType = graph[id]?["class_type"] ?? .null
                    nodeErrors.append(
                        (id, ["errors": .array(reasons), "dependent_outputs": [.string(output)], "class_type": classType]))
                    for reason in reasons {
                        failureLines.append("\(reason["message"]?.stringValue ?? ""): \(reason["details"]?.stringValue ?? "")")
                    }
                }
            }
        }
        if goodOutputs.isEmpty {
            return .failed(
                error: Self.error("prompt_outputs_failed_validation", "Prompt outputs failed validation", failureLines.joined(separator: "\n")),
                nodeErrors: .object(nodeErrors))
        }
        return .ok(outputs: goodOutputs, nodeErrors: .object(nodeErrors))
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }

    /// Python's repr of a list of strings uses single quotes.
    func replacingDoubleQuotes() -> String { String(self.map { $0 == "\"" ? "'" : $0 }) }
}

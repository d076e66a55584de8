/// What one doctor run checks and how.
public struct DoctorConfiguration: Sendable {
    /// The deployment's root URL (`http://127.0.0.1:8188`, `https://comfy.example`); a path prefix is kept.
    public var url: String
    /// The API token: a ComfyGate token, or ComfyUI-Login's hash line. Never printed.
    public var token: String?
    /// Limit for each network step (connect, each request, the first websocket message).
    public var timeout: Duration
    /// Also run the model-free test generation (§C).
    public var generate: Bool
    /// Model files that must be present, e.g. ``ModelRequirements/qwenImageEditFP8``; nil skips the check.
    public var models: ModelRequirements?
    /// The secrets manifest consistency check, when a manifest is configured; nil skips the check.
    public var secretsCheck: SecretsCheck?

    public init(
        url: String, token: String? = nil, timeout: Duration = .seconds(10), generate: Bool = false,
        models: ModelRequirements? = nil, secretsCheck: SecretsCheck? = nil
    ) {
        self.url = url
        self.token = token
        self.timeout = timeout
        self.generate = generate
        self.models = models
        self.secretsCheck = secretsCheck
    }
}

/// The seam for `comfygate secrets check`: runs the check of one manifest and returns its problems (empty when
/// every secret is consistent). Each problem must name the secret, never its value.
public struct SecretsCheck: Sendable {
    /// Shown as the check's evidence, e.g. the manifest path.
    public var manifest: String
    public var run: @Sendable () async throws -> [String]

    public init(manifest: String, run: @escaping @Sendable () async throws -> [String]) {
        self.manifest = manifest
        self.run = run
    }
}

/// Model files a workflow needs, by ComfyUI model folder (`diffusion_models`, `text_encoders`, `vae`, …).
public struct ModelRequirements: Sendable, Equatable {
    /// One required file.
    public struct File: Sendable, Equatable {
        public var folder: String
        public var name: String
        /// Where to download it from, when known.
        public var source: String?

        public init(folder: String, name: String, source: String? = nil) {
            self.folder = folder
            self.name = name
            self.source = source
        }
    }

    /// The workflow's name, shown in reports.
    public var workflow: String
    public var files: [File]

    public init(workflow: String, files: [File]) {
        self.workflow = workflow
        self.files = files
    }

    private static let qwenImageRepository = "https://huggingface.co/Comfy-Org/Qwen-Image_ComfyUI/resolve/main/split_files"
    private static let qwenImageEditRepository = "https://huggingface.co/Comfy-Org/Qwen-Image-Edit_ComfyUI/resolve/main/split_files"

    /// Qwen-Image text-to-image, FP8 weights (ComfyUI's official example workflow).
    public static let qwenImageFP8 = ModelRequirements(
        workflow: "qwen-image-fp8",
        files: [
            File(folder: "diffusion_models", name: "qwen_image_fp8_e4m3fn.safetensors",
                source: "\(qwenImageRepository)/diffusion_models/qwen_image_fp8_e4m3fn.safetensors"),
            File(folder: "text_encoders", name: "qwen_2.5_vl_7b_fp8_scaled.safetensors",
                source: "\(qwenImageRepository)/text_encoders/qwen_2.5_vl_7b_fp8_scaled.safetensors"),
            File(folder: "vae", name: "qwen_image_vae.safetensors", source: "\(qwenImageRepository)/vae/qwen_image_vae.safetensors"),
        ])

    /// Qwen-Image-Edit, FP8 weights (same text encoder and VAE as Qwen-Image).
    public static let qwenImageEditFP8 = ModelRequirements(
        workflow: "qwen-image-edit-fp8",
        files: [
            File(folder: "diffusion_models", name: "qwen_image_edit_fp8_e4m3fn.safetensors",
                source: "\(qwenImageEditRepository)/diffusion_models/qwen_image_edit_fp8_e4m3fn.safetensors"),
            File(folder: "text_encoders", name: "qwen_2.5_vl_7b_fp8_scaled.safetensors",
                source: "\(qwenImageRepository)/text_encoders/qwen_2.5_vl_7b_fp8_scaled.safetensors"),
            File(folder: "vae", name: "qwen_image_vae.safetensors", source: "\(qwenImageRepository)/vae/qwen_image_vae.safetensors"),
        ])

    /// The built-in workflows, by name.
    public static let builtIn: [String: ModelRequirements] = [
        qwenImageFP8.workflow: qwenImageFP8,
        qwenImageEditFP8.workflow: qwenImageEditFP8,
    ]
}

/// One model file the seed deployment's workflows load: where ComfyUI looks for it and where its publisher
/// serves it.
public struct ModelFile: Sendable, Equatable, Codable {
    /// The file name ComfyUI's workflows name.
    public var name: String
    /// ComfyUI's models folder that holds it (`diffusion_models`, `text_encoders`, `vae`, `loras`).
    public var folder: String
    /// The Hugging Face repository that publishes it.
    public var repository: String
    /// Its path in that repository.
    public var path: String
    /// The revision it is downloaded at.
    public var revision: String
    /// The SHA-256 the manifest pins, when one was checked against the publisher; nil means the publisher's value
    /// (`X-Linked-Etag`) is taken at download time and recorded.
    public var sha256: String?
    /// The size in bytes the manifest pins, likewise.
    public var size: Int64?
    /// The named sets it belongs to (`qwen-image`, `qwen-image-edit`, `lightning`).
    public var sets: [String]
    /// What it is for.
    public var summary: String

    public init(
        name: String, folder: String, repository: String, path: String, revision: String = "main", sha256: String? = nil,
        size: Int64? = nil, sets: [String], summary: String
    ) {
        self.name = name
        self.folder = folder
        self.repository = repository
        self.path = path
        self.revision = revision
        self.sha256 = sha256
        self.size = size
        self.sets = sets
        self.summary = summary
    }

    /// Where ComfyUI finds it, relative to its models directory.
    public var relativePath: String { folder + "/" + name }
}

/// The files of ComfyUI's own Qwen-Image and Qwen-Image-Edit workflow examples (FP8), as their publishers lay
/// them out on Hugging Face. Sizes and checksums are not pinned here: this machine cannot reach the hub, and a
/// value is never invented. They are read from the hub's own `X-Linked-Size` / `X-Linked-Etag` at download
/// time (what `huggingface_hub` verifies against) and recorded next to the files.
public enum ModelManifest {
    public static let files: [ModelFile] = [
        ModelFile(
            name: "qwen_image_fp8_e4m3fn.safetensors", folder: "diffusion_models", repository: "Comfy-Org/Qwen-Image_ComfyUI",
            path: "split_files/diffusion_models/qwen_image_fp8_e4m3fn.safetensors", sets: ["qwen-image"],
            summary: "Qwen-Image diffusion model, FP8 (text to image; about 20 GB)"),
        ModelFile(
            name: "qwen_image_edit_fp8_e4m3fn.safetensors", folder: "diffusion_models",
            repository: "Comfy-Org/Qwen-Image-Edit_ComfyUI",
            path: "split_files/diffusion_models/qwen_image_edit_fp8_e4m3fn.safetensors", sets: ["qwen-image-edit"],
            summary: "Qwen-Image-Edit diffusion model, FP8 (image editing; about 20 GB)"),
        ModelFile(
            name: "qwen_2.5_vl_7b_fp8_scaled.safetensors", folder: "text_encoders", repository: "Comfy-Org/Qwen-Image_ComfyUI",
            path: "split_files/text_encoders/qwen_2.5_vl_7b_fp8_scaled.safetensors", sets: ["qwen-image", "qwen-image-edit"],
            summary: "Qwen2.5-VL 7B text encoder, FP8 scaled (about 9 GB)"),
        ModelFile(
            name: "qwen_image_vae.safetensors", folder: "vae", repository: "Comfy-Org/Qwen-Image_ComfyUI",
            path: "split_files/vae/qwen_image_vae.safetensors", sets: ["qwen-image", "qwen-image-edit"],
            summary: "Qwen-Image VAE (about 250 MB)"),
        ModelFile(
            name: "Qwen-Image-Lightning-8steps-V1.0.safetensors", folder: "loras", repository: "lightx2v/Qwen-Image-Lightning",
            path: "Qwen-Image-Lightning-8steps-V1.0.safetensors", sets: ["lightning"],
            summary: "Lightning LoRA, 8 steps (optional: faster sampling)"),
    ]

    /// The set names, in the order they are listed.
    public static var sets: [String] {
        var seen: [String] = []
        for file in files { for set in file.sets where !seen.contains(set) { seen.append(set) } }
        return seen
    }

    /// The files named, by file name or set name; every file of the `qwen-image-edit` set when `names` is empty.
    /// Throws ``ModelError/unknown(_:)`` for a name that is neither.
    public static func select(_ names: [String], from files: [ModelFile] = files) throws(ModelError) -> [ModelFile] {
        let wanted = names.isEmpty ? ["qwen-image-edit"] : names
        var chosen: [ModelFile] = []
        for name in wanted {
            let matching = files.filter { $0.name == name || $0.sets.contains(name) }
            guard !matching.isEmpty else { throw .unknown(name) }
            for file in matching where !chosen.contains(file) { chosen.append(file) }
        }
        return chosen
    }
}

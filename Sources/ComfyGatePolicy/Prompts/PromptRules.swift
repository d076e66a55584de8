/// What a `POST /prompt` of a caller who is not an admin may hold, beyond staying in their own folders.
public struct PromptRules: Sendable {
    /// The `extra_data` key whose value names the prompt's owner (the user id) in `/queue` and `/history` answers.
    public static let ownerKey = "comfygate_owner"

    /// The image-, audio- and video-loading inputs of ComfyUI's core nodes, by class type.
    public static let coreUploadInputs: [String: Set<String>] = [
        "LoadImage": ["image"],
        "LoadImageMask": ["image"],
        "LoadImageOutput": ["image"],
        "LoadAudio": ["audio"],
        "LoadVideo": ["file"],
    ]

    /// Class types only admins may run.
    public var deniedNodeClasses: Set<String>
    /// For each class type, the inputs whose value names a file to load (an upload combo).
    public var uploadInputs: [String: Set<String>]
    /// Whether the caller may load a file outside their folder: `type` is `input`, `output` or `temp`,
    /// `subfolder` is `/` separated and normalised (`""` for the tree's root). True for the outputs of the
    /// caller's own prompts.
    public var ownsFile: @Sendable (_ type: String, _ subfolder: String, _ name: String) -> Bool

    public init(
        deniedNodeClasses: Set<String> = [],
        uploadInputs: [String: Set<String>] = Self.coreUploadInputs,
        ownsFile: @escaping @Sendable (_ type: String, _ subfolder: String, _ name: String) -> Bool
    ) {
        self.deniedNodeClasses = deniedNodeClasses
        self.uploadInputs = uploadInputs
        self.ownsFile = ownsFile
    }
}

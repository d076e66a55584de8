/// `GET /system_stats` (A.9).
public struct SystemStats: Sendable, Equatable {
    /// One entry of `devices`.
    public struct Device: Sendable, Equatable {
        public var name: String
        /// `cuda`, `cpu`, `mps`, …
        public var type: String
        public var index: Int?
        public var vramTotal: Int
        public var vramFree: Int

        public init(name: String, type: String, index: Int?, vramTotal: Int, vramFree: Int) {
            self.name = name
            self.type = type
            self.index = index
            self.vramTotal = vramTotal
            self.vramFree = vramFree
        }
    }

    public var os: String
    public var comfyUIVersion: String
    public var pythonVersion: String
    public var pytorchVersion: String
    public var ramTotal: Int?
    public var ramFree: Int?
    /// ComfyUI's command line (it discloses every flag, e.g. `--listen`).
    public var argv: [String]
    public var devices: [Device]

    /// Reads the JSON document; throws when `system.comfyui_version` is missing.
    public init(json: JSONValue) throws(ComfyUIClientError) {
        guard let system = json["system"], let version = system["comfyui_version"]?.stringValue else {
            throw .invalidResponse("no system.comfyui_version in /system_stats")
        }
        os = system["os"]?.stringValue ?? ""
        comfyUIVersion = version
        pythonVersion = system["python_version"]?.stringValue ?? ""
        pytorchVersion = system["pytorch_version"]?.stringValue ?? ""
        ramTotal = system["ram_total"]?.intValue
        ramFree = system["ram_free"]?.intValue
        argv = system["argv"]?.arrayValue?.compactMap(\.stringValue) ?? []
        devices = (json["devices"]?.arrayValue ?? []).map {
            Device(
                name: $0["name"]?.stringValue ?? "", type: $0["type"]?.stringValue ?? "", index: $0["index"]?.intValue,
                vramTotal: $0["vram_total"]?.intValue ?? 0, vramFree: $0["vram_free"]?.intValue ?? 0)
        }
    }
}

/// A file ComfyUI produced or stores: the `filename`, `subfolder`, `type` triple `/view` takes.
public struct ImageReference: Sendable, Hashable {
    public var filename: String
    public var subfolder: String
    /// `output`, `input` or `temp`.
    public var type: String

    public init(filename: String, subfolder: String = "", type: String = "output") {
        self.filename = filename
        self.subfolder = subfolder
        self.type = type
    }

    init?(json: JSONValue) {
        guard let filename = json["filename"]?.stringValue else { return nil }
        self.init(filename: filename, subfolder: json["subfolder"]?.stringValue ?? "", type: json["type"]?.stringValue ?? "output")
    }

    static func list(_ output: JSONValue?) -> [ImageReference] {
        (output?["images"]?.arrayValue ?? []).compactMap(ImageReference.init(json:))
    }
}

/// The answer to an accepted `POST /prompt` (A.6).
public struct PromptSubmission: Sendable, Equatable {
    public var promptID: String
    public var number: Double
    /// Outputs dropped because they failed validation, by node id (usually empty).
    public var nodeErrors: [String: JSONValue]
}

/// One entry of `GET /history/{prompt_id}`.
public struct HistoryEntry: Sendable, Equatable {
    /// `success` or `error`.
    public var statusText: String
    public var completed: Bool
    /// Images each output node produced, by node id.
    public var images: [String: [ImageReference]]

    init(json: JSONValue) {
        statusText = json["status"]?["status_str"]?.stringValue ?? ""
        completed = json["status"]?["completed"]?.boolValue ?? false
        images = (json["outputs"]?.objectValue ?? [:]).mapValues(ImageReference.list)
    }
}

/// The part of a node class's `object_info` a client usually needs.
public struct NodeInfo: Sendable, Equatable {
    public var name: String
    public var displayName: String
    public var category: String
    public var isOutputNode: Bool
    /// `input.required`: input name → its spec (`[["a.safetensors", "b.safetensors"], {...}]` for a file list).
    public var requiredInputs: [String: JSONValue]

    init(name: String, json: JSONValue) {
        self.name = json["name"]?.stringValue ?? name
        displayName = json["display_name"]?.stringValue ?? name
        category = json["category"]?.stringValue ?? ""
        isOutputNode = json["output_node"]?.boolValue ?? false
        requiredInputs = json["input"]?["required"]?.objectValue ?? [:]
    }

    /// The choices of a required list input (e.g. the file names `UNETLoader` offers for `unet_name`).
    public func choices(of input: String) -> [String] {
        guard let spec = requiredInputs[input]?.arrayValue, let first = spec.first else { return [] }
        if let list = first.arrayValue { return list.compactMap(\.stringValue) }
        // V3 / newer: ["COMBO", {"options": [...]}]
        return spec.dropFirst().first?["options"]?.arrayValue?.compactMap(\.stringValue) ?? []
    }
}

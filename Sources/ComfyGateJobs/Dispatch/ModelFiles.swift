public import ComfyGatePolicy

/// The model files a prompt names — string inputs whose value is a file with a model file's extension — and
/// whether a ComfyUI's node catalog offers them: a job goes only to a backend that has every one.
public struct ModelFiles: Sendable, Equatable {
    /// One input naming a model file.
    public struct Reference: Sendable, Hashable {
        public var classType: String
        public var input: String
        public var file: String
    }

    public let references: Set<Reference>

    /// The extensions of the files ComfyUI loads models from.
    static let extensions = [".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".sft", ".onnx", ".pkl", ".pt2"]

    /// Reads the model files an API-format prompt names.
    public init(prompt: PolicyJSON) {
        var references: Set<Reference> = []
        for node in prompt.members ?? [] {
            guard let classType = node.value["class_type"]?.stringValue else { continue }
            for input in node.value["inputs"]?.members ?? [] {
                guard let value = input.value.stringValue, Self.isModelFile(value) else { continue }
                references.insert(Reference(classType: classType, input: input.key, file: value))
            }
        }
        self.references = references
    }

    static func isModelFile(_ value: String) -> Bool {
        let lowered = value.lowercased()
        return extensions.contains { lowered.hasSuffix($0) }
    }

    /// The file names, sorted.
    public var files: [String] { Set(references.map(\.file)).sorted() }

    /// The files the catalog does not offer where the prompt names them, sorted; empty when it offers all. An input
    /// whose node the catalog lists without a list of allowed values (a free path) counts as offered.
    public func missing(in catalog: NodeCatalog) -> [String] {
        var missing: Set<String> = []
        for reference in references {
            guard let node = catalog.nodes[reference.classType] else {
                missing.insert(reference.file)
                continue
            }
            guard let allowed = node.inputs.first(where: { $0.name == reference.input })?.allowedValues else { continue }
            if !allowed.contains(.string(reference.file)) { missing.insert(reference.file) }
        }
        return missing.sorted()
    }
}

/// An `/object_info` answer as the gateway sends it on, and the upload inputs it declares.
public struct ObjectInfoAnswer: Sendable, Equatable {
    /// The bytes to send: for non-admins, every upload input's file list cut to the caller's own files; for
    /// admins, ComfyUI's answer unchanged.
    public var answer: [UInt8]
    /// Every upload input found, by node class type: the inputs whose value names a file in ComfyUI's trees.
    public var uploadInputs: [String: Set<String>]

    public init(answer: [UInt8], uploadInputs: [String: Set<String>]) {
        self.answer = answer
        self.uploadInputs = uploadInputs
    }
}

extension AnswerFilter {
    /// The option keys that make a combo input an upload widget in the front end (0.3.64 and V3 `UploadType`).
    static let uploadFlags = ["image_upload", "video_upload", "audio_upload", "file_upload", "upload"]

    /// `GET /object_info` and `GET /object_info/{class}` (`{class_type: node_info}`): finds the upload inputs and,
    /// for non-admins, keeps in their file lists only names inside the caller's folder.
    ///
    /// An input spec is `[type, options]` in each section of `node_info.input`. It is an upload input when its
    /// options set one of ``uploadFlags``, or it is the `image` input of `LoadImage` or `LoadImageMask`. Its file
    /// names are the list in place of the type (`[[names…], {"image_upload": true}]`) or, for V3 combos,
    /// `options.options` (`["COMBO", {"options": [names…], "video_upload": true}]`); an `options.default` that is
    /// not one of the caller's files is dropped.
    public static func objectInfo(_ answer: [UInt8], for caller: Caller) throws(PolicyRefusal) -> ObjectInfoAnswer {
        guard var nodes = try parse(answer, route: "/object_info").members else {
            throw .unreadableAnswer(from: "/object_info")
        }
        var uploadInputs: [String: Set<String>] = [:]
        for node in nodes.indices {
            let classType = nodes[node].key
            guard var sections = nodes[node].value["input"]?.members else { continue }
            for section in sections.indices {
                guard var inputs = sections[section].value.members else { continue }
                for input in inputs.indices where isUploadInput(inputs[input], of: classType) {
                    uploadInputs[classType, default: []].insert(inputs[input].key)
                    if !caller.isAdmin { inputs[input].value = ownFiles(of: inputs[input].value, in: caller.space) }
                }
                sections[section].value = .object(inputs)
            }
            nodes[node].value["input"] = .object(sections)
        }
        return ObjectInfoAnswer(
            answer: caller.isAdmin ? answer : PolicyJSON.object(nodes).serialized(), uploadInputs: uploadInputs)
    }

    private static func isUploadInput(_ input: PolicyJSON.Member, of classType: String) -> Bool {
        if input.key == "image", classType == "LoadImage" || classType == "LoadImageMask" { return true }
        guard let spec = input.value.arrayValue, spec.count > 1 else { return false }
        return uploadFlags.contains { spec[1][$0]?.isTruthy == true }
    }

    /// An upload input spec with its file names cut to those inside the user's folder.
    private static func ownFiles(of spec: PolicyJSON, in space: UserSpace) -> PolicyJSON {
        guard var parts = spec.arrayValue, !parts.isEmpty else { return spec }
        let isOwn = { (name: PolicyJSON) in isFile(name, in: space) }
        if let names = parts[0].arrayValue { parts[0] = .array(names.filter(isOwn)) }
        if parts.count > 1 {
            if let names = parts[1]["options"]?.arrayValue { parts[1]["options"] = .array(names.filter(isOwn)) }
            if let name = parts[1]["default"], !isOwn(name) { parts[1]["default"] = nil }
        }
        return .array(parts)
    }

    /// Whether a listed name (`folder/…/file`, relative to its tree) lies inside the user's folder.
    private static func isFile(_ name: PolicyJSON, in space: UserSpace) -> Bool {
        guard let name = name.stringValue, let slash = name.lastIndex(of: "/") else { return false }
        return space.contains(folder: String(name[..<slash]))
    }
}

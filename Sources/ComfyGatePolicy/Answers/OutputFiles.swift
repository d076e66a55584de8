extension OwnershipIndex.FileReference {
    /// The files one node's `ui` output lists, in order: every `{"filename", "subfolder", "type"}` object in any of
    /// its lists (`images`, `gifs`, `audio`, `video`, …). Items without a string `filename` (text, flags) are
    /// skipped; a missing `subfolder` is `""` and a missing `type` is `output`, as `/view` would take them.
    public static func listed(inNodeOutput output: PolicyJSON) -> [Self] {
        guard let lists = output.members else { return [] }
        return lists.flatMap { list in
            (list.value.arrayValue ?? []).compactMap { item in
                guard let name = item["filename"]?.stringValue else { return nil }
                return Self(
                    type: item["type"]?.stringValue ?? "output",
                    subfolder: item["subfolder"]?.stringValue ?? "",
                    name: name)
            }
        }
    }
}

/// The files an `executed` websocket message reports, and the prompt that made them: the gateway records them
/// as the prompt owner's, for later `/view` checks.
public struct ExecutedOutput: Sendable, Equatable {
    public var promptID: String
    public var files: [OwnershipIndex.FileReference]

    public init(promptID: String, files: [OwnershipIndex.FileReference]) {
        self.promptID = promptID
        self.files = files
    }

    /// Reads `{"type": "executed", "data": {"node", "output": {…}, "prompt_id"}}`; nil for any other message, text
    /// that is not JSON, or an `executed` message without a prompt id.
    public init?(message: some Collection<UInt8>) {
        guard let message = try? PolicyJSON(parsing: message), message["type"]?.stringValue == "executed",
            let data = message["data"], let promptID = data["prompt_id"]?.stringValue
        else { return nil }
        self.init(promptID: promptID, files: OwnershipIndex.FileReference.listed(inNodeOutput: data["output"] ?? .null))
    }
}

public import ComfyGatePolicy

/// The node classes a ComfyUI offers, read from its `GET /object_info` answer: what a prompt is checked against
/// before it waits in the gateway's queue.
public struct NodeCatalog: Sendable {
    /// One node class: its inputs in the order ComfyUI declares them (required first), what it returns, and
    /// whether it is an output node (one that makes a prompt worth running).
    public struct Node: Sendable, Equatable {
        public var inputs: [Input]
        public var outputs: [String]
        public var isOutputNode: Bool
    }

    /// One declared input and its `INPUT_TYPES` entry.
    public struct Input: Sendable, Equatable {
        public var name: String
        public var isRequired: Bool
        /// The type name (`INT`, `IMAGE`, `COMBO`, …), or nil for a classic combo declared by its list.
        public var typeName: String?
        /// The values a combo accepts, when it lists them and ComfyUI checks the value against the list (not for
        /// upload combos, whose node checks the file itself).
        public var allowedValues: [PolicyJSON]?
        /// The entry as declared, `[type or list, options]`, for the `input_config` of an error.
        public var declaration: PolicyJSON
    }

    public let nodes: [String: Node]

    /// Reads an `/object_info` answer; nil when it is not an object of node classes.
    public init?(objectInfo: PolicyJSON) {
        guard let classes = objectInfo.members else { return nil }
        var nodes: [String: Node] = [:]
        for entry in classes {
            guard entry.value.members != nil else { continue }
            var inputs: [Input] = []
            for (section, isRequired) in [("required", true), ("optional", false)] {
                for member in entry.value["input"]?[section]?.members ?? [] {
                    inputs.append(Self.input(member.key, isRequired: isRequired, declaration: member.value))
                }
            }
            nodes[entry.key] = Node(
                inputs: inputs,
                outputs: (entry.value["output"]?.arrayValue ?? []).map { $0.stringValue ?? "*" },
                isOutputNode: entry.value["output_node"] == .bool(true))
        }
        self.nodes = nodes
    }

    private static func input(_ name: String, isRequired: Bool, declaration: PolicyJSON) -> Input {
        let parts = declaration.arrayValue ?? []
        let options = parts.count > 1 ? parts[1] : nil
        let checksList = options?["image_upload"]?.isTruthy != true && options?["remote"] == nil
        switch parts.first {
        case .array(let values)?:
            return Input(
                name: name, isRequired: isRequired, typeName: nil,
                allowedValues: checksList ? values : nil, declaration: declaration)
        case .string(let type)?:
            let listed = type == "COMBO" ? options?["options"]?.arrayValue : nil
            return Input(
                name: name, isRequired: isRequired, typeName: type,
                allowedValues: checksList ? listed : nil, declaration: declaration)
        default:
            return Input(name: name, isRequired: isRequired, typeName: nil, allowedValues: nil, declaration: declaration)
        }
    }

    /// A value as Python's `str()` writes it: strings as they are, numbers as sent, `True`/`False`/`None`.
    static func pythonString(_ value: PolicyJSON) -> String {
        switch value {
        case .string(let text): text
        case .number(let literal): literal
        case .bool(let flag): flag ? "True" : "False"
        case .null: "None"
        case .array(let elements): "[" + elements.map(pythonRepr).joined(separator: ", ") + "]"
        case .object(let members): "{" + members.map { pythonRepr(.string($0.key)) + ": " + pythonRepr($0.value) }.joined(separator: ", ") + "}"
        }
    }

    /// A value as Python's `repr()` writes it (strings quoted as Python quotes them).
    static func pythonRepr(_ value: PolicyJSON) -> String {
        guard case .string(let text) = value else { return pythonString(value) }
        let quote: Character = text.contains("'") && !text.contains("\"") ? "\"" : "'"
        var written = String(quote)
        for character in text {
            switch character {
            case "\\": written += "\\\\"
            case "\n": written += "\\n"
            case "\r": written += "\\r"
            case "\t": written += "\\t"
            case quote: written += "\\" + String(quote)
            default: written.append(character)
            }
        }
        return written + String(quote)
    }
}

public import ComfyGatePolicy

/// What checking a prompt against the node catalog found.
public enum PromptValidation: Sendable, Equatable {
    /// Worth queueing: the output nodes that will run, and the errors of those that will not (ComfyUI answers
    /// `200` with them in `node_errors` and drops those outputs).
    case accepted(outputs: [String], nodeErrors: PolicyJSON)
    /// Refused, with the body ComfyUI answers with `400`: `{"error": {…}, "node_errors": {…}}`.
    case refused(PolicyJSON)
}

/// Checks an API-format prompt the way ComfyUI's `validate_prompt` does, for the faults `/object_info` shows: a
/// node without `class_type` or of an unknown class, a prompt without an output node, a required input missing,
/// a combo value not in its list. Errors have ComfyUI's shapes, texts and order, so a prompt the gateway holds
/// back is answered as ComfyUI would answer it at once.
///
/// Faults only a running ComfyUI can tell — a node's own `VALIDATE_INPUTS`, type mismatches between linked
/// nodes, numbers out of range — are left to it: such a prompt fails when it is handed over.
public struct PromptValidator: Sendable {
    public let catalog: NodeCatalog

    public init(catalog: NodeCatalog) {
        self.catalog = catalog
    }

    /// Checks `prompt` (`{node_id: {"class_type", "inputs"}}`); `targets` are the `partial_execution_targets`
    /// when the request names some.
    public func validate(_ prompt: PolicyJSON, targets: [String]? = nil) -> PromptValidation {
        guard let nodes = prompt.members else {
            return .refused(Self.answer(Self.error("invalid_prompt", "Cannot execute because the prompt is not an object of nodes", "")))
        }
        var outputs: [String] = []
        for node in nodes {
            guard let classType = node.value["class_type"]?.stringValue else {
                return .refused(
                    Self.answer(
                        Self.error(
                            "invalid_prompt", "Cannot execute because a node is missing the class_type property.",
                            "Node ID '#\(node.key)'")))
            }
            guard let definition = catalog.nodes[classType] else {
                return .refused(
                    Self.answer(
                        Self.error("invalid_prompt", "Cannot execute because node \(classType) does not exist.", "Node ID '#\(node.key)'")))
            }
            if definition.isOutputNode, targets?.contains(node.key) ?? true, !outputs.contains(node.key) { outputs.append(node.key) }
        }
        guard !outputs.isEmpty else { return .refused(Self.answer(Self.error("prompt_no_outputs", "Prompt has no outputs", ""))) }

        var run = Run(catalog: catalog, graph: prompt)
        var goodOutputs: [String] = []
        var failureLines: [String] = []
        var nodeErrors: [PolicyJSON.Member] = []
        for output in outputs {
            let (valid, reasons) = run.validate(output)
            if valid {
                goodOutputs.append(output)
                continue
            }
            failureLines += reasons.map { "\($0["message"]?.stringValue ?? ""): \($0["details"]?.stringValue ?? "")" }
            for nodeID in run.order {
                guard let result = run.validated[nodeID], !result.valid, !result.reasons.isEmpty else { continue }
                if let index = nodeErrors.firstIndex(where: { $0.key == nodeID }) {
                    nodeErrors[index].value["dependent_outputs"] = .array(
                        (nodeErrors[index].value["dependent_outputs"]?.arrayValue ?? []) + [.string(output)])
                } else {
                    nodeErrors.append(
                        PolicyJSON.Member(
                            key: nodeID,
                            value: .object([
                                .init(key: "errors", value: .array(result.reasons)),
                                .init(key: "dependent_outputs", value: .array([.string(output)])),
                                .init(key: "class_type", value: prompt[nodeID]?["class_type"] ?? .null),
                            ])))
                }
            }
        }
        guard !goodOutputs.isEmpty else {
            let error = Self.error("prompt_outputs_failed_validation", "Prompt outputs failed validation", failureLines.joined(separator: "\n"))
            return .refused(Self.answer(error, nodeErrors: .object(nodeErrors)))
        }
        return .accepted(outputs: goodOutputs, nodeErrors: .object(nodeErrors))
    }

    /// One validation: each node is checked once, its result kept in the order results came in (inputs before the
    /// nodes that use them, as ComfyUI's `validated` dict fills).
    private struct Run {
        let catalog: NodeCatalog
        let graph: PolicyJSON
        var validated: [String: (valid: Bool, reasons: [PolicyJSON])] = [:]
        var order: [String] = []

        mutating func validate(_ nodeID: String) -> (valid: Bool, reasons: [PolicyJSON]) {
            if let known = validated[nodeID] { return known }
            validated[nodeID] = (true, [])  // a link back to a node being checked is not followed again
            let node = graph[nodeID]
            let inputs = node?["inputs"] ?? .object([])
            var reasons: [PolicyJSON] = []
            var valid = true
            for input in catalog.nodes[node?["class_type"]?.stringValue ?? ""]?.inputs ?? [] {
                guard var value = inputs[input.name] else {
                    if input.isRequired {
                        reasons.append(
                            PromptValidator.error(
                                "required_input_missing", "Required input is missing", input.name,
                                extraInfo: [.init(key: "input_name", value: .string(input.name))]))
                    }
                    continue
                }
                if let link = value.arrayValue {
                    // A link: its source is checked in turn (what makes a malformed link is left to ComfyUI).
                    guard link.count == 2, let source = link[0].stringValue, graph[source] != nil else { continue }
                    if !validate(source).valid { valid = false }
                    continue
                }
                if let wrapped = value["__value__"] { value = wrapped }
                guard let allowed = input.allowedValues, !allowed.contains(value) else { continue }
                let listed = allowed.count > 20 ? "(list of length \(allowed.count))" : NodeCatalog.pythonString(.array(allowed))
                let declaration = input.declaration.arrayValue ?? []
                let config: PolicyJSON =
                    allowed.count > 20 ? .null : .array([declaration.first ?? .null, declaration.count > 1 ? declaration[1] : .object([])])
                reasons.append(
                    PromptValidator.error(
                        "value_not_in_list", "Value not in list", "\(input.name): '\(NodeCatalog.pythonString(value))' not in \(listed)",
                        extraInfo: [
                            .init(key: "input_name", value: .string(input.name)),
                            .init(key: "input_config", value: config),
                            .init(key: "received_value", value: value),
                        ]))
            }
            let result = (valid && reasons.isEmpty, reasons)
            validated[nodeID] = result
            order.append(nodeID)
            return result
        }
    }

    static func error(_ type: String, _ message: String, _ details: String, extraInfo: [PolicyJSON.Member] = []) -> PolicyJSON {
        .object([
            .init(key: "type", value: .string(type)),
            .init(key: "message", value: .string(message)),
            .init(key: "details", value: .string(details)),
            .init(key: "extra_info", value: .object(extraInfo)),
        ])
    }

    static func answer(_ error: PolicyJSON, nodeErrors: PolicyJSON = .object([])) -> PolicyJSON {
        .object([.init(key: "error", value: error), .init(key: "node_errors", value: nodeErrors)])
    }
}

/// A `POST /prompt` body rewritten for its caller, ready for ComfyUI.
public struct PromptSubmission: Sendable {
    /// The JSON to send ComfyUI.
    public var body: [UInt8]
    /// The `prompt_id` the client chose, if it sent one.
    public var promptID: String?
    /// The `client_id` ComfyUI gets: always one in the caller's namespace.
    public var clientID: String

    /// Rewrites a `POST /prompt` body so the prompt is the caller's and stays in the caller's space.
    ///
    /// For every caller: the body must be a JSON object, `prompt_id` a string if sent, and `extra_data` an
    /// object if sent (else 400). `extra_data[PromptRules.ownerKey]` becomes the caller's user id, and
    /// `client_id` (top level and in `extra_data`) the caller's version of the id sent at the top level, else of
    /// the one in `extra_data`, else of a random one, so ComfyUI never broadcasts the prompt's progress.
    ///
    /// For callers who are not admins, in addition: `number` and `front` are removed; a node of a denied class
    /// is refused; every `filename_prefix` must be a text value and is moved under the caller's folder; every
    /// upload input must be a text value naming one of the caller's files (a bare name in `input/` means the
    /// caller's own upload and is moved under their folder). Refusals of the graph are 403s naming the node.
    /// Everything else is passed on as sent.
    public static func rewrite(_ body: [UInt8], for caller: Caller, rules: PromptRules) throws(PolicyRefusal)
        -> PromptSubmission
    {
        var request: PolicyJSON
        do {
            request = try PolicyJSON(parsing: body)
        } catch {
            throw .badRequest("the prompt is not valid JSON: \(error.reason) at byte \(error.offset)")
        }
        guard request.members != nil else { throw .badRequest("the prompt must be a JSON object") }

        let promptID: String?
        switch request["prompt_id"] {
        case nil: promptID = nil
        case .string(let text)?: promptID = text
        default: throw .badRequest("prompt_id must be a string")
        }

        var extraData = request["extra_data"] ?? .object([])
        guard extraData.members != nil else { throw .badRequest("extra_data must be an object") }
        let sentClientID = request["client_id"]?.stringValue ?? extraData["client_id"]?.stringValue
        let clientID = caller.space.clientID(sentClientID ?? randomClientID())
        extraData[PromptRules.ownerKey] = .string(caller.userID)
        extraData["client_id"] = .string(clientID)
        request["extra_data"] = extraData
        request["client_id"] = .string(clientID)

        if !caller.isAdmin {
            request["number"] = nil
            request["front"] = nil
            if case .object(var nodes)? = request["prompt"] {
                let confinement = GraphConfinement(space: caller.space, rules: rules)
                for index in nodes.indices {
                    try confinement.confine(&nodes[index])
                }
                request["prompt"] = .object(nodes)
            }
        }
        return PromptSubmission(body: request.serialized(), promptID: promptID, clientID: clientID)
    }

    /// 32 random hex digits, like the client ids ComfyUI makes itself.
    private static func randomClientID() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<2).map { _ in
            let digits = String(generator.next() as UInt64, radix: 16)
            return String(repeating: "0", count: 16 - digits.count) + digits
        }.joined()
    }
}

/// The per-node rules of a graph queued by a caller who is not an admin.
private struct GraphConfinement {
    let space: UserSpace
    let rules: PromptRules

    /// The file trees an upload input can point into, by annotation suffix.
    private static let annotations = [(" [input]", "input"), (" [output]", "output"), (" [temp]", "temp")]

    /// Checks one member of `prompt` and rewrites its file inputs. Members that are not nodes are left alone.
    func confine(_ member: inout PolicyJSON.Member) throws(PolicyRefusal) {
        guard case .string(let classType)? = member.value["class_type"] else { return }
        let node = "node \"\(member.key)\" (\(classType))"
        guard !rules.deniedNodeClasses.contains(classType) else {
            throw .forbidden("\(node): only admins may run this node type")
        }
        guard var inputs = member.value["inputs"], inputs.members != nil else { return }
        if let prefix = inputs["filename_prefix"] {
            inputs["filename_prefix"] = .string(try confinedPrefix(prefix, of: node))
        }
        for name in rules.uploadInputs[classType, default: []].sorted() {
            guard let value = inputs[name] else { continue }
            inputs[name] = .string(try confinedLoad(value, named: name, of: node))
        }
        member.value["inputs"] = inputs
    }

    /// The prefix moved into the caller's folder; refused when it is not text or would leave the folder.
    private func confinedPrefix(_ value: PolicyJSON, of node: String) throws(PolicyRefusal) -> String {
        let prefix = try text(value, named: "filename_prefix", of: node)
        // `..` is refused anywhere, not only as a path component: ComfyUI expands `%date:…%` inside the prefix.
        guard !prefix.hasPrefix("/"), !prefix.contains(".."), !prefix.contains("\\") else {
            throw .forbidden("\(node): filename_prefix \(prefix) would leave your folder")
        }
        let components = Self.components(of: prefix)
        guard !components.isEmpty else { throw .forbidden("\(node): filename_prefix must name a file") }
        return ([space.folder] + components).joined(separator: "/")
    }

    /// The file an upload input loads, normalised and, when a bare name in `input/`, moved into the caller's
    /// folder; refused unless it lies in the caller's folder or the caller owns it.
    private func confinedLoad(_ value: PolicyJSON, named name: String, of node: String) throws(PolicyRefusal)
        -> String
    {
        let sent = try text(value, named: name, of: node)
        var path = sent
        var tree = "input"
        var annotation = ""
        for (suffix, annotatedTree) in Self.annotations where sent.hasSuffix(suffix) {
            path = String(sent.dropLast(suffix.count))
            tree = annotatedTree
            annotation = suffix
        }
        var components = Self.components(of: path)
        guard !path.hasPrefix("/"), !path.contains("\\"), !components.contains(".."), let file = components.last
        else { throw .forbidden("\(node) loads \(sent), which is not one of your files") }
        if tree == "input", !path.contains("/") {
            components.insert(space.folder, at: 0)
        }
        let subfolder = components.dropLast().joined(separator: "/")
        guard space.contains(folder: subfolder) || rules.ownsFile(tree, subfolder, file) else {
            throw .forbidden("\(node) loads \(sent), which is not one of your files")
        }
        return components.joined(separator: "/") + annotation
    }

    /// The text of a literal string input; links and other values are refused.
    private func text(_ value: PolicyJSON, named name: String, of node: String) throws(PolicyRefusal) -> String {
        switch value {
        case .string(let text): return text
        case .array: throw .forbidden("\(node): \(name) must be a text value, not a link")
        default: throw .forbidden("\(node): \(name) must be a text value")
        }
    }

    /// The `/` separated components of a relative path without empty and `.` ones, as `normpath` leaves them.
    private static func components(of path: String) -> [String] {
        path.split(separator: "/").map(String.init).filter { $0 != "." }
    }
}

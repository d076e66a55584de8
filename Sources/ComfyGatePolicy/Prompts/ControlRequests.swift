/// The bodies of ComfyUI's control requests, narrowed for a caller who is not an admin to the caller's own
/// prompts. Each answers the body to forward, or nil when nothing is left to do (the gateway then answers 200
/// itself, as ComfyUI would).
public enum ControlRequests {
    /// Narrows a `POST /queue` or `POST /history` body (`{"clear": true}` and/or `{"delete": [ids]}`).
    ///
    /// A truthy `clear` becomes a deletion of `ownIDs`, and `delete` keeps only the ids `owns` accepts; the body
    /// forwarded holds no `clear`, and nil means there is nothing to delete. A body that is not a JSON object, or
    /// whose `delete` is not an array, is refused with 400.
    /// - Parameters:
    ///   - ownIDs: the caller's own ids in the list the request is about (pending prompts or history).
    ///   - owns: whether a prompt id is the caller's.
    public static func deletion(_ body: [UInt8], ownIDs: [String], owns: (String) -> Bool) throws(PolicyRefusal)
        -> [UInt8]?
    {
        var request = try object(body)
        var ids = request["clear"]?.isTruthy == true ? ownIDs : []
        switch request["delete"] {
        case nil: break
        case .array(let sent)?: ids += sent.compactMap(\.stringValue).filter(owns)
        default: throw .badRequest("delete must be an array of prompt ids")
        }
        var seen: Set<String> = []
        ids = ids.filter { seen.insert($0).inserted }
        guard !ids.isEmpty else { return nil }
        request["clear"] = nil
        request["delete"] = .array(ids.map(PolicyJSON.string))
        return request.serialized()
    }

    /// Narrows a `POST /interrupt` body (empty, `{}` or `{"prompt_id": id}`).
    ///
    /// A `prompt_id` the caller owns is kept, any other one means nothing to do; without a `prompt_id` (or with
    /// an empty one, which ComfyUI takes as none) the interrupt targets `runningOwnPrompt`, or does nothing when
    /// the caller has no prompt running. A body that is neither empty nor a JSON object is refused with 400.
    /// - Parameters:
    ///   - runningOwnPrompt: the id of the prompt ComfyUI is running, if it is the caller's.
    ///   - owns: whether a prompt id is the caller's.
    public static func interrupt(_ body: [UInt8], runningOwnPrompt: String?, owns: (String) -> Bool)
        throws(PolicyRefusal) -> [UInt8]?
    {
        let isEmpty = body.allSatisfy { [0x20, 0x09, 0x0A, 0x0D].contains($0) }
        let sent = isEmpty ? nil : try object(body)["prompt_id"]
        let target: String?
        switch sent {
        case let sent? where sent.isTruthy: target = sent.stringValue.flatMap { owns($0) ? $0 : nil }
        default: target = runningOwnPrompt
        }
        return target.map { PolicyJSON.object([.init(key: "prompt_id", value: .string($0))]).serialized() }
    }

    private static func object(_ body: [UInt8]) throws(PolicyRefusal) -> PolicyJSON {
        guard let request = try? PolicyJSON(parsing: body), request.members != nil else {
            throw .badRequest("the body must be a JSON object")
        }
        return request
    }
}

/// Cuts ComfyUI's JSON answers down to what the caller may see, in the exact shapes ComfyUI answers with.
///
/// A prompt belongs to the user whose id the gateway wrote at `extra_data[PromptRules.ownerKey]` when it was queued;
/// a prompt without that mark is nobody's, so non-admins never see it. Admins see every item. Each filter takes
/// the answer's bytes and gives the bytes to send on; an answer that is not JSON, or not in its route's shape,
/// throws a 502 refusal (fail closed: nothing of it reaches the caller).
public enum AnswerFilter {
    /// `GET /queue`: `queue_running` and `queue_pending` keep only the caller's items (a queue item is
    /// `[number, prompt_id, prompt, extra_data, outputs_to_execute]`); any other member passes as sent. Admins get
    /// the answer unchanged.
    public static func queue(_ answer: [UInt8], for caller: Caller) throws(PolicyRefusal) -> [UInt8] {
        guard !caller.isAdmin else { return answer }
        let outline = try self.outline(answer, route: "/queue")
        guard let members = outline.members(of: outline.root) else { throw .unreadableAnswer(from: "/queue") }
        var lists: [String: [UInt8]] = [:]
        for list in ["queue_running", "queue_pending"] {
            // Python keeps the last member of a name.
            guard let items = members.last(where: { $0.key == list }).flatMap({ outline.elements(of: $0.value) }) else {
                throw .unreadableAnswer(from: "/queue")
            }
            lists[list] = outline.array(of: items.filter { isOwned(queueItem: $0, in: outline, by: caller) })
        }
        var output: [UInt8] = [UInt8(ascii: "{")]
        var written: Set<String> = []
        for member in members {
            let filtered = lists[member.key]
            guard filtered == nil || written.insert(member.key).inserted else { continue }  // a cut list is written once
            if output.count > 1 { output.append(UInt8(ascii: ",")) }
            output.append(contentsOf: outline.bytes[member.keyLiteral])
            output.append(UInt8(ascii: ":"))
            output.append(contentsOf: filtered ?? Array(outline.bytes[member.value]))
        }
        output.append(UInt8(ascii: "}"))
        return output
    }

    /// A history answer cut to the caller.
    public struct CutHistory: Sendable, Equatable {
        /// The answer to send on.
        public var answer: [UInt8]
        /// The output files its entries list, for the caller's later `/view`; none for an admin, whose answer
        /// holds everyone's.
        public var outputFiles: [OwnershipIndex.FileReference]
    }

    /// `GET /history` asked of ComfyUI without `max_items` and `offset`: the caller's entries (all entries for
    /// admins), in ComfyUI's order, then the requested page of them, paged as ComfyUI pages its own history.
    /// Entries go on as ComfyUI wrote them; only their owner marks and outputs are read.
    public static func history(_ answer: [UInt8], page: HistoryPage, for caller: Caller) throws(PolicyRefusal)
        -> CutHistory
    {
        let (outline, entries) = try visibleEntries(of: answer, route: "/history", for: caller)
        return cut(entries[page.positions(among: entries.count)], of: outline, for: caller)
    }

    /// `GET /history/{prompt_id}`: `{prompt_id: entry}` when the entry is the caller's, otherwise `{}`, as ComfyUI
    /// answers for an unknown id. Admins get the answer unchanged.
    public static func historyItem(_ answer: [UInt8], for caller: Caller) throws(PolicyRefusal) -> CutHistory {
        guard !caller.isAdmin else { return CutHistory(answer: answer, outputFiles: []) }
        let (outline, entries) = try visibleEntries(of: answer, route: "/history", for: caller)
        return cut(entries, of: outline, for: caller)
    }

    /// The kept entries as an answer, with the files their `outputs` (`{node_id: ui_output}`) list.
    private static func cut(_ entries: some Collection<JSONOutline.Member>, of outline: JSONOutline, for caller: Caller)
        -> CutHistory
    {
        let files = caller.isAdmin ? [] : entries.flatMap { entry in
            let outputs = outline.find([.key("outputs")], in: entry.value).map(outline.value)?.members ?? []
            return outputs.flatMap { OwnershipIndex.FileReference.listed(inNodeOutput: $0.value) }
        }
        return CutHistory(answer: outline.object(of: entries), outputFiles: files)
    }

    /// [newer] `GET /api/jobs` asked of ComfyUI without `limit` and `offset` (its other parameters forwarded): the
    /// jobs `owns` accepts by id (all for admins), in ComfyUI's order, then the requested page, with `pagination`
    /// counting only those jobs as ComfyUI would. List items carry no `extra_data`, hence the predicate.
    public static func jobs(
        _ answer: [UInt8], page: JobsPage, for caller: Caller, owns: (_ promptID: String) -> Bool
    ) throws(PolicyRefusal) -> [UInt8] {
        var list = try parse(answer, route: "/api/jobs")
        guard let jobs = list["jobs"]?.arrayValue, var pagination = list["pagination"], pagination.members != nil
        else { throw .unreadableAnswer(from: "/api/jobs") }
        let visible = caller.isAdmin ? jobs : jobs.filter { $0["id"]?.stringValue.map(owns) ?? false }
        let shown = visible.dropFirst(page.offset).prefix(page.limit ?? .max)
        list["jobs"] = .array(Array(shown))
        pagination["offset"] = .number(String(page.offset))
        pagination["limit"] = page.limit.map { .number(String($0)) } ?? .null
        pagination["total"] = .number(String(visible.count))
        pagination["has_more"] = .bool(page.offset + shown.count < visible.count)
        list["pagination"] = pagination
        return list.serialized()
    }

    /// [newer] `GET /api/jobs/{job_id}`: the job when it is the caller's (its `workflow.extra_data` holds the
    /// owner); another user's job is refused exactly as ComfyUI refuses an unknown one (404 `Job not found`).
    /// Admins get the answer unchanged.
    public static func job(_ answer: [UInt8], for caller: Caller) throws(PolicyRefusal) -> [UInt8] {
        guard !caller.isAdmin else { return answer }
        let job = try parse(answer, route: "/api/jobs")
        guard isOwned(extraData: job["workflow"]?["extra_data"], by: caller) else { throw .notFound("Job not found") }
        return answer
    }

    /// The members of a `{prompt_id: history_entry}` answer the caller may see, in order.
    private static func visibleEntries(of answer: [UInt8], route: String, for caller: Caller) throws(PolicyRefusal)
        -> (JSONOutline, [JSONOutline.Member])
    {
        let outline = try self.outline(answer, route: route)
        guard let entries = outline.members(of: outline.root) else { throw .unreadableAnswer(from: route) }
        guard !caller.isAdmin else { return (outline, entries) }
        return (outline, entries.filter { entry in
            outline.find([.key("prompt")], in: entry.value).map { isOwned(queueItem: $0, in: outline, by: caller) } ?? false
        })
    }

    /// Whether a queue item (also a history entry's `prompt`:
    /// `[number, prompt_id, prompt, extra_data, outputs_to_execute]`) was marked as the caller's.
    private static func isOwned(queueItem: Range<Int>, in outline: JSONOutline, by caller: Caller) -> Bool {
        guard let owner = outline.find([.index(3), .key(PromptRules.ownerKey)], in: queueItem) else { return false }
        return outline.value(owner).stringValue == caller.userID
    }

    private static func isOwned(extraData: PolicyJSON?, by caller: Caller) -> Bool {
        extraData?[PromptRules.ownerKey]?.stringValue == caller.userID
    }

    static func outline(_ answer: [UInt8], route: String) throws(PolicyRefusal) -> JSONOutline {
        do {
            return try JSONOutline(answer)
        } catch {
            throw .unreadableAnswer(from: route)
        }
    }

    static func parse(_ answer: [UInt8], route: String) throws(PolicyRefusal) -> PolicyJSON {
        do {
            return try PolicyJSON(parsing: answer)
        } catch {
            throw .unreadableAnswer(from: route)
        }
    }
}

extension PolicyRefusal {
    /// 502: ComfyUI answered something that is not JSON, or not in the shape its route answers with.
    static func unreadableAnswer(from route: String) -> Self {
        Self(status: 502, message: "ComfyUI's answer to \(route) is not the JSON it should be")
    }
}

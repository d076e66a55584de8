import ComfyGatePolicy
import FuzzSupport

private let alice = Caller(userID: "u-alice", userName: "alice", role: .user)
private let admin = Caller(userID: "u-root", userName: "root", role: .admin)

/// ComfyUI's answers as the gateway cuts them, checked against the full parser: `/history`, `/history/{id}` and
/// `/queue` refuse exactly what is not JSON; an admin's history comes back equal to what was sent; a user's keeps
/// exactly the entries whose owner mark (read with Python's last-key-wins) is theirs, in order and unchanged.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzAnswers(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(fuzzInput(data, size))
    let parsed = try? PolicyJSON(parsing: bytes)
    let members = parsed?.members

    let everything = try? AnswerFilter.history(bytes, page: .all, for: admin).answer
    precondition((everything != nil) == (members != nil), "the history filter and the parser disagree on \(bytes)")
    if let everything {
        precondition((try? PolicyJSON(parsing: everything)) == parsed, "an admin's history changed: \(bytes)")
    }

    let hers = try? AnswerFilter.history(bytes, page: .all, for: alice).answer
    precondition((hers != nil) == (members != nil))
    if let hers, let members {
        let expected = members.filter { owner(ofQueueItem: $0.value["prompt"]) == alice.userID }
        precondition((try? PolicyJSON(parsing: hers))?.members == expected, "a user's history is not their own entries: \(bytes)")
        precondition(try! AnswerFilter.historyItem(bytes, for: alice).answer == hers)
    }

    if let queue = try? AnswerFilter.queue(bytes, for: alice) {
        let answer = try! PolicyJSON(parsing: queue)
        for list in ["queue_running", "queue_pending"] {
            let sent = parsed?[list]?.arrayValue ?? []
            precondition(answer[list]?.arrayValue == sent.filter { owner(ofQueueItem: $0) == alice.userID })
        }
    } else {
        precondition(parsed?["queue_running"]?.arrayValue == nil || parsed?["queue_pending"]?.arrayValue == nil)
    }
    precondition((try? AnswerFilter.history(bytes, page: .all, for: admin))?.outputFiles.isEmpty ?? true)
    return 0
}

/// The owner mark of `[number, prompt_id, prompt, extra_data, outputs]`, read as the full parser reads it.
private func owner(ofQueueItem item: PolicyJSON?) -> String? {
    guard let fields = item?.arrayValue, fields.count > 3 else { return nil }
    return fields[3]["comfygate_owner"]?.stringValue
}

runFuzzer(fuzzAnswers)

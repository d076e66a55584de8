import ComfyGatePolicy
import Testing

@Suite struct ControlRequestsTests {
    /// Alice's prompts; any other id is someone else's.
    let own: Set<String> = ["a1", "a2", "a3"]

    private func deletion(_ body: String, ownIDs: [String] = ["a1", "a2"]) throws(PolicyRefusal) -> String? {
        try ControlRequests.deletion(Array(body.utf8), ownIDs: ownIDs, owns: own.contains)
            .map { String(decoding: $0, as: UTF8.self) }
    }

    private func interrupt(_ body: String, running: String? = "a1") throws(PolicyRefusal) -> String? {
        try ControlRequests.interrupt(Array(body.utf8), runningOwnPrompt: running, owns: own.contains)
            .map { String(decoding: $0, as: UTF8.self) }
    }

    // MARK: Queue and history deletion

    @Test func clearBecomesADeletionOfTheCallersOwnIDs() throws {
        #expect(try deletion(#"{"clear":true}"#) == #"{"delete":["a1","a2"]}"#)
    }

    @Test(arguments: [#"{"clear":false}"#, #"{"clear":0}"#, #"{"clear":null}"#, "{}"])
    func aFalsyClearDeletesNothing(_ body: String) throws {
        #expect(try deletion(body) == nil)
    }

    @Test func clearWithNoOwnIDsLeavesNothingToDo() throws {
        #expect(try deletion(#"{"clear":true}"#, ownIDs: []) == nil)
    }

    @Test func deleteKeepsOnlyOwnedIDs() throws {
        #expect(try deletion(#"{"delete":["b1","a3",7,"a1","b2"]}"#) == #"{"delete":["a3","a1"]}"#)
    }

    @Test func deleteOfOnlyOthersIDsLeavesNothingToDo() throws {
        #expect(try deletion(#"{"delete":["b1","b2"]}"#) == nil)
        #expect(try deletion(#"{"delete":[]}"#) == nil)
    }

    @Test func clearAndDeleteTogetherDeleteEachOwnIDOnce() throws {
        #expect(try deletion(#"{"delete":["a3","a1","b1","a3"],"clear":true}"#) == #"{"delete":["a1","a2","a3"]}"#)
    }

    @Test(arguments: ["", "x", "[]", #""clear""#])
    func aBodyThatIsNotAnObjectIsABadRequest(_ body: String) {
        #expect(throws: PolicyRefusal.badRequest("the body must be a JSON object")) { try deletion(body) }
    }

    @Test(arguments: [#""a1""#, "{}", "true"])
    func aDeleteThatIsNotAnArrayIsABadRequest(_ delete: String) {
        #expect(throws: PolicyRefusal.badRequest("delete must be an array of prompt ids")) {
            try deletion(#"{"delete":\#(delete)}"#)
        }
    }

    // MARK: Interrupt

    @Test func anOwnedPromptIDIsKept() throws {
        #expect(try interrupt(#"{"prompt_id":"a2"}"#) == #"{"prompt_id":"a2"}"#)
    }

    @Test(arguments: [#"{"prompt_id":"b1"}"#, #"{"prompt_id":5}"#, #"{"prompt_id":["a1"]}"#])
    func anyOtherPromptIDMeansNothingToDo(_ body: String) throws {
        #expect(try interrupt(body) == nil)
    }

    @Test(arguments: ["", "  \n", "{}", #"{"prompt_id":null}"#, #"{"prompt_id":""}"#, #"{"other":1}"#])
    func aBareInterruptTargetsTheCallersRunningPrompt(_ body: String) throws {
        #expect(try interrupt(body, running: "a3") == #"{"prompt_id":"a3"}"#)
    }

    @Test(arguments: ["", "{}"])
    func aBareInterruptDoesNothingWhenNoOwnPromptRuns(_ body: String) throws {
        #expect(try interrupt(body, running: nil) == nil)
    }

    @Test(arguments: ["x", "[]", "null"])
    func aBodyThatIsNeitherEmptyNorAnObjectIsABadRequest(_ body: String) {
        #expect(throws: PolicyRefusal.badRequest("the body must be a JSON object")) { try interrupt(body) }
    }
}

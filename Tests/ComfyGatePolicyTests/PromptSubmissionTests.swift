import ComfyGatePolicy
import Testing

@Suite struct PromptSubmissionTests {
    let alice = Caller(userID: "u-alice", userName: "Alice", role: .user)
    let admin = Caller(userID: "u-root", userName: "Root", role: .admin)

    /// Alice owns `output/users/bob/shared_00001_.png` (a file her own prompt wrote) and `temp/preview_1.png`.
    let rules = PromptRules(deniedNodeClasses: ["ExecutePython"]) { type, subfolder, name in
        (type, subfolder, name) == ("output", "users/bob", "shared_00001_.png")
            || (type, subfolder, name) == ("temp", "", "preview_1.png")
    }

    private func rewrite(_ text: String, as caller: Caller? = nil) throws(PolicyRefusal) -> PromptSubmission {
        try PromptSubmission.rewrite(Array(text.utf8), for: caller ?? alice, rules: rules)
    }

    private func json(_ submission: PromptSubmission) throws -> PolicyJSON {
        try PolicyJSON(parsing: submission.body)
    }

    private func refusal(_ text: String, as caller: Caller? = nil) -> PolicyRefusal? {
        do {
            _ = try rewrite(text, as: caller)
            return nil
        } catch {
            return error
        }
    }

    /// A prompt of one node with the given inputs, as JSON text.
    private func node(_ classType: String, id: String = "9", inputs: String) -> String {
        #"{"prompt":{"\#(id)":{"class_type":"\#(classType)","inputs":\#(inputs)}}}"#
    }

    private func input(_ name: String, of submission: PromptSubmission, node id: String = "9") throws -> PolicyJSON? {
        try json(submission)["prompt"]?[id]?["inputs"]?[name]
    }

    // MARK: Body shape

    @Test(arguments: ["", "not json", "[]", "\"prompt\"", "null", "{\"prompt\":{}"])
    func aBodyThatIsNotAJSONObjectIsABadRequest(_ body: String) {
        #expect(refusal(body)?.status == 400)
        #expect(refusal(body, as: admin)?.status == 400)
    }

    @Test(arguments: ["[]", "\"x\"", "1", "null"])
    func extraDataThatIsNotAnObjectIsABadRequest(_ extraData: String) {
        #expect(refusal(#"{"prompt":{},"extra_data":\#(extraData)}"#) == .badRequest("extra_data must be an object"))
    }

    @Test func aPromptIDIsReported() throws {
        #expect(try rewrite(#"{"prompt":{},"prompt_id":"p-1"}"#).promptID == "p-1")
        #expect(try rewrite(#"{"prompt":{}}"#).promptID == nil)
    }

    @Test(arguments: ["1", "null", "[\"p\"]"])
    func aPromptIDThatIsNotAStringIsABadRequest(_ promptID: String) {
        #expect(refusal(#"{"prompt":{},"prompt_id":\#(promptID)}"#) == .badRequest("prompt_id must be a string"))
    }

    // MARK: Owner and client id, for everyone

    @Test func theOwnerIsMarkedInExtraDataReplacingTheClientsValue() throws {
        for caller in [alice, admin] {
            let body =
                #"{"prompt":{},"extra_data":{"comfygate_owner":"u-bob","extra_pnginfo":{"w":1},"comfygate_owner":"x"}}"#
            let extraData = try json(try rewrite(body, as: caller))["extra_data"]
            #expect(extraData?.members?.filter { $0.key == PromptRules.ownerKey }.count == 1)
            #expect(extraData?[PromptRules.ownerKey] == .string(caller.userID))
            #expect(extraData?["extra_pnginfo"] == .object([.init(key: "w", value: .number("1"))]))
        }
    }

    @Test func extraDataIsCreatedWhenMissing() throws {
        let submission = try rewrite(#"{"prompt":{}}"#)
        #expect(try json(submission)["extra_data"]?[PromptRules.ownerKey] == .string("u-alice"))
    }

    @Test func aSentClientIDMovesIntoTheCallersNamespace() throws {
        let submission = try rewrite(#"{"prompt":{},"client_id":"u-bob~abc"}"#)
        #expect(submission.clientID == "u-alice~u-bob~abc")
        #expect(try json(submission)["client_id"] == .string("u-alice~u-bob~abc"))
        #expect(try json(submission)["extra_data"]?["client_id"] == .string("u-alice~u-bob~abc"))
    }

    @Test func theCallersOwnClientIDIsKept() throws {
        #expect(try rewrite(#"{"prompt":{},"client_id":"u-alice~abc"}"#).clientID == "u-alice~abc")
        #expect(try rewrite(#"{"prompt":{},"client_id":"u-root~abc"}"#, as: admin).clientID == "u-root~abc")
    }

    @Test func aClientIDSentOnlyInExtraDataIsConfinedToo() throws {
        let submission = try rewrite(#"{"prompt":{},"extra_data":{"client_id":"victim"}}"#)
        #expect(submission.clientID == "u-alice~victim")
        #expect(try json(submission)["extra_data"]?["client_id"] == .string("u-alice~victim"))
    }

    @Test(arguments: [#"{"prompt":{}}"#, #"{"prompt":{},"client_id":null}"#, #"{"prompt":{},"client_id":7}"#])
    func withoutAClientIDARandomOneOfTheCallersIsMade(_ body: String) throws {
        let first = try rewrite(body)
        let second = try rewrite(body)
        #expect(first.clientID.hasPrefix("u-alice~"))
        let random = first.clientID.dropFirst("u-alice~".count)
        #expect(random.count == 32 && random.allSatisfy(\.isHexDigit))
        #expect(first.clientID != second.clientID)
        #expect(try json(first)["client_id"] == .string(first.clientID))
    }

    // MARK: Queue order

    @Test func usersCannotJumpTheQueue() throws {
        let submitted = try json(try rewrite(#"{"number":-5,"prompt":{},"front":true}"#))
        #expect(submitted["number"] == nil)
        #expect(submitted["front"] == nil)
    }

    @Test func adminsMayJumpTheQueue() throws {
        let submitted = try json(try rewrite(#"{"number":-5,"prompt":{},"front":true}"#, as: admin))
        #expect(submitted["number"] == .number("-5"))
        #expect(submitted["front"] == .bool(true))
    }

    // MARK: Denied node classes

    @Test func aDeniedNodeClassIsRefusedNamingTheNode() {
        let body = node("ExecutePython", id: "4", inputs: #"{"code":"import os"}"#)
        #expect(refusal(body) == .forbidden(#"node "4" (ExecutePython): only admins may run this node type"#))
        #expect(refusal(body, as: admin) == nil)
    }

    @Test func membersOfThePromptThatAreNotNodesAreLeftAlone() throws {
        let body = #"{"prompt":{"note":"ExecutePython","x":{"inputs":{"filename_prefix":["1",0]}}}}"#
        #expect(try json(try rewrite(body))["prompt"] == (try PolicyJSON(parsing: Array(body.utf8)))["prompt"])
    }

    // MARK: filename_prefix

    @Test(arguments: [
        ("ComfyUI", "users/alice/ComfyUI"),
        ("portraits/day1", "users/alice/portraits/day1"),
        ("./a//b/", "users/alice/a/b"),
        ("%date:yyyy-MM-dd%/img", "users/alice/%date:yyyy-MM-dd%/img"),
        ("users/bob/x", "users/alice/users/bob/x"),
    ])
    func aLiteralPrefixMovesIntoTheUsersFolder(_ prefix: String, _ expected: String) throws {
        let submission = try rewrite(node("SaveImage", inputs: #"{"images":["8",0],"filename_prefix":"\#(prefix)"}"#))
        #expect(try input("filename_prefix", of: submission) == .string(expected))
        #expect(try input("images", of: submission) == .array([.string("8"), .number("0")]))
    }

    @Test func prefixesOfAnyNodeClassAreConfined() throws {
        let submission = try rewrite(node("VHS_VideoCombine", inputs: #"{"filename_prefix":"clip"}"#))
        #expect(try input("filename_prefix", of: submission) == .string("users/alice/clip"))
    }

    @Test func adminsPrefixesAreKept() throws {
        let submission = try rewrite(node("SaveImage", inputs: #"{"filename_prefix":"../x"}"#), as: admin)
        #expect(try input("filename_prefix", of: submission) == .string("../x"))
    }

    @Test(arguments: ["/etc/x", "../x", "a/../../x", "%date:..%/x", "a..b", #"a\\b"#])
    func aPrefixThatCouldLeaveTheFolderIsRefused(_ prefix: String) {
        let refusal = refusal(node("SaveImage", inputs: #"{"filename_prefix":"\#(prefix)"}"#))
        #expect(refusal?.status == 403)
        #expect(refusal?.message.hasPrefix(#"node "9" (SaveImage): filename_prefix "#) == true)
        #expect(refusal?.message.hasSuffix("would leave your folder") == true)
    }

    @Test(arguments: ["", ".", "/", "./"])
    func aPrefixThatNamesNoFileIsRefused(_ prefix: String) {
        let refusal = refusal(node("SaveImage", inputs: #"{"filename_prefix":"\#(prefix)"}"#))
        #expect(refusal?.status == 403)
    }

    @Test func aLinkedPrefixIsRefused() {
        #expect(
            refusal(node("SaveImage", inputs: #"{"filename_prefix":["5",0]}"#))
                == .forbidden(#"node "9" (SaveImage): filename_prefix must be a text value, not a link"#))
    }

    @Test func aPrefixThatIsNotTextIsRefused() {
        #expect(
            refusal(node("SaveImage", inputs: #"{"filename_prefix":42}"#))
                == .forbidden(#"node "9" (SaveImage): filename_prefix must be a text value"#))
    }

    @Test func everyMemberWithTheKeyIsConfined() throws {
        let submission = try rewrite(node("SaveImage", inputs: #"{"filename_prefix":"../a","filename_prefix":"b"}"#))
        let inputs = try json(submission)["prompt"]?["9"]?["inputs"]
        #expect(inputs?.members == [.init(key: "filename_prefix", value: .string("users/alice/b"))])
    }

    // MARK: Upload inputs

    @Test(arguments: [
        ("cat.png", "users/alice/cat.png"),
        ("cat.png [input]", "users/alice/cat.png [input]"),
        ("users/alice/cat.png", "users/alice/cat.png"),
        ("users/alice/pets/cat.png", "users/alice/pets/cat.png"),
        ("users/alice//./cat.png", "users/alice/cat.png"),
        ("users/bob/shared_00001_.png [output]", "users/bob/shared_00001_.png [output]"),
        ("users/alice/x.png [output]", "users/alice/x.png [output]"),
        ("preview_1.png [temp]", "preview_1.png [temp]"),
    ])
    func anOwnFileMayBeLoaded(_ value: String, _ expected: String) throws {
        let submission = try rewrite(node("LoadImage", id: "3", inputs: #"{"image":"\#(value)","upload":"image"}"#))
        #expect(try input("image", of: submission, node: "3") == .string(expected))
        #expect(try input("upload", of: submission, node: "3") == .string("image"))
    }

    @Test(arguments: [
        "users/bob/cat.png",
        "users/bob/cat.png [input]",
        "users/alicex/cat.png",
        "pets/cat.png",
        "users/alice/../bob/cat.png",
        "../cat.png",
        "/etc/passwd",
        "cat.png [output]",
        "users/bob/other.png [output]",
        "preview_2.png [temp]",
        "",
    ])
    func anotherUsersFileIsRefusedNamingTheNode(_ value: String) {
        #expect(
            refusal(node("LoadImage", id: "3", inputs: #"{"image":"\#(value)"}"#))
                == .forbidden(#"node "3" (LoadImage) loads \#(value), which is not one of your files"#))
    }

    @Test func aLoadPathWithABackslashIsRefused() {
        #expect(
            refusal(node("LoadImage", inputs: #"{"image":"users/alice/..\\..\\x.png"}"#))
                == .forbidden(#"node "9" (LoadImage) loads users/alice/..\..\x.png, which is not one of your files"#))
    }

    @Test func everyConfiguredUploadInputIsChecked() {
        let mask = node("LoadImageMask", inputs: #"{"image":"users/bob/m.png","channel":"alpha"}"#)
        #expect(
            refusal(mask)?.message == #"node "9" (LoadImageMask) loads users/bob/m.png, which is not one of your files"#)
        let custom = PromptRules(uploadInputs: ["MyLoader": ["picture"]]) { _, _, _ in false }
        let body = Array(node("MyLoader", inputs: #"{"picture":"users/bob/m.png"}"#).utf8)
        #expect(throws: PolicyRefusal.self) { try PromptSubmission.rewrite(body, for: alice, rules: custom) }
    }

    @Test func inputsNotListedAsUploadsAreLeftAlone() throws {
        let submission = try rewrite(node("LoadImage", inputs: #"{"other":"users/bob/cat.png"}"#))
        #expect(try input("other", of: submission) == .string("users/bob/cat.png"))
    }

    @Test func aLinkedUploadInputIsRefused() {
        #expect(
            refusal(node("LoadImage", inputs: #"{"image":["2",0]}"#))
                == .forbidden(#"node "9" (LoadImage): image must be a text value, not a link"#))
    }

    @Test func adminsMayLoadAnyFile() throws {
        let submission = try rewrite(node("LoadImage", inputs: #"{"image":"users/bob/cat.png"}"#), as: admin)
        #expect(try input("image", of: submission) == .string("users/bob/cat.png"))
        let bare = try rewrite(node("LoadImage", inputs: #"{"image":"cat.png"}"#), as: admin)
        #expect(try input("image", of: bare) == .string("cat.png"))
    }

    @Test func theFirstOffendingNodeInOrderIsNamed() {
        let body = #"{"prompt":{"2":{"class_type":"SaveImage","inputs":{"filename_prefix":["1",0]}},"#
            + #""1":{"class_type":"ExecutePython","inputs":{}}}}"#
        #expect(refusal(body)?.message.hasPrefix(#"node "2" (SaveImage)"#) == true)
    }

    // MARK: Everything else

    @Test func everythingElseIsPassedOnAsSent() throws {
        let body = #"{"prompt":{"8":{"class_type":"VAEDecode","inputs":{"samples":["3",0],"vae":["4",2]}},"#
            + #""3":{"class_type":"KSampler","inputs":{"seed":156680208700286,"cfg":8.0,"denoise":1.00,"#
            + #""text":"caf\u00e9 \"q\""}},"9":{"class_type":"SaveImage","inputs":{"images":["8",0],"#
            + #""filename_prefix":"ComfyUI"}}},"partial_execution_targets":["9"],"client_id":"c1","#
            + #""extra_data":{"extra_pnginfo":{"workflow":{"nodes":[]}}}}"#
        let submission = try rewrite(body)
        #expect(
            String(decoding: submission.body, as: UTF8.self)
                == #"{"prompt":{"8":{"class_type":"VAEDecode","inputs":{"samples":["3",0],"vae":["4",2]}},"#
                + #""3":{"class_type":"KSampler","inputs":{"seed":156680208700286,"cfg":8.0,"denoise":1.00,"#
                + #""text":"café \"q\""}},"9":{"class_type":"SaveImage","inputs":{"images":["8",0],"#
                + #""filename_prefix":"users/alice/ComfyUI"}}},"partial_execution_targets":["9"],"#
                + #""client_id":"u-alice~c1","extra_data":{"extra_pnginfo":{"workflow":{"nodes":[]}},"#
                + #""comfygate_owner":"u-alice","client_id":"u-alice~c1"}}"#)
    }
}

import ComfyGatePolicy
import Testing

private let alice = Caller(userID: "u-alice", userName: "Alice", role: .user)
private let bob = Caller(userID: "u-bob", userName: "bob", role: .user)
private let admin = Caller(userID: "u-root", userName: "root", role: .admin)

private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

/// JSON text as ComfyUI sends it (aiohttp's `json_response` uses Python's `json.dumps`): a space after every `,`
/// and `:` between tokens. The fixtures' strings hold no escaped quotes.
private func spacedLikePython(_ compact: String) -> [UInt8] {
    var inString = false
    return compact.utf8.flatMap { byte -> [UInt8] in
        if byte == UInt8(ascii: "\"") { inString.toggle() }
        let separates = !inString && (byte == UInt8(ascii: ",") || byte == UInt8(ascii: ":"))
        return separates ? [byte, UInt8(ascii: " ")] : [byte]
    }
}

private func json(_ bytes: [UInt8]) throws -> PolicyJSON { try PolicyJSON(parsing: bytes) }

private func json(_ text: String) throws -> PolicyJSON { try json(bytes(text)) }

/// A queue item as ComfyUI 0.3.64 lists it (`[number, prompt_id, prompt, extra_data, outputs_to_execute]`): the
/// model-free EmptyImage → SaveImage workflow, marked with `owner` when the gateway queued it.
private func queueItem(_ number: Int, _ promptID: String, owner: String?) -> String {
    let mark = owner.map { #","comfygate_owner":"\#($0)""# } ?? ""
    return #"""
        [\#(number),"\#(promptID)",{"1":{"inputs":{"width":64,"height":64,"batch_size":1,"color":0},\#
        "class_type":"EmptyImage"},"2":{"inputs":{"filename_prefix":"gate","images":["1",0]},\#
        "class_type":"SaveImage"}},\#
        {"client_id":"c-\#(promptID)"\#(mark),"create_time":17000000\#(number)},["2"]]
        """#
}

/// A finished prompt's history entry, as `GET /history` lists it.
private func historyEntry(_ number: Int, _ promptID: String, owner: String?) -> String {
    #"""
    {"prompt":\#(queueItem(number, promptID, owner: owner)),"outputs":{"2":{"images":[{"filename":\#
    "gate_0000\#(number)_.png","subfolder":"","type":"output"}]}},"status":{"status_str":"success","completed":true,\#
    "messages":[["execution_start",{"prompt_id":"\#(promptID)","timestamp":1}],["execution_success",\#
    {"prompt_id":"\#(promptID)","timestamp":2}]]},"meta":{"2":{"node_id":"2","display_node":"2","parent_node":null,\#
    "real_node_id":"2"}}}
    """#
}

/// A `GET /history` answer holding these prompts, oldest first.
private func historyAnswer(_ prompts: [(id: String, owner: String?)]) -> [UInt8] {
    let members = prompts.enumerated().map { #""\#($1.id)":\#(historyEntry($0, $1.id, owner: $1.owner))"# }
    return spacedLikePython("{" + members.joined(separator: ",") + "}")
}

/// Eleven prompts: Alice's `a0`…`a6` between Bob's and unmarked ones.
private let mixedHistory: [(id: String, owner: String?)] = [
    ("a0", "u-alice"), ("b0", "u-bob"), ("a1", "u-alice"), ("a2", "u-alice"), ("n0", nil), ("a3", "u-alice"),
    ("b1", "u-bob"), ("a4", "u-alice"), ("a5", "u-alice"), ("b2", "u-bob"), ("a6", "u-alice"),
]

private func badGateway(_ route: String) -> PolicyRefusal {
    PolicyRefusal(status: 502, message: "ComfyUI's answer to \(route) is not the JSON it should be")
}

private func keys(_ answer: [UInt8]) throws -> [String] {
    try #require(try json(answer).members).map(\.key)
}

/// ComfyUI's `get_history` paging as 0.3.64 runs it, step by step, over positions `0..<count`.
private func comfyUIHistoryPage(count: Int, maxItems: Int?, offset: Int) -> [Int] {
    var start = offset
    if start < 0, let maxItems { start = count - maxItems }
    var kept: [Int] = []
    for position in 0..<count where position >= start {
        kept.append(position)
        if let maxItems, kept.count >= maxItems { break }
    }
    return kept
}

@Suite struct AnswerFiltersTests {
    // MARK: GET /queue

    /// Bob's prompt runs; Alice's, Bob's and an unmarked one wait.
    private let queue = spacedLikePython(
        #"""
        {"queue_running":[\#(queueItem(4, "b-run", owner: "u-bob"))],"queue_pending":[\#
        \#(queueItem(5, "a-1", owner: "u-alice")),\#(queueItem(6, "b-2", owner: "u-bob")),\#
        \#(queueItem(7, "n-3", owner: nil)),\#(queueItem(8, "a-4", owner: "u-alice"))]}
        """#)

    @Test func queueKeepsOnlyTheCallersItemsInOrder() throws {
        let filtered = try json(AnswerFilter.queue(queue, for: alice))
        let expected = try json(
            #"""
            {"queue_running":[],"queue_pending":[\#
            \#(queueItem(5, "a-1", owner: "u-alice")),\#(queueItem(8, "a-4", owner: "u-alice"))]}
            """#)
        #expect(filtered == expected)
        let bobsView = try json(AnswerFilter.queue(queue, for: bob))
        #expect(bobsView["queue_running"] == (try json(#"[\#(queueItem(4, "b-run", owner: "u-bob"))]"#)))
        #expect(bobsView["queue_pending"]?.arrayValue?.map { $0.arrayValue?[1] } == [.string("b-2")])
    }

    @Test func queueItemsWithoutAnOwnerMarkAreNobodys() throws {
        let unmarked = bytes(#"{"queue_running":[\#(queueItem(1, "n-1", owner: nil))],"queue_pending":[]}"#)
        let unmarkedView = try json(AnswerFilter.queue(unmarked, for: alice))
        #expect(unmarkedView["queue_running"] == .array([]))
        let markedInThePrompt = bytes(
            #"{"queue_running":[],"queue_pending":[[1,"x",{"comfygate_owner":"u-alice"},{},["2"]]]}"#)
        #expect(try json(AnswerFilter.queue(markedInThePrompt, for: alice))["queue_pending"] == .array([]))
    }

    @Test func adminsGetTheQueueAsSent() throws {
        #expect(try AnswerFilter.queue(queue, for: admin) == queue)
    }

    @Test(arguments: ["Internal Server Error", #"{"queue_running":[]}"#, #"[]"#])
    func aQueueAnswerOutOfShapeIsABadGateway(_ answer: String) {
        #expect(throws: badGateway("/queue")) { try AnswerFilter.queue(bytes(answer), for: alice) }
    }

    // MARK: GET /history

    @Test func historyKeepsOnlyTheCallersEntriesInOrderAndUnchanged() throws {
        let answer = historyAnswer(mixedHistory)
        let filtered = try json(AnswerFilter.history(answer, page: .all, for: alice).answer)
        let original = try #require(try json(answer).members)
        #expect(filtered == .object(original.filter { $0.key.hasPrefix("a") }))
        #expect(try keys(AnswerFilter.history(answer, page: .all, for: bob).answer) == ["b0", "b1", "b2"])
    }

    /// Entries are cut by their owner mark alone and go on byte for byte: strings holding quotes, brackets and
    /// escapes, keys with escapes, a second mark inside the workflow, line breaks and indentation all pass untouched.
    @Test func historyEntriesGoOnAsSentWhateverTheirText() throws {
        let hers = #"""
            {
              "prompt": [0, "a\"}]0", {"1": {"inputs": {"text": "}]\\\" [{ \u00e9\ud83d\ude00 ,:"},
                "comfygate_owner": "u-bob"}}, {"comfygate_owner": "u-bob", "comfygate_owner": "u-alice"}, []],
              "outputs": {}, "status": null
            }
            """#
        let his = #"{"prompt": [1, "b", {}, {"comfygate_owner": "u-alice", "comfygate_owner": "u-bob"}, []]}"#
        let answer = bytes("{\n  \"a\\\"}]0\": \(hers),\n  \"b\": \(his),\t\"\\u0062\": \(his)\n}\n")
        #expect(try keys(AnswerFilter.history(answer, page: .all, for: bob).answer) == ["b", "b"])
        let filtered = try AnswerFilter.history(answer, page: .all, for: alice).answer
        #expect(filtered == bytes(#"{"a\"}]0":"# + hers + "}"))
        #expect(try AnswerFilter.historyItem(bytes(#"{"b": \#(his)}"#), for: alice).answer == bytes("{}"))
    }

    @Test(arguments: [#"{"a": {"prompt": [0, "a", {}, {}, []]}"#, #"{"a": 1} x"#, #"{"a": "\x"}"#, "{\"a\": \"\u{1}\"}", ""])
    func aHistoryAnswerThatIsNotJSONIsABadGateway(_ answer: String) {
        #expect(throws: badGateway("/history")) { try AnswerFilter.history(bytes(answer), page: .all, for: alice).answer }
        #expect(throws: badGateway("/history")) { try AnswerFilter.historyItem(bytes(answer), for: alice).answer }
    }

    static let maxItemsValues: [String?] = [nil, "0", "1", "3", "7", "10", "-2"]
    static let offsetValues: [String?] = [nil, "-1", "-5", "0", "2", "6", "7", "20"]

    @Test(arguments: maxItemsValues, offsetValues)
    func historyIsPagedOverTheCallersEntriesAsComfyUIPages(maxItems: String?, offset: String?) throws {
        let page = try HistoryPage(queryMaxItems: maxItems, queryOffset: offset)
        let own = mixedHistory.filter { $0.owner == "u-alice" }.map(\.id)
        let positions = comfyUIHistoryPage(
            count: own.count, maxItems: maxItems.flatMap { Int($0) }, offset: offset.flatMap { Int($0) } ?? -1)
        let filtered = try AnswerFilter.history(historyAnswer(mixedHistory), page: page, for: alice).answer
        #expect(try keys(filtered) == positions.map { own[$0] })
    }

    @Test(arguments: [
        (HistoryPage(maxItems: 2, offset: -1), ["a5", "a6"]),
        (HistoryPage(maxItems: 2, offset: 1), ["a1", "a2"]),
        (HistoryPage(maxItems: nil, offset: 5), ["a5", "a6"]),
        (HistoryPage(maxItems: nil, offset: -3), ["a0", "a1", "a2", "a3", "a4", "a5", "a6"]),
        (HistoryPage(maxItems: 0, offset: 3), ["a3"]),
        (HistoryPage(maxItems: 0, offset: -1), []),
        (HistoryPage(maxItems: 20, offset: -1), ["a0", "a1", "a2", "a3", "a4", "a5", "a6"]),
        (HistoryPage(maxItems: 3, offset: 7), []),
    ])
    func historyPagesCountOnlyTheCallersEntries(page: HistoryPage, expected: [String]) throws {
        #expect(try keys(AnswerFilter.history(historyAnswer(mixedHistory), page: page, for: alice).answer) == expected)
    }

    @Test func adminsPageOverEveryEntry() throws {
        let answer = historyAnswer(mixedHistory)
        let last3 = try AnswerFilter.history(answer, page: HistoryPage(maxItems: 3, offset: -1), for: admin).answer
        #expect(try keys(last3) == ["a5", "b2", "a6"])
        let fourthAndFifth = try AnswerFilter.history(answer, page: HistoryPage(maxItems: 2, offset: 3), for: admin).answer
        #expect(try keys(fourthAndFifth) == ["a2", "n0"])
        #expect(try json(AnswerFilter.history(answer, page: .all, for: admin).answer) == (try json(answer)))
    }

    @Test(arguments: [
        (" 3 ", 3), ("+3", 3), ("-2", -2), ("007", 7), ("1_0", 10), ("\u{0663}", 3), ("\t5\u{1F}", 5), ("-0", 0),
        ("99999999999999999999999999", 1 << 58),
    ])
    func pagingValuesAreReadAsPythonIntReadsThem(text: String, value: Int) throws {
        #expect(try HistoryPage(queryMaxItems: text, queryOffset: nil).maxItems == value)
        #expect(try HistoryPage(queryMaxItems: nil, queryOffset: text).offset == value)
    }

    @Test(arguments: ["", " ", "1.5", "ten", "1__0", "_1", "1_", "+", "-_1", "0x10", "3 4", "1e3"])
    func pagingValuesPythonIntRefusesAreBadRequests(text: String) {
        #expect(throws: PolicyRefusal.badRequest("max_items must be an integer")) {
            try HistoryPage(queryMaxItems: text, queryOffset: "0")
        }
        #expect(throws: PolicyRefusal.badRequest("offset must be an integer")) {
            try HistoryPage(queryMaxItems: "1", queryOffset: text)
        }
    }

    @Test func absentPagingValuesMeanEveryEntry() throws {
        #expect(try HistoryPage(queryMaxItems: nil, queryOffset: nil) == .all)
        #expect(HistoryPage.all.positions(among: 4) == 0..<4)
    }

    @Test func aHistoryAnswerThatIsNotAnObjectIsABadGateway() {
        #expect(throws: badGateway("/history")) { try AnswerFilter.history(bytes("[]"), page: .all, for: admin).answer }
    }

    // MARK: GET /history/{prompt_id}

    @Test func aHistoryItemIsShownOnlyToItsOwner() throws {
        let own = historyAnswer([("a1", "u-alice")])
        #expect(try json(AnswerFilter.historyItem(own, for: alice).answer) == (try json(own)))
        #expect(try AnswerFilter.historyItem(own, for: bob).answer == bytes("{}"))
        #expect(try AnswerFilter.historyItem(historyAnswer([("n1", nil)]), for: alice).answer == bytes("{}"))
        #expect(try AnswerFilter.historyItem(own, for: admin).answer == own)
        #expect(try AnswerFilter.historyItem(bytes("{}"), for: alice).answer == bytes("{}"))
    }

    // MARK: GET /object_info

    /// An `/object_info` answer with real node shapes: V1 upload combo, model combo, V3 upload combo, V3 remote
    /// upload combo without a list, and a V1 node with two combos.
    private func objectInfo(images: [String], models: [String], videos: [String], masks: [String]) -> [UInt8] {
        func list(_ names: [String]) -> String { "[" + names.map { #""\#($0)""# }.joined(separator: ",") + "]" }
        return spacedLikePython(
            #"""
            {"LoadImage":{"input":{"required":{"image":[\#(list(images)),{"image_upload":true}]}},\#
            "input_order":{"required":["image"]},"output":["IMAGE","MASK"],"output_is_list":[false,false],\#
            "output_name":["IMAGE","MASK"],"name":"LoadImage","display_name":"Load Image","description":"",\#
            "python_module":"nodes","category":"image","output_node":false},\#
            "CheckpointLoaderSimple":{"input":{"required":{"ckpt_name":[\#(list(models)),\#
            {"tooltip":"The name of the checkpoint (model) to load."}]}},"output":["MODEL","CLIP","VAE"],\#
            "name":"CheckpointLoaderSimple","category":"loaders","output_node":false},\#
            "LoadVideo":{"input":{"required":{"file":["COMBO",{"multiselect":false,"options":\#(list(videos)),\#
            "video_upload":true}]}},"output":["VIDEO"],"name":"LoadVideo","python_module":"comfy_extras.nodes_video",\#
            "category":"image/video","output_node":false},\#
            "LoadImageOutput":{"input":{"required":{"image":["COMBO",{"image_upload":true,"image_folder":"output",\#
            "remote":{"route":"/internal/files/output","refresh_button":true,"control_after_refresh":"first"}}]}},\#
            "output":["IMAGE","MASK"],"name":"LoadImageOutput","category":"image","output_node":false},\#
            "LoadImageMask":{"input":{"required":{"image":[\#(list(masks)),{"image_upload":true}],\#
            "channel":[["alpha","red","green","blue"]]}},"output":["MASK"],"name":"LoadImageMask","category":"mask"}}
            """#)
    }

    private var sharedObjectInfo: [UInt8] {
        objectInfo(
            images: [
                "example.png", "users/alice/cat.png", "users/bob/secret.png", "users/alice/trip/dog.webp",
                "users/alicex/y.png", "users/alice",
            ],
            models: ["sd15.safetensors", "users/alice/mine.safetensors"],
            videos: ["clip.mp4", "users/alice/v.mp4", "users/bob/w.mp4"],
            masks: ["users/bob/m.png", "users/alice/m.png"])
    }

    private let uploadInputs: [String: Set<String>] = [
        "LoadImage": ["image"], "LoadVideo": ["file"], "LoadImageOutput": ["image"], "LoadImageMask": ["image"],
    ]

    @Test func uploadListsShowOnlyTheCallersFiles() throws {
        let filtered = try AnswerFilter.objectInfo(sharedObjectInfo, for: alice)
        let expected = objectInfo(
            images: ["users/alice/cat.png", "users/alice/trip/dog.webp"],
            models: ["sd15.safetensors", "users/alice/mine.safetensors"],
            videos: ["users/alice/v.mp4"], masks: ["users/alice/m.png"])
        #expect(try json(filtered.answer) == (try json(expected)))
        #expect(filtered.uploadInputs == uploadInputs)
    }

    @Test func adminsGetObjectInfoAsSentButTheUploadInputsAreFound() throws {
        let filtered = try AnswerFilter.objectInfo(sharedObjectInfo, for: admin)
        #expect(filtered.answer == sharedObjectInfo)
        #expect(filtered.uploadInputs == uploadInputs)
    }

    @Test(arguments: ["image_upload", "video_upload", "audio_upload", "file_upload", "upload"])
    func everyUploadFlagMakesAnUploadInput(flag: String) throws {
        let answer = bytes(
            #"""
            {"LoadAnything":{"input":{"required":{"seed":["INT",{"default":0}]},"optional":{"source":\#
            [["users/alice/a.wav","users/bob/b.wav"],{"\#(flag)":true}]}}}}
            """#)
        let filtered = try AnswerFilter.objectInfo(answer, for: alice)
        #expect(filtered.uploadInputs == ["LoadAnything": ["source"]])
        let source = try json(filtered.answer)["LoadAnything"]?["input"]?["optional"]?["source"]
        #expect(source == (try json(#"[["users/alice/a.wav"],{"\#(flag)":true}]"#)))
    }

    @Test func aFalseUploadFlagMakesNoUploadInput() throws {
        let answer = bytes(#"{"Pick":{"input":{"required":{"name":[["users/bob/b.wav"],{"image_upload":false}]}}}}"#)
        let filtered = try AnswerFilter.objectInfo(answer, for: alice)
        #expect(filtered.uploadInputs.isEmpty)
        #expect(try json(filtered.answer) == (try json(answer)))
    }

    @Test(arguments: ["LoadImage", "LoadImageMask"])
    func theImageInputOfTheImageLoadersIsAnUploadInputWithoutAFlag(classType: String) throws {
        let answer = bytes(
            #"{"\#(classType)":{"input":{"required":{"image":[["users/bob/x.png","users/alice/y.png"]]}}}}"#)
        let filtered = try AnswerFilter.objectInfo(answer, for: alice)
        #expect(filtered.uploadInputs == [classType: ["image"]])
        let image = try json(filtered.answer)[classType]?["input"]?["required"]?["image"]
        #expect(image == .array([.array([.string("users/alice/y.png")])]))
    }

    @Test func aDefaultNamingAnotherUsersFileIsDropped() throws {
        let own = #"["COMBO",{"options":["users/alice/v.mp4"],"default":"users/alice/v.mp4","video_upload":true}]"#
        let answer = bytes(
            #"""
            {"LoadVideo":{"input":{"required":{"file":["COMBO",{"options":["users/bob/w.mp4"],\#
            "default":"users/bob/w.mp4","video_upload":true}],"own":\#(own)}}}}
            """#)
        let filtered = try json(AnswerFilter.objectInfo(answer, for: alice).answer)
        let inputs = try #require(filtered["LoadVideo"]?["input"]?["required"])
        #expect(inputs["file"] == (try json(#"["COMBO",{"options":[],"video_upload":true}]"#)))
        #expect(inputs["own"] == (try json(own)))
    }

    @Test func anObjectInfoAnswerThatIsNotJSONIsABadGateway() {
        #expect(throws: badGateway("/object_info")) { try AnswerFilter.objectInfo(bytes("<html>"), for: admin) }
    }

    // MARK: Output files

    @Test func aCutHistoryListsEveryOutputFileOfTheEntriesKeptInOrder() throws {
        let answer = bytes(
            #"""
            {"a1": {"prompt":\#(queueItem(1, "a1", owner: "u-alice")),"outputs":{\#
            "9":{"images":[{"filename":"a_00001_.png","subfolder":"users/alice","type":"output"},\#
            {"filename":"ComfyUI_temp_qwert_00001_.png","subfolder":"","type":"temp"}]},\#
            "12":{"gifs":[{"filename":"vid_00001.mp4","subfolder":"users/alice","type":"output",\#
            "format":"video/h264-mp4","frame_rate":8.0}]},\#
            "15":{"audio":[{"filename":"sound_00001_.flac","subfolder":"users/alice/audio","type":"output"}]},\#
            "20":{"text":["a caption"]},\#
            "21":{"images":[{"filename":"anim_00001_.webp","subfolder":"users/alice","type":"output"}],\#
            "animated":[true]},\#
            "22":{"images":[{"filename":"bare.png"}]}},"status":{"status_str":"success","completed":true,"messages":[]}},
             "a2": {"prompt": \#(queueItem(2, "a2", owner: "u-alice")), "outputs": {"9": {"images": [\#
            {"filename": "a\u00e9_00002_.png", "subfolder": "users/alice", "type": "output"}]}}}}
            """#)
        #expect(
            try AnswerFilter.history(answer, page: .all, for: alice).outputFiles == [
                .init(type: "output", subfolder: "users/alice", name: "a_00001_.png"),
                .init(type: "temp", subfolder: "", name: "ComfyUI_temp_qwert_00001_.png"),
                .init(type: "output", subfolder: "users/alice", name: "vid_00001.mp4"),
                .init(type: "output", subfolder: "users/alice/audio", name: "sound_00001_.flac"),
                .init(type: "output", subfolder: "users/alice", name: "anim_00001_.webp"),
                .init(type: "output", subfolder: "", name: "bare.png"),
                .init(type: "output", subfolder: "users/alice", name: "a\u{E9}_00002_.png"),
            ])
        #expect(try AnswerFilter.historyItem(answer, for: alice).outputFiles.count == 7)
        #expect(
            try AnswerFilter.history(answer, page: HistoryPage(maxItems: 1, offset: -1), for: alice).outputFiles
                == [.init(type: "output", subfolder: "users/alice", name: "a\u{E9}_00002_.png")], "only the page's entries")
        #expect(try AnswerFilter.history(answer, page: .all, for: bob).outputFiles.isEmpty, "none of the entries is bob's")
        #expect(try AnswerFilter.history(answer, page: .all, for: admin).outputFiles.isEmpty, "an admin's answer holds everyone's")
        #expect(try AnswerFilter.historyItem(answer, for: admin).outputFiles.isEmpty)
        let notFiles = bytes(#"{"a1": {"prompt": \#(queueItem(1, "a1", owner: "u-alice")), "outputs": [1, 2]}}"#)
        #expect(try AnswerFilter.history(notFiles, page: .all, for: alice).outputFiles.isEmpty)
    }

    @Test func anExecutedMessageGivesItsPromptAndFiles() {
        let message = bytes(
            #"""
            {"type":"executed","data":{"node":"2","display_node":"2","output":{"images":[{"filename":\#
            "gate_00001_.png","subfolder":"users/alice","type":"output"}]},"prompt_id":"p-1"}}
            """#)
        let file = OwnershipIndex.FileReference(type: "output", subfolder: "users/alice", name: "gate_00001_.png")
        #expect(ExecutedOutput(message: message) == ExecutedOutput(promptID: "p-1", files: [file]))
    }

    @Test(arguments: [
        #"{"type":"executing","data":{"node":"2","display_node":"2","prompt_id":"p-1"}}"#,
        #"{"type":"executed","data":{"node":"2","output":{"images":[{"filename":"x.png"}]}}}"#,
        "not json",
    ])
    func otherMessagesGiveNoExecutedOutput(_ message: String) {
        #expect(ExecutedOutput(message: bytes(message)) == nil)
    }

    // MARK: GET /api/jobs [newer]

    /// A job as `GET /api/jobs` lists it (no `extra_data`: ownership comes from the prompt id).
    private func job(_ id: String, _ status: String, _ time: Int) -> String {
        #"""
        {"id":"\#(id)","status":"\#(status)","priority":\#(time),"create_time":\#(time),"outputs_count":0,\#
        "previewable_outputs_count":0}
        """#
    }

    private func jobsAnswer(_ ids: [String], offset: Int, limit: Int?, total: Int, hasMore: Bool) -> [UInt8] {
        let jobs = ids.map { job($0, $0.hasSuffix("p") ? "pending" : "completed", Int($0.dropFirst().prefix(1)) ?? 0) }
        let limit = limit.map(String.init) ?? "null"
        return spacedLikePython(
            #"""
            {"jobs":[\#(jobs.joined(separator: ","))],"pagination":\#
            {"offset":\#(offset),"limit":\#(limit),"total":\#(total),"has_more":\#(hasMore)}}
            """#)
    }

    /// Newest first, as ComfyUI sorts by default: Alice owns a5p, a3 and a1.
    private var allJobs: [UInt8] {
        jobsAnswer(["b6p", "a5p", "b4", "a3", "n2", "a1"], offset: 0, limit: nil, total: 6, hasMore: false)
    }

    private func ownedByAlice(_ id: String) -> Bool { id.hasPrefix("a") }

    @Test(arguments: [
        (nil, nil, ["a5p", "a3", "a1"], 0, nil, true),
        ("2", nil, ["a5p", "a3"], 0, 2, false),
        ("2", "1", ["a3", "a1"], 1, 2, true),
        ("1", "-3", ["a5p"], 0, 1, false),
        (nil, "5", [], 5, nil, true),
    ] as [(String?, String?, [String], Int, Int?, Bool)])
    func jobsListOnlyTheCallersJobsAndPageThem(
        limit: String?, offset: String?, ids: [String], shownOffset: Int, shownLimit: Int?, isLastPage: Bool
    ) throws {
        let page = try JobsPage(queryLimit: limit, queryOffset: offset)
        let filtered = try AnswerFilter.jobs(allJobs, page: page, for: alice, owns: ownedByAlice)
        let expected = jobsAnswer(ids, offset: shownOffset, limit: shownLimit, total: 3, hasMore: !isLastPage)
        #expect(try json(filtered) == (try json(expected)))
    }

    @Test func adminsPageOverEveryJob() throws {
        let filtered = try AnswerFilter.jobs(allJobs, page: JobsPage(limit: 2, offset: 3), for: admin) { _ in false }
        let expected = jobsAnswer(["a3", "n2"], offset: 3, limit: 2, total: 6, hasMore: true)
        #expect(try json(filtered) == (try json(expected)))
    }

    @Test(arguments: [
        ("ten", nil, "limit must be an integer"), ("0", nil, "limit must be a positive integer"),
        ("-3", nil, "limit must be a positive integer"), ("", nil, "limit must be an integer"),
        (nil, "x", "offset must be an integer"), (nil, "1.0", "offset must be an integer"),
    ] as [(String?, String?, String)])
    func jobPagingValuesAreCheckedAsComfyUIChecksThem(limit: String?, offset: String?, message: String) {
        #expect(throws: PolicyRefusal.badRequest(message)) { try JobsPage(queryLimit: limit, queryOffset: offset) }
    }

    @Test func aJobsAnswerOutOfShapeIsABadGateway() {
        #expect(throws: badGateway("/api/jobs")) {
            try AnswerFilter.jobs(bytes(#"{"jobs":[]}"#), page: .all, for: alice, owns: ownedByAlice)
        }
    }

    /// A job as `GET /api/jobs/{id}` answers it: with its workflow and `extra_data`.
    private func jobDetail(owner: String?) -> [UInt8] {
        let mark = owner.map { #","comfygate_owner":"\#($0)""# } ?? ""
        return spacedLikePython(
            #"""
            {"id":"a1","status":"completed","priority":1,"create_time":1001,"outputs_count":1,"outputs":{"2":\#
            {"images":[{"filename":"gate_00001_.png","subfolder":"users/alice","type":"output"}]}},\#
            "execution_status":{"status_str":"success","completed":true,"messages":[]},"workflow":{"prompt":\#
            {"1":{"class_type":"EmptyImage","inputs":{}}},"extra_data":{"client_id":"u-alice~c1"\#(mark),\#
            "create_time":1001}}}
            """#)
    }

    @Test func aJobIsShownOnlyToItsOwner() throws {
        #expect(try AnswerFilter.job(jobDetail(owner: "u-alice"), for: alice) == jobDetail(owner: "u-alice"))
        let unknownJob = PolicyRefusal.notFound("Job not found")
        #expect(throws: unknownJob) { try AnswerFilter.job(jobDetail(owner: "u-alice"), for: bob) }
        #expect(throws: unknownJob) { try AnswerFilter.job(jobDetail(owner: nil), for: alice) }
        #expect(try AnswerFilter.job(jobDetail(owner: nil), for: admin) == jobDetail(owner: nil))
    }
}

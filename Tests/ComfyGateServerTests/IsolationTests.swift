import ComfyGateCore
import ComfyGatePolicy
import ComfyGateTestSupport
import Foundation
import NIOCore
import NIOHTTP1
import NIOWebSocket
import Testing
import WSClient

/// Per-user isolation through the real gateway in front of the ComfyUI stand-in, with two users (alice, bob) and an
/// admin: one test per leak of `comfyui-api.md` §G, each failing if the rule that closes it were removed; each user's
/// own work flows as on a ComfyUI of their own, and admins see everything.
@Suite struct IsolationTests {
    static func options(multiUser: Bool = false) -> ComfyUIStandIn.Options {
        var options = ComfyUIStandIn.Options()
        options.multiUser = multiUser
        return options
    }

    /// alice, bob and an admin, once the gateway's start-up question to ComfyUI is out of the way.
    static func members(_ gate: GatewayHarness) async throws -> (alice: Member, bob: Member, admin: Member) {
        try await gate.settleStartupProbe()
        return (try await gate.member("alice"), try await gate.member("bob"), try await gate.member("root", role: .admin))
    }

    /// The prompt ids of a `/queue` answer.
    static func queueIDs(_ answer: TestResponse) throws -> (running: [String], pending: [String]) {
        let queue = try StandInJSON.parse(answer.text)
        func ids(_ list: String) throws -> [String] {
            guard let items = queue[list]?.arrayValue else { throw IsolationTestError.unexpected("no \(list) in \(answer.text)") }
            return items.compactMap { $0.arrayValue?.dropFirst().first?.stringValue }
        }
        return (try ids("queue_running"), try ids("queue_pending"))
    }

    /// The prompt ids of a `/history` answer, in order.
    static func historyIDs(_ answer: TestResponse) throws -> [String] {
        guard answer.status == 200, let entries = try StandInJSON.parse(answer.text).objectValue else {
            throw IsolationTestError.unexpected("not a history: \(answer.status) \(answer.text)")
        }
        return entries.map(\.0)
    }

    /// The `error` of a JSON error answer.
    static func error(_ answer: TestResponse) -> String? {
        (try? StandInJSON.parse(answer.text))?["error"]?.stringValue
    }

    /// `/view` of an image listed in an `executed` message or a history output.
    static func viewPath(_ image: StandInJSON) -> String {
        func encoded(_ key: String) -> String {
            (image[key]?.stringValue ?? "").addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._/"))) ?? ""
        }
        return "/view?filename=\(encoded("filename"))&subfolder=\(encoded("subfolder"))&type=\(encoded("type"))"
    }

    /// The images an `executed` message of a socket, or a history entry, lists.
    static func images(executedOn socket: WebSocketListener, promptID: String) -> [StandInJSON] {
        socket.messages("executed", promptID: promptID).flatMap { $0["data"]?["output"]?["images"]?.arrayValue ?? [] }
    }

    // MARK: G.1 reading others' queue and history

    @Test func g1QueueShowsOnlyTheCallersOwnItems() async throws {
        try await withGateway { gate in
            gate.standIn.holdExecution()
            let (alice, bob, admin) = try await Self.members(gate)
            let running = try await alice.queueAccepted(Workflow.save(prefix: "secret-workflow"))
            try await gate.waitUntilRunning(running)
            let alicePending = try await alice.queueAccepted(Workflow.save(color: 2))
            let bobPending = try await bob.queueAccepted(Workflow.save(color: 3))

            let bobs = try await bob.get("/queue")
            let bobQueue = try Self.queueIDs(bobs)
            #expect(bobQueue.running.isEmpty, "alice's running prompt is not bob's to see")
            #expect(bobQueue.pending == [bobPending])
            #expect(!bobs.text.contains(alice.id) && !bobs.text.contains("secret-workflow"), "nothing of alice's work")
            let aliceQueue = try Self.queueIDs(try await alice.get("/api/queue"))
            #expect(aliceQueue.running == [running] && aliceQueue.pending == [alicePending], "\(aliceQueue) \(alicePending)")
            let adminQueue = try Self.queueIDs(try await admin.get("/queue"))
            #expect(adminQueue.running == [running] && adminQueue.pending == [alicePending, bobPending], "admins see everyone's")

            _ = try await admin.post("/queue", json: #"{"clear": true}"#)
            _ = try await admin.post("/interrupt", json: "")
        }
    }

    @Test func g1HistoryShowsOnlyTheCallersOwnItemsPagedOverThemAlone() async throws {
        try await withGateway { gate in
            let (alice, bob, admin) = try await Self.members(gate)
            var aliceIDs: [String] = []
            var bobIDs: [String] = []
            for round in 0..<3 {
                aliceIDs.append(try await alice.queueAccepted(Workflow.save(prefix: "alice-secret", color: 10 + round)))
                _ = try await gate.finishedEntry(aliceIDs[round])
                bobIDs.append(try await bob.queueAccepted(Workflow.save(color: 20 + round)))
                _ = try await gate.finishedEntry(bobIDs[round])
            }
            gate.standIn.clearRecordings()

            let bobs = try await bob.get("/history")
            #expect(try Self.historyIDs(bobs) == bobIDs)
            #expect(!bobs.text.contains(alice.id) && !bobs.text.contains("alice-secret"))
            // Paged over bob's own three items, as ComfyUI pages: the last N without an offset.
            #expect(try Self.historyIDs(try await bob.get("/history?max_items=2")) == Array(bobIDs[1...]))
            #expect(try Self.historyIDs(try await bob.get("/history?max_items=2&offset=0")) == Array(bobIDs[..<2]))
            #expect(try Self.historyIDs(try await bob.get("/api/history?offset=1")) == Array(bobIDs[1...]))
            #expect(try Self.historyIDs(try await bob.get("/history?max_items=1&offset=2")) == [bobIDs[2]])
            #expect(try Self.historyIDs(try await bob.get("/history?offset=3")) == [])

            // Another user's prompt is answered like an unknown one, without asking ComfyUI.
            for path in ["/history/\(aliceIDs[0])", "/api/history/\(aliceIDs[1])"] {
                let answer = try await bob.get(path)
                #expect(answer.status == 200 && answer.text == "{}", "\(path): \(answer.text)")
            }
            #expect(!gate.comfyUIRequests.contains { $0.path.hasPrefix("/history/") || $0.path.hasPrefix("/api/history/") })
            #expect(try Self.historyIDs(try await alice.get("/history/\(aliceIDs[0])")) == [aliceIDs[0]])
            #expect(try Self.historyIDs(try await alice.get("/history")) == aliceIDs)
            #expect(try Self.historyIDs(try await admin.get("/history")) == zip(aliceIDs, bobIDs).flatMap { [$0, $1] })
        }
    }

    // MARK: G.2 cancelling or deleting others' work

    @Test func g2InterruptStopsOnlyTheCallersOwnRunningPrompt() async throws {
        try await withGateway { gate in
            gate.standIn.holdExecution()
            let (alice, bob, _) = try await Self.members(gate)
            let hers = try await alice.queueAccepted(Workflow.save(saves: 3))
            try await gate.waitUntilRunning(hers)
            gate.standIn.clearRecordings()
            #expect(try await bob.post("/interrupt", json: "").status == 200, "a bare interrupt: bob runs nothing")
            #expect(try await bob.post("/interrupt", json: #"{"prompt_id": "\#(hers)"}"#).status == 200)
            #expect(try await bob.post("/api/interrupt", json: "{}").status == 200)
            #expect(gate.recorded("POST", "/interrupt").isEmpty && gate.recorded("POST", "/api/interrupt").isEmpty,
                "no interrupt of bob's reached ComfyUI")
            gate.standIn.releaseExecution()
            #expect(try await gate.finishedEntry(hers)["status"]?["status_str"] == "success", "alice's prompt ran to its end")

            // Her own bare interrupt stops her running prompt.
            gate.standIn.holdExecution()
            let second = try await alice.queueAccepted(Workflow.save(color: 2, saves: 3))
            try await gate.waitUntilRunning(second)
            #expect(try await alice.post("/interrupt", json: "").status == 200)
            #expect(try await gate.finishedEntry(second)["status"]?["status_str"] == "error")
        }
    }

    @Test func g2QueueAndHistoryDeletionActOnlyOnTheCallersOwnItems() async throws {
        try await withGateway { gate in
            gate.standIn.holdExecution()
            let (alice, bob, _) = try await Self.members(gate)
            let blocker = try await alice.queueAccepted(Workflow.save())
            try await gate.waitUntilRunning(blocker)
            let alicePending = try await alice.queueAccepted(Workflow.save(color: 2))
            let bobPending = try await bob.queueAccepted(Workflow.save(color: 3))
            #expect(try await bob.post("/queue", json: #"{"delete": ["\#(alicePending)", "\#(blocker)"]}"#).status == 200)
            #expect(try await bob.post("/api/queue", json: #"{"clear": true}"#).status == 200)
            let queue = try await gate.comfyQueue()
            #expect(queue.running + queue.pending == [blocker, alicePending], "bob's clear took his own pending prompt \(bobPending) only")
            // alice deletes her own pending prompt and stops her running one: it goes to history.
            #expect(try await alice.post("/queue", json: #"{"delete": ["\#(alicePending)"]}"#).status == 200)
            #expect(try await alice.post("/interrupt", json: "").status == 200)
            _ = try await gate.finishedEntry(blocker)
            #expect(try await gate.comfyQueue().pending.isEmpty)

            #expect(try await bob.post("/history", json: #"{"delete": ["\#(blocker)"]}"#).status == 200)
            #expect(try await bob.post("/api/history", json: #"{"clear": true}"#).status == 200)
            #expect(try await gate.comfyHistoryIDs() == [blocker], "alice's history item survives bob's delete and clear")
            #expect(try await alice.post("/history", json: #"{"delete": ["\#(blocker)"]}"#).status == 200)
            #expect(try await gate.comfyHistoryIDs() == [])
        }
    }

    // MARK: G.3 jumping the queue

    @Test func g3NumberAndFrontOfNonAdminsAreDropped() async throws {
        // Room at ComfyUI for every prompt, so its own priorities are what is read here.
        try await withGateway(configure: { $0.jobs.inFlight = 10 }) { gate in
            gate.standIn.holdExecution()
            let (alice, bob, admin) = try await Self.members(gate)
            let blocker = try await alice.queueAccepted(Workflow.save())
            try await gate.waitUntilRunning(blocker)
            let hers = try await alice.queueAccepted(Workflow.save(color: 2))
            let front = try await bob.queueAccepted(Workflow.save(color: 3, extra: #""front": true, "#))
            let numbered = try await bob.queueAccepted(Workflow.save(color: 4, extra: #""number": -5, "#))
            let adminFront = try await admin.queueAccepted(Workflow.save(color: 5, extra: #""front": true, "#))

            // ComfyUI's own queue: numbers are the priorities it sorts on (a min-heap).
            let queue = try StandInJSON.parse(try await TestHTTP.send(.GET, "\(gate.standIn.baseURL)/queue").text)
            var numbers: [String: Double] = [:]
            for item in (queue["queue_running"]?.arrayValue ?? []) + (queue["queue_pending"]?.arrayValue ?? []) {
                guard let fields = item.arrayValue, fields.count > 1, let id = fields[1].stringValue else { continue }
                switch fields[0] {
                case .int(let number): numbers[id] = Double(number)
                case .double(let number): numbers[id] = number
                default: break
                }
            }
            let herNumber = try #require(numbers[hers])
            #expect(try #require(numbers[front]) > herNumber, "bob's front: true did not put him before alice")
            #expect(try #require(numbers[numbered]) > herNumber, "bob's number: -5 did not put him before alice")
            #expect(try #require(numbers[adminFront]) < herNumber, "an admin's front: true still works")
            #expect(try await gate.comfyQueue().pending == [adminFront, hers, front, numbered])

            _ = try await admin.post("/queue", json: #"{"clear": true}"#)
            _ = try await admin.post("/interrupt", json: "")
        }
    }

    // MARK: G.4 reusing a prompt id

    @Test func g4APromptIDThatExistsIsRefusedWith409() async throws {
        try await withGateway { gate in
            let (alice, bob, admin) = try await Self.members(gate)
            let chosen = "6f1c1c1e-0000-4000-8000-00000000a11c"
            let body = Workflow.save(extra: #""prompt_id": "\#(chosen)", "#)
            #expect(try await alice.queueAccepted(body) == chosen)
            _ = try await gate.finishedEntry(chosen)
            gate.standIn.clearRecordings()
            for member in [bob, alice, admin] {
                let again = try await member.queue(Workflow.save(color: 9, extra: #""prompt_id": "\#(chosen)", "#))
                #expect(again.status == 409, "\(member.name): \(again.text)")
                #expect(Self.error(again) == "prompt_id already exists")
            }
            #expect(gate.recorded("POST", "/prompt").isEmpty, "no second prompt with that id reached ComfyUI")
            let entry = try await gate.finishedEntry(chosen)
            #expect(entry["prompt"]?.arrayValue?[3]["comfygate_owner"]?.stringValue == alice.id, "still alice's")
        }
    }

    // MARK: G.5 taking over others' live events

    @Test func g5AnotherUsersClientIDNeverTakesOverTheirEvents() async throws {
        try await withGateway { gate in
            let (alice, bob, _) = try await Self.members(gate)
            let aliceSocket = try await alice.listen(clientID: "a1")
            let aliceSID = try #require(aliceSocket.sid)
            #expect(aliceSID == alice.id + "~a1")
            // bob takes alice's raw id, then the id ComfyUI reported to her.
            let bobRaw = try await bob.listen(clientID: "a1")
            let bobNamespaced = try await bob.listen(clientID: aliceSID, path: "/api/ws")
            #expect(bobRaw.sid == bob.id + "~a1")
            #expect(bobNamespaced.sid == bob.id + "~" + aliceSID)

            // alice's prompts, with her reported sid and with her raw id, still report to her socket.
            let first = try await alice.queueAccepted(Workflow.save(clientID: aliceSID))
            let second = try await alice.queueAccepted(Workflow.save(color: 2, clientID: "a1"))
            #expect(try await eventually { aliceSocket.sawFinish(of: first) && aliceSocket.sawFinish(of: second) })
            for promptID in [first, second] {
                #expect(!aliceSocket.messages("executing", promptID: promptID).isEmpty)
                #expect(!Self.images(executedOn: aliceSocket, promptID: promptID).isEmpty)
            }
            try await broadcastMarker("g5", in: gate, to: [bobRaw, bobNamespaced])
            for socket in [bobRaw, bobNamespaced] {
                #expect(socket.messages(aboutPrompt: first).isEmpty && socket.messages(aboutPrompt: second).isEmpty)
            }
            #expect(aliceSocket.isOpen)
            for socket in [aliceSocket, bobRaw, bobNamespaced] { await socket.stop() }
        }
    }

    // MARK: G.6 broadcast progress, previews and interruptions

    @Test func g6APromptWithoutClientIDNeverBroadcastsItsProgress() async throws {
        try await withGateway { gate in
            gate.standIn.holdExecution()
            let (alice, bob, _) = try await Self.members(gate)
            let bobSocket = try await bob.listen(clientID: "b1")
            let hers = try await alice.queueAccepted(Workflow.save(saves: 2))
            try await gate.waitUntilRunning(hers)
            // `progress` of a sampler step, sent as ComfyUI sends it: to the running prompt's client.
            gate.standIn.sendProgress(value: 1, max: 2)
            gate.standIn.releaseExecution()
            let entry = try await gate.finishedEntry(hers)
            let clientID = entry["prompt"]?.arrayValue?[3]["client_id"]?.stringValue
            #expect(clientID?.hasPrefix(alice.id + "~") == true, "the gateway gave the prompt a client id of alice's")
            try await broadcastMarker("g6", in: gate, to: [bobSocket])
            #expect(bobSocket.messages(aboutPrompt: hers).isEmpty, "no progress or progress_state reached bob")
            await bobSocket.stop()
        }
    }

    @Test func g6AnotherUsersInterruptionIsNotDelivered() async throws {
        try await withGateway { gate in
            gate.standIn.holdExecution()
            let (alice, bob, _) = try await Self.members(gate)
            let aliceSocket = try await alice.listen(clientID: "a1")
            let bobSocket = try await bob.listen(clientID: "b1")
            let hers = try await alice.queueAccepted(Workflow.save(saves: 2, clientID: "a1"))
            try await gate.waitUntilRunning(hers)
            #expect(try await alice.post("/interrupt", json: "").status == 200)
            #expect(try await eventually { !aliceSocket.messages("execution_interrupted", promptID: hers).isEmpty },
                "ComfyUI broadcasts it; alice gets it")
            try await broadcastMarker("g6-interrupted", in: gate, to: [aliceSocket, bobSocket])
            #expect(bobSocket.messages("execution_interrupted").isEmpty)
            await aliceSocket.stop()
            await bobSocket.stop()
        }
    }

    /// ComfyUI sends each message in one frame; a message that arrives in fragments anyway is judged whole.
    @Test func g6AFragmentedMessageIsJudgedWhole() async throws {
        try await withGateway { gate in
            let (alice, bob, _) = try await Self.members(gate)
            let aliceSocket = try await alice.listen(clientID: "a1")
            let bobSocket = try await bob.listen(clientID: "b1")
            let hers = try await alice.queueAccepted(Workflow.save(clientID: "a1"))
            #expect(try await eventually { aliceSocket.sawFinish(of: hers) })
            let interrupted = #"{"type": "execution_interrupted", "data": {"prompt_id": "\#(hers)", "node_id": "2", "#
                + #""node_type": "SaveImage", "executed": [], "timestamp": 1}}"#
            gate.standIn.broadcast(text: interrupted, inFragmentsOf: 7)
            let status = #"{"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 0}}, "sid": "x"}}"#
            gate.standIn.broadcast(text: status, inFragmentsOf: 5)
            try await broadcastMarker("g6-fragments", in: gate, to: [aliceSocket, bobSocket])
            #expect(aliceSocket.messages("execution_interrupted", promptID: hers).count == 1, "alice gets it, whole")
            #expect(bobSocket.messages("execution_interrupted").isEmpty, "not bob")
            #expect(bobSocket.texts.contains(try StandInJSON.parse(status)), "a fragmented message of nobody's goes on")
            await aliceSocket.stop()
            await bobSocket.stop()
        }
    }

    @Test func g6ProgressTextReachesOnlyTheUserWithTheRunningPrompt() async throws {
        try await withGateway { gate in
            gate.standIn.holdExecution()
            let (alice, bob, admin) = try await Self.members(gate)
            let aliceSocket = try await alice.listen(clientID: "a1")
            let bobSocket = try await bob.listen(clientID: "b1")
            let hers = try await alice.queueAccepted(Workflow.save(saves: 2, clientID: "a1"))
            #expect(try await eventually { !aliceSocket.messages("execution_start", promptID: hers).isEmpty })
            // `send_progress_text` (binary type 3): node id length, node id, text; broadcast by ComfyUI.
            gate.standIn.sendProgressText("step 1", nodeId: "2")
            let frame: [UInt8] = [0, 0, 0, 3, 0, 0, 0, 1] + Array("2step 1".utf8)
            #expect(try await eventually { aliceSocket.binaries.contains(frame) })
            try await broadcastMarker("g6-text", in: gate, to: [bobSocket])
            #expect(bobSocket.binaries.isEmpty, "bob runs nothing: the text is not his")
            _ = try await admin.post("/interrupt", json: "")
            await aliceSocket.stop()
            await bobSocket.stop()
        }
    }

    // MARK: G.7 reading others' images

    @Test func g7ViewServesOnlyTheCallersOwnFiles() async throws {
        try await withGateway { gate in
            let (alice, bob, admin) = try await Self.members(gate)
            let aliceSocket = try await alice.listen(clientID: "a1")
            let uploaded = try await alice.upload(ComfyUIStandIn.previewImage(size: 3), name: "pic.png")
            #expect(uploaded.status == 200)
            let hers = try await alice.queueAccepted(Workflow.load("users/alice/pic.png", prefix: "mine", clientID: "a1"))
            #expect(try await eventually { aliceSocket.sawFinish(of: hers) })
            let images = Self.images(executedOn: aliceSocket, promptID: hers)
            let saved = try #require(images.first { $0["type"] == "output" })
            let preview = try #require(images.first { $0["type"] == "temp" }, "PreviewImage writes to temp")
            #expect(saved["subfolder"] == "users/alice")
            let upload = "/view?filename=pic.png&subfolder=users/alice&type=input"

            // Her output, her PreviewImage's temp file (known from her events only: no history read yet) and her upload.
            for path in [Self.viewPath(saved), Self.viewPath(preview), upload] {
                let mine = try await alice.get(path)
                #expect(mine.status == 200, "alice \(path)")
                #expect(pngWidth(mine.body.readableBytesView) == 3, "alice \(path)")
                let his = try await bob.get(path)
                #expect(his.status == 403, "bob \(path): \(his.text)")
                #expect(try await admin.get(path).status == 200, "admin \(path)")
            }
            let name = try #require(saved["filename"]?.stringValue)
            for other in [
                "/view?filename=users/alice/\(name)&type=output", "/view?filename=\(name)%20%5Boutput%5D&subfolder=users/alice",
                "/api/view?filename=\(name)&subfolder=users/bob/../alice", "/view?filename=\(name)&subfolder=./users//alice/",
            ] {
                #expect(try await bob.get(other).status == 403, "bob \(other)")
            }

            // /internal/files lists every file: admins only.
            gate.standIn.clearRecordings()
            #expect(try await bob.get("/internal/files/output").status == 403)
            #expect(try await bob.get("/api/internal/files/temp").status == 403)
            #expect(gate.comfyUIRequests.isEmpty)
            _ = try await admin.get("/internal/files/output")
            #expect(!gate.recorded("GET", "/internal/files/output").isEmpty, "an admin's request goes on")
            await aliceSocket.stop()
        }
    }

    @Test func g7OutputsListedInTheCallersHistoryAreTheirsToView() async throws {
        try await withGateway { gate in
            let (alice, bob, _) = try await Self.members(gate)
            // No websocket: the PreviewImage's temp file is learnt from alice's history.
            let hers = try await alice.queueAccepted(Workflow.body(nodes: [
                #""1": {"class_type": "EmptyImage", "inputs": {"width": 4, "height": 4, "batch_size": 1, "color": 1}}"#,
                #""2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}"#,
            ]))
            _ = try await gate.finishedEntry(hers)
            let history = try StandInJSON.parse(try await alice.get("/history/\(hers)").text)
            let preview = try #require(history[hers]?["outputs"]?["2"]?["images"]?.arrayValue?.first)
            #expect(preview["type"] == "temp")
            #expect(try await alice.get(Self.viewPath(preview)).status == 200)
            #expect(try await bob.get(Self.viewPath(preview)).status == 403)
        }
    }

    // MARK: G.8 learning others' file names

    @Test func g8ObjectInfoListsNoneOfAnotherUsersFiles() async throws {
        try await withGateway { gate in
            let (alice, bob, admin) = try await Self.members(gate)
            // A file in ComfyUI's shared input tree, and alice's upload in her folder.
            try gate.standIn.addFile(ComfyUIStandIn.previewImage(size: 2), name: "alice-holiday.png", type: .input)
            #expect(try await alice.upload(ComfyUIStandIn.previewImage(size: 3), name: "pic.png").status == 200)

            func imageList(_ answer: TestResponse, _ node: String) throws -> [String] {
                let info = try StandInJSON.parse(answer.text)
                let spec = try #require(info[node]?["input"]?["required"]?["image"]?.arrayValue, "\(node) in \(answer.text.prefix(200))")
                return (spec.first?.arrayValue ?? []).compactMap(\.stringValue)
            }
            for (path, node) in [("/object_info", "LoadImage"), ("/object_info/LoadImage", "LoadImage"), ("/api/object_info/LoadImageMask", "LoadImageMask")] {
                let bobs = try await bob.get(path)
                #expect(bobs.status == 200)
                let bobList = try imageList(bobs, node)
                #expect(!bobList.contains("alice-holiday.png") && !bobList.contains { $0.contains("alice") }, "\(path): \(bobList)")
                #expect(try imageList(try await admin.get(path), node).contains("alice-holiday.png"), "admins see the whole tree")
            }
        }
    }

    // MARK: G.9 overwriting others' uploads and outputs

    @Test func g9UploadsLandInTheUploadersFolder() async throws {
        try await withGateway { gate in
            let (alice, bob, _) = try await Self.members(gate)
            let hers = ComfyUIStandIn.previewImage(size: 3)
            let his = ComfyUIStandIn.previewImage(size: 5)
            let aliceUpload = try await alice.upload(hers, name: "pic.png")
            #expect(aliceUpload.status == 200)
            let answer = try StandInJSON.parse(aliceUpload.text)
            #expect(answer["name"] == "pic.png" && answer["subfolder"] == "users/alice" && answer["type"] == "input")
            #expect(gate.standIn.fileContents(name: "pic.png", subfolder: "users/alice", type: .input) == hers)

            // bob, with the same name and overwrite, lands in his own folder whatever subfolder he names.
            #expect(try await bob.upload(his, name: "pic.png").status == 200)
            #expect(gate.standIn.fileContents(name: "pic.png", subfolder: "users/bob", type: .input) == his)
            let named = try await bob.upload(his, name: "pic.png", subfolder: "users/alice")
            #expect(try StandInJSON.parse(named.text)["subfolder"] == "users/bob/users/alice")
            #expect(try await bob.upload(his, name: "pic.png", subfolder: "../alice").status == 400)
            #expect(try await bob.upload(his, name: "../alice/pic.png").status == 400)
            #expect(gate.standIn.fileContents(name: "pic.png", subfolder: "users/alice", type: .input) == hers, "alice's upload is untouched")
            #expect(gate.standIn.files(in: .input).isEmpty, "nothing landed outside the users' folders")
        }
    }

    @Test func g9OutputsLandInTheCallersFolderAndPrefixesCannotLeaveIt() async throws {
        try await withGateway { gate in
            let (alice, bob, _) = try await Self.members(gate)
            let his = try await bob.queueAccepted(Workflow.save(prefix: "shot"))
            _ = try await gate.finishedEntry(his)
            #expect(gate.standIn.files(in: .output, subfolder: "users/bob") == ["shot_00001_.png"])
            // alice naming bob's folder writes inside her own.
            let hers = try await alice.queueAccepted(Workflow.save(prefix: "users/bob/shot", color: 2))
            _ = try await gate.finishedEntry(hers)
            #expect(gate.standIn.files(in: .output, subfolder: "users/alice/users/bob") == ["shot_00001_.png"])
            #expect(gate.standIn.files(in: .output, subfolder: "users/bob") == ["shot_00001_.png"], "bob's folder holds his file only")
            #expect(gate.standIn.files(in: .output).isEmpty)

            gate.standIn.clearRecordings()
            let linked = Workflow.body(nodes: [
                #""1": {"class_type": "EmptyImage", "inputs": {"width": 4, "height": 4, "batch_size": 1, "color": 1}}"#,
                #""5": {"class_type": "PrimitiveString", "inputs": {"value": "../alice/x"}}"#,
                #""2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": ["5", 0]}}"#,
            ])
            for (body, reason) in [
                (linked, "filename_prefix must be a text value, not a link"),
                (Workflow.save(prefix: "../alice/x"), "would leave your folder"),
                (Workflow.save(prefix: "x/../../alice/x"), "would leave your folder"),
                (Workflow.save(prefix: "/tmp/x"), "would leave your folder"),
            ] {
                let refused = try await bob.queue(body)
                #expect(refused.status == 403, "\(refused.text)")
                let error = Self.error(refused) ?? ""
                #expect(error.contains(#"node "2" (SaveImage)"#) && error.contains(reason), "\(error)")
            }
            #expect(gate.recorded("POST", "/prompt").isEmpty)
        }
    }

    @Test func g9LoadingAnotherUsersFileIsRefusedNamingTheNode() async throws {
        try await withGateway { gate in
            let (alice, bob, _) = try await Self.members(gate)
            #expect(try await alice.upload(ComfyUIStandIn.previewImage(size: 3), name: "pic.png").status == 200)
            let aliceOutput = try await alice.queueAccepted(Workflow.save(prefix: "mine"))
            _ = try await gate.finishedEntry(aliceOutput)
            gate.standIn.clearRecordings()
            for image in [
                "users/alice/pic.png", "users/alice/pic.png [input]", "users/bob/../alice/pic.png", "./users//alice/pic.png",
                "users/alice/mine_00001_.png [output]", "../input/users/alice/pic.png",
            ] {
                let refused = try await bob.queue(Workflow.load(image))
                #expect(refused.status == 403, "\(image): \(refused.text)")
                #expect(Self.error(refused)?.contains(#"node "1" (LoadImage)"#) == true, "\(image): \(refused.text)")
            }
            let mask = try await bob.queue(Workflow.body(nodes: [
                #""4": {"class_type": "LoadImageMask", "inputs": {"image": "users/alice/pic.png", "channel": "alpha"}}"#,
            ]))
            #expect(mask.status == 403 && Self.error(mask)?.contains(#"node "4" (LoadImageMask)"#) == true, "\(mask.text)")
            #expect(gate.recorded("POST", "/prompt").isEmpty, "no refused prompt reached ComfyUI")

            // A bare name is bob's own file, which he has not uploaded: ComfyUI finds none.
            #expect(try await bob.queue(Workflow.load("pic.png")).status == 400)
            // alice loads hers, by either name.
            _ = try await alice.queueAccepted(Workflow.load("users/alice/pic.png"))
            _ = try await alice.queueAccepted(Workflow.load("pic.png", prefix: "bare"))
        }
    }

    // MARK: G.10 impersonation through comfy-user

    @Test func g10TheComfyUserHeaderNeverReachesComfyUIAndUsersIsAnswered() async throws {
        try await withGateway { gate in
            let (alice, _, admin) = try await Self.members(gate)
            gate.standIn.clearRecordings()
            _ = try await alice.get("/queue", headers: [("comfy-user", "bob")])
            _ = try await alice.get("/settings", headers: [("Comfy-User", "root")])
            _ = try await alice.post("/settings", json: #"{"a": 1}"#, headers: [("comfy-user", "root")])
            let requests = gate.comfyUIRequests
            #expect(requests.count == 3)
            #expect(requests.allSatisfy { $0.headerValues("comfy-user").isEmpty })
            for member in [alice, admin] {
                let users = try await member.get("/users")
                #expect(users.status == 200 && users.text == #"{"storage":"server","migrated":true}"#)
            }
            #expect(gate.recorded("GET", "/users").isEmpty, "answered by the gateway")
            #expect(try await alice.post("/users", json: #"{"username": "mallory"}"#).status == 403)
            #expect(gate.standIn.users == ["default": "default"])
        }
    }

    @Test func g10WithMultiUserEachGatewayUserHasTheirOwnComfyUIUser() async throws {
        try await withGateway(standIn: Self.options(multiUser: true)) { gate in
            let (alice, bob, _) = try await Self.members(gate)
            #expect(try await alice.post("/settings", json: #"{"Comfy.ColorPalette": "dark"}"#).status == 200)
            #expect(try await bob.post("/api/settings", json: #"{"Comfy.ColorPalette": "light"}"#).status == 200)
            let users = gate.standIn.users
            let aliceComfy = try #require(users.first { $0.value == "alice" }?.key)
            let bobComfy = try #require(users.first { $0.value == "bob" }?.key)
            #expect(aliceComfy != bobComfy)
            #expect(gate.recorded("POST", "/users").count == 2, "created through ComfyUI's POST /users")

            gate.standIn.clearRecordings()
            func palette(_ answer: TestResponse) throws -> String? { try StandInJSON.parse(answer.text)["Comfy.ColorPalette"]?.stringValue }
            #expect(try palette(try await alice.get("/settings")) == "dark")
            #expect(try palette(try await bob.get("/settings")) == "light")
            // The comfy-user a client sends is replaced by its own.
            #expect(try palette(try await alice.get("/settings", headers: [("comfy-user", bobComfy)])) == "dark")
            #expect(try palette(try await bob.get("/settings", headers: [("comfy-user", aliceComfy)])) == "light")
            let sent = gate.recorded("GET", "/settings").map { $0.headerValues("comfy-user") }
            #expect(sent == [[aliceComfy], [bobComfy], [aliceComfy], [bobComfy]])
            #expect(gate.standIn.userDataContents(user: aliceComfy, path: "comfy.settings.json").map { String(decoding: $0, as: UTF8.self) }?
                .contains("dark") == true)
            // The front end shows no user picker: the gateway answers GET /users.
            #expect(try await alice.get("/users").text == #"{"storage":"server","migrated":true}"#)
        }
    }

    // MARK: G.11 disturbing the machine

    @Test func g11MachineRoutesAreForAdmins() async throws {
        try await withGateway { gate in
            let (_, bob, admin) = try await Self.members(gate)
            #expect(try await bob.post("/free", json: #"{"unload_models": true}"#).status == 403)
            #expect(try await bob.post("/api/free", json: #"{"free_memory": true}"#).status == 403)
            #expect(gate.standIn.freeRequests.isEmpty)
            #expect(try await admin.post("/free", json: #"{"unload_models": true}"#).status == 200)
            #expect(gate.standIn.freeRequests.count == 1)
            for path in [
                "/internal/logs", "/internal/logs/raw", "/api/internal/folder_paths", "/manager/queue/status",
                "/customnode/getlist", "/snapshot/get_current", "/api/externalmodel/getlist",
            ] {
                gate.standIn.clearRecordings()
                let his = try await bob.get(path)
                #expect(his.status == 403 && Self.error(his)?.hasSuffix("is for admins") == true, "\(path): \(his.text)")
                #expect(gate.comfyUIRequests.isEmpty, "\(path)")
                let admins = try await admin.get(path)
                let forwarded = gate.recorded("GET", path)
                #expect(forwarded.count == 1 && forwarded.first?.status == admins.status, "\(path): an admin's request goes on")
            }
        }
    }

    @Test func g11DeniedNodesAreRefusedNamingTheNode() async throws {
        try await withGateway(configure: { $0.policy.deniedNodeClasses = ["PreviewImage"] }) { gate in
            let (_, bob, admin) = try await Self.members(gate)
            let body = Workflow.body(nodes: [
                #""1": {"class_type": "EmptyImage", "inputs": {"width": 4, "height": 4, "batch_size": 1, "color": 1}}"#,
                #""7": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}"#,
            ])
            gate.standIn.clearRecordings()
            let refused = try await bob.queue(body)
            #expect(refused.status == 403)
            #expect(Self.error(refused) == #"node "7" (PreviewImage): only admins may run this node type"#)
            #expect(gate.recorded("POST", "/prompt").isEmpty)
            _ = try await admin.queueAccepted(body)
        }
    }

    // MARK: Websockets that must end

    /// The gateway checks open websockets' credentials every second; how soon one closes on a loaded machine is not
    /// this test's business (a timed unit test flakes), only that it closes, with the right code, and no other does.
    @Test func revokingATokenClosesItsWebSockets() async throws {
        try await withGateway { gate in
            let (alice, bob, _) = try await Self.members(gate)
            let aliceSocket = try await alice.listen(clientID: "a1")
            let bobSocket = try await bob.listen(clientID: "b1")
            let token = try #require(try await gate.accounts.listTokens(userName: "alice").first?.token)
            try await gate.accounts.revokeToken(id: token.id)
            let closed = try await eventually(within: .seconds(20)) { !aliceSocket.isOpen }
            #expect(closed, "the gateway closed alice's websocket")
            if !closed { await aliceSocket.stop() }
            #expect(try await aliceSocket.ended()?.closeCode == .policyViolation)
            #expect(try await alice.get("/queue").status == 401)
            #expect(bobSocket.isOpen, "bob's credential still holds")
            await bobSocket.stop()
        }
    }

    @Test func aWebSocketWhoseComfyUISideDropsGetsACloseFrame1011() async throws {
        try await DroppingWebSocketUpstream.with { upstream, url in
            try await withGateway(upstream: url) { gate in
                let (_, token) = try await gate.makeUser("alice")
                let connection = try RawConnection(port: gate.port, timeoutSeconds: 10)
                try await connection.write(WebSocketTests.handshake(path: "/ws?clientId=a1", port: gate.port, extra: "Authorization: Bearer \(token)\r\n"))
                let opened = await connection.read(until: "dropper")
                #expect(opened.hasPrefix("HTTP/1.1 101"), "\(opened.prefix(60))")
                upstream.dropAll()
                let (rest, closed) = await connection.readBytesToEnd()
                let close = webSocketFrames(rest).first { $0.opcode == 0x8 }
                #expect(close?.payload.prefix(2) == [0x03, 0xF3], "1011 internal error, got \(rest)")
                #expect(closed)
            }
        }
    }

    // MARK: Own work, and admins

    @Test func eachUsersOwnFlowWorksSideBySide() async throws {
        try await withGateway { gate in
            let (alice, bob, _) = try await Self.members(gate)
            async let aliceFlow = Self.ownFlow(of: alice, imageSize: 3)
            async let bobFlow = Self.ownFlow(of: bob, imageSize: 5)
            let (hers, his) = try await (aliceFlow, bobFlow)
            #expect(try Self.historyIDs(try await alice.get("/history")) == [hers])
            #expect(try Self.historyIDs(try await bob.get("/history")) == [his])
        }
    }

    /// Upload → a prompt loading it → live events → the output through /view → history, as the front end does it.
    static func ownFlow(of member: Member, imageSize: Int) async throws -> String {
        let socket = try await member.listen(clientID: "flow")
        let uploaded = try await member.upload(ComfyUIStandIn.previewImage(size: imageSize), name: "pic.png")
        #expect(uploaded.status == 200)
        let upload = try StandInJSON.parse(uploaded.text)
        let subfolder = upload["subfolder"]?.stringValue ?? ""
        let name = upload["name"]?.stringValue ?? ""
        let promptID = try await member.queueAccepted(Workflow.load(subfolder.isEmpty ? name : subfolder + "/" + name, prefix: "flow", clientID: "flow"))
        #expect(try await eventually { socket.sawFinish(of: promptID) }, "\(member.name)")
        #expect(!socket.messages("execution_start", promptID: promptID).isEmpty)
        #expect(!socket.messages("execution_success", promptID: promptID).isEmpty)
        let saved = try #require(Self.images(executedOn: socket, promptID: promptID).first { $0["type"] == "output" })
        let view = try await member.get(Self.viewPath(saved))
        #expect(view.status == 200)
        #expect(pngWidth(view.body.readableBytesView) == imageSize, "\(member.name)'s output came from \(member.name)'s upload")
        let history = try StandInJSON.parse(try await member.get("/history/\(promptID)").text)
        #expect(history[promptID]?["outputs"]?["2"]?["images"]?.arrayValue?.first == saved)
        #expect(history[promptID]?["status"]?["status_str"] == "success")
        await socket.stop()
        return promptID
    }

    /// (Everyone's queue items are shown to admins in ``g1QueueShowsOnlyTheCallersOwnItems()``.)
    @Test func adminsSeeEverything() async throws {
        try await withGateway { gate in
            let (alice, bob, admin) = try await Self.members(gate)
            let hers = try await alice.queueAccepted(Workflow.save(prefix: "hers"))
            _ = try await gate.finishedEntry(hers)
            let his = try await bob.queueAccepted(Workflow.save(prefix: "his", color: 2))
            _ = try await gate.finishedEntry(his)

            #expect(try Self.historyIDs(try await admin.get("/history")) == [hers, his])
            for promptID in [hers, his] {
                let entry = try StandInJSON.parse(try await admin.get("/api/history/\(promptID)").text)[promptID]
                let image = try #require(entry?["outputs"]?["2"]?["images"]?.arrayValue?.first)
                let view = try await admin.get(Self.viewPath(image))
                #expect(view.status == 200 && pngWidth(view.body.readableBytesView) == 4)
            }
        }
    }
}

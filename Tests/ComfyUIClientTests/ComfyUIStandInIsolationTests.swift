import AsyncHTTPClient
import ComfyGateTestSupport
import Foundation
import NIOCore
import NIOHTTP1
import Testing
import WSClient

/// A graph `EmptyImage` → `SaveImage`, with optional `client_id` and extra top-level keys.
private func saveWorkflow(color: Int, clientId: String? = nil, extra: String = "") -> String {
    let client = clientId.map { #""client_id": "\#($0)", "# } ?? ""
    return """
        {\(client)\(extra)"prompt": {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": \(color)}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "iso"}}}}
        """
}

/// A graph `LoadImage(image)` → `PreviewImage`.
private func loadWorkflow(_ image: String) -> String {
    """
    {"prompt": {"1": {"class_type": "LoadImage", "inputs": {"image": "\(image)"}},
    "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}}
    """
}

private func promptId(_ result: HTTPResult) throws -> String {
    try #require(try result.json()["prompt_id"]?.stringValue)
}

/// Polls `GET /history/{id}` until the prompt is finished.
private func finished(_ client: HTTPClient, _ standIn: ComfyUIStandIn, _ id: String) async throws -> StandInJSON {
    let deadline = ContinuousClock.now + .seconds(30)
    while ContinuousClock.now < deadline {
        if let entry = try await client.call("\(standIn.baseURL)/history/\(id)").json()[id] { return entry }
        try await Task.sleep(for: .milliseconds(20))
    }
    throw TimeoutError()
}

/// Polls `GET /queue` until `id` is the running prompt.
private func running(_ client: HTTPClient, _ standIn: ComfyUIStandIn, _ id: String) async throws {
    let deadline = ContinuousClock.now + .seconds(30)
    while ContinuousClock.now < deadline {
        let queue = try await client.call("\(standIn.baseURL)/queue").json()
        if queue["queue_running"]?.arrayValue?.first?.arrayValue?[1] == .string(id) { return }
        try await Task.sleep(for: .milliseconds(10))
    }
    throw TimeoutError()
}

/// Keeps a websocket open as `clientId`, logging what arrives, until the stand-in closes it.
private func listen(_ standIn: ComfyUIStandIn, clientId: String, into log: MessageLog) async throws {
    var configuration = WebSocketClientConfiguration()
    configuration.maxFrameSize = 1 << 24
    try await WebSocketClient.connect(
        url: "\(standIn.webSocketBaseURL)/ws?clientId=\(clientId)", configuration: configuration, logger: quietLogger
    ) { inbound, _, _ in
        for try await message in inbound.messages(maxSize: 1 << 24) { log.append(message) }
    }
}

extension ComfyUIStandInTests {
    @Test func multiUserKeepsSettingsAndUserDataPerComfyUserHeader() async throws {
        var options = ComfyUIStandIn.Options()
        options.multiUser = true
        options.users = ["alice_1": "alice"]
        try await withComfyUIStandIn(options) { standIn in
            try await withHTTPClient { client in
                let base = standIn.baseURL
                let alice = [("comfy-user", "alice_1")]
                #expect(try await client.call("\(base)/users").json() == ["storage": "server", "users": ["alice_1": "alice"]])

                let created = try await client.post("\(base)/api/users", json: #"{"username": "bob smith!"}"#)
                let bobId = try #require(try created.json().stringValue)
                #expect(bobId.hasPrefix("bob-smith-_") && bobId.count == "bob-smith-_".count + 36)
                let bob = [("comfy-user", bobId)]
                let duplicate = try await client.post("\(base)/users", json: #"{"username": "alice"}"#)
                #expect(try duplicate.status == 400 && duplicate.json() == ["error": "Duplicate username."])
                #expect(standIn.users == ["alice_1": "alice", bobId: "bob smith!"])
                #expect(try await client.call("\(base)/users").json()["users"]?[bobId] == "bob smith!")

                #expect(try await client.post("\(base)/settings", json: #"{"Comfy.Theme": "dark"}"#, headers: alice).status == 200)
                #expect(try await client.post("\(base)/settings/Comfy.Locale", json: #""fr""#, headers: bob).status == 200)
                #expect(try await client.call("\(base)/settings", headers: alice).json() == ["Comfy.Theme": "dark"])
                #expect(try await client.call("\(base)/settings", headers: bob).json() == ["Comfy.Locale": "fr"])
                #expect(try await client.call("\(base)/settings/Comfy.Theme", headers: alice).json() == "dark")
                #expect(try await client.call("\(base)/settings/Comfy.Theme", headers: bob).json() == .null)
                #expect(standIn.userDataContents(user: "alice_1", path: "comfy.settings.json") != nil)

                let saved = try await client.call(
                    .POST, "\(base)/api/userdata/workflows%2Fa.json", headers: alice, body: Array("{\"a\": 1}".utf8))
                #expect(try saved.status == 200 && saved.json() == "workflows/a.json")
                let refused = try await client.call(.POST, "\(base)/userdata/workflows%2Fa.json?overwrite=false", headers: alice, body: [1])
                #expect(refused.status == 409)
                #expect(try await client.call("\(base)/userdata/workflows%2Fa.json", headers: alice).text == "{\"a\": 1}")
                #expect(try await client.call("\(base)/userdata/workflows%2Fa.json", headers: bob).status == 404)
                #expect(try await client.call("\(base)/userdata?dir=workflows", headers: alice).json() == ["a.json"])
                // bob's GET above created his (empty) workflows/ directory, as get_request_user_filepath does
                #expect(try await client.call("\(base)/userdata?dir=workflows", headers: bob).json() == [])
                #expect(try await client.call("\(base)/userdata?dir=nothing", headers: bob).status == 404)
                #expect(try await client.call("\(base)/userdata?dir=.&recurse=true&split=true", headers: alice).json()
                    == [["comfy.settings.json", "comfy.settings.json"], ["workflows/a.json", "workflows", "a.json"]])
                let listing = try await client.call("\(base)/v2/userdata", headers: alice).json()
                #expect(listing.arrayValue?.map { $0["path"] } == ["workflows", "workflows/a.json", "comfy.settings.json"])
                #expect(listing.arrayValue?.first?["type"] == "directory")
                #expect(try await client.call(.POST, "\(base)/userdata/..%2F..%2Fescape.txt", headers: alice, body: [1]).status == 403)
                #expect(try await client.call(.DELETE, "\(base)/userdata/workflows%2Fa.json", headers: alice).status == 204)
                #expect(standIn.userDataContents(user: "alice_1", path: "workflows/a.json") == nil)

                // an id not in the users map (A.10); without the header the user is "default", also unknown here
                for headers in [[("comfy-user", "mallory")], []] {
                    #expect(try await client.call("\(base)/settings", headers: headers).status == 401)
                    #expect(try await client.post("\(base)/settings/x", json: "1", headers: headers).status == 401)
                    #expect(try await client.call("\(base)/userdata?dir=workflows", headers: headers).status == 500)
                    #expect(try await client.call("\(base)/userdata/workflows%2Fa.json", headers: headers).status == 500)
                    #expect(try await client.call("\(base)/v2/userdata", headers: headers).status == 403)
                }
                #expect(try await client.call("\(base)/userdata", headers: alice).status == 400)
            }
        }
    }

    @Test func singleUserIgnoresComfyUserHeader() async throws {
        try await withComfyUIStandIn { standIn in
            try await withHTTPClient { client in
                let base = standIn.baseURL
                let users = try await client.call("\(base)/users").json()
                #expect(users == ["storage": "server", "migrated": true])
                let posted = try await client.post("\(base)/settings", json: #"{"k": 1}"#, headers: [("comfy-user", "mallory")])
                #expect(posted.status == 200)
                let settings = try await client.call("\(base)/settings").json()
                #expect(settings == ["k": 1])
                #expect(standIn.userDataContents(user: "default", path: "comfy.settings.json") != nil)
                #expect(standIn.userDataContents(user: "mallory", path: "comfy.settings.json") == nil)
                #expect(standIn.users == ["default": "default"])
            }
        }
    }

    @Test func objectInfoListsTopLevelInputFilesForImageLoaders() async throws {
        try await withComfyUIStandIn { standIn in
            try standIn.addFile([1], name: "cat.png")
            try standIn.addFile([2], name: "notes.txt")
            try standIn.addFile([3], name: "dog.png", subfolder: "users/alice")
            try await withHTTPClient { client in
                let all = try await client.call("\(standIn.baseURL)/object_info").json()
                let single = try await client.call("\(standIn.baseURL)/object_info/LoadImage").json()
                for info in [all, single] {
                    #expect(info["LoadImage"]?["input"]?["required"]?["image"] == [["cat.png"], ["image_upload": true]])
                }
                let mask = all["LoadImageMask"]?["input"]?["required"]
                #expect(mask?["image"] == [["cat.png", "notes.txt"], ["image_upload": true]])
                #expect(mask?["channel"] == [["alpha", "red", "green", "blue"]])
                #expect(all["LoadImageMask"]?["output"] == ["MASK"] && all["LoadImageMask"]?["category"] == "mask")
            }
        }
    }

    @Test func loadImageResolvesSubfoldersAndAnnotatedPaths() async throws {
        for confined in [false, true] {
            var options = ComfyUIStandIn.Options()
            options.confineAnnotatedFilePaths = confined
            try await withComfyUIStandIn(options) { standIn in
                try standIn.addFile(StandInPNG.solidImage(width: 20, height: 10, color: 0), name: "cat.png", subfolder: "users/alice")
                try standIn.addFile(StandInPNG.solidImage(width: 30, height: 15, color: 0), name: "out.png", type: .output)
                try await withHTTPClient { client in
                    func previewWidth(_ image: String) async throws -> UInt32? {
                        let response = try await client.post("\(standIn.baseURL)/prompt", json: loadWorkflow(image))
                        guard response.status == 200 else { return nil }
                        let entry = try await finished(client, standIn, try promptId(response))
                        let name = try #require(entry["outputs"]?["2"]?["images"]?.arrayValue?.first?["filename"]?.stringValue)
                        let png = try #require(standIn.fileContents(name: name, type: .temp))
                        return bigEndianUInt32(png[16..<20])
                    }
                    #expect(try await previewWidth("users/alice/cat.png") == 20)
                    #expect(try await previewWidth("out.png [output]") == 30)
                    let missing = try await client.post("\(standIn.baseURL)/prompt", json: loadWorkflow("users/bob/cat.png"))
                    #expect(missing.status == 400)
                    let error = try missing.json()["node_errors"]?["1"]?["errors"]?.arrayValue?.first
                    #expect(error?["type"] == "custom_validation_failed")
                    #expect(error?["details"] == "image - Invalid image file: users/bob/cat.png")
                    // 0.3.64 joins `..` on unchecked; the [newer] guard refuses it
                    let escaping = try await client.post("\(standIn.baseURL)/prompt", json: loadWorkflow("../output/out.png"))
                    #expect(escaping.status == (confined ? 400 : 200))
                }
            }
        }
    }

    @Test func interruptTargetsTheRunningPromptAndEventsReachOthers() async throws {
        try await withComfyUIStandIn { standIn in
            standIn.holdExecution()
            let other = MessageLog()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await listen(standIn, clientId: "other", into: other) }
                try #require(try await eventually { standIn.connectedWebSocketCount == 1 })
                try await withHTTPClient { client in
                    let url = "\(standIn.baseURL)/prompt"
                    let kept = try promptId(try await client.post(url, json: saveWorkflow(color: 1, clientId: "owner")))
                    try await running(client, standIn, kept)
                    _ = try await client.post("\(standIn.baseURL)/interrupt", json: #"{"prompt_id": "not-running"}"#)
                    standIn.releaseExecution()
                    #expect(try await finished(client, standIn, kept)["status"]?["status_str"] == "success")
                    standIn.holdExecution()

                    let stopped = try promptId(try await client.post(url, json: saveWorkflow(color: 2, clientId: "owner")))
                    try await running(client, standIn, stopped)
                    _ = try await client.post("\(standIn.baseURL)/interrupt", json: #"{"prompt_id": "\#(stopped)"}"#)
                    let entry = try await finished(client, standIn, stopped)
                    #expect(entry["status"]?["status_str"] == "error")
                    #expect(try await eventually { other.texts.contains { $0["type"] == "execution_interrupted" && $0["data"]?["prompt_id"] == .string(stopped) } })

                    // queued without client_id: progress, progress_state and progress text reach every socket
                    let anonymous = try promptId(try await client.post(url, json: saveWorkflow(color: 3)))
                    try await running(client, standIn, anonymous)
                    standIn.sendProgress(value: 1, max: 2)
                    standIn.sendProgressText("hi", nodeId: "7")
                    _ = try await client.call(.POST, "\(standIn.baseURL)/interrupt")
                    #expect(try await finished(client, standIn, anonymous)["status"]?["status_str"] == "error")
                    #expect(try await eventually { other.texts.contains { $0["type"] == "progress" && $0["data"]?["prompt_id"] == .string(anonymous) } })
                    #expect(other.texts.contains { $0["type"] == "progress_state" && $0["data"]?["prompt_id"] == .string(anonymous) })
                    #expect(try await eventually {
                        other.all.contains { message in
                            guard case .binary(let buffer) = message else { return false }
                            return Array(buffer.readableBytesView) == [0, 0, 0, 3, 0, 0, 0, 1, 0x37, 0x68, 0x69]
                        }
                    })
                    // the owner's own events never reached the other socket
                    #expect(!other.texts.contains { $0["type"] == "execution_start" })
                }
                standIn.closeAllWebSockets()
                try await group.waitForAll()
            }
        }
    }

    @Test func aNodeExecutionDelayKeepsEachNodeRunningUntilItsTimeOrAnInterrupt() async throws {
        var slow = ComfyUIStandIn.Options()
        slow.nodeExecutionDelay = .seconds(600)
        try await withComfyUIStandIn(slow) { standIn in
            try await withHTTPClient { client in
                let id = try promptId(try await client.post("\(standIn.baseURL)/prompt", json: saveWorkflow(color: 1)))
                try await running(client, standIn, id)
                _ = try await client.call(.POST, "\(standIn.baseURL)/interrupt")
                #expect(try await finished(client, standIn, id)["status"]?["status_str"] == "error", "the interrupt stops the slow node")
            }
        }
        var quick = ComfyUIStandIn.Options()
        quick.nodeExecutionDelay = .milliseconds(20)
        try await withComfyUIStandIn(quick) { standIn in
            try await withHTTPClient { client in
                let id = try promptId(try await client.post("\(standIn.baseURL)/prompt", json: saveWorkflow(color: 2)))
                #expect(try await finished(client, standIn, id)["status"]?["status_str"] == "success", "each node ends after its time")
            }
        }
    }

    @Test func queueAndHistoryDeleteAndClearActOnAnyId() async throws {
        try await withComfyUIStandIn { standIn in
            standIn.holdExecution()
            try await withHTTPClient { client in
                let url = "\(standIn.baseURL)/prompt"
                let blocker = try promptId(try await client.post(url, json: saveWorkflow(color: 10)))
                try await running(client, standIn, blocker)
                let plain = try promptId(try await client.post(url, json: saveWorkflow(color: 11)))
                let front = try promptId(try await client.post(url, json: saveWorkflow(color: 12, extra: #""front": true, "#)))
                let numbered = try promptId(try await client.post(url, json: saveWorkflow(color: 13, extra: #""number": -100, "#)))
                let owned = try promptId(try await client.post(url, json: saveWorkflow(color: 14, extra: #""extra_data": {"owner": "u1"}, "#)))
                func pending() async throws -> [StandInJSON] {
                    try await client.call("\(standIn.baseURL)/queue").json()["queue_pending"]?.arrayValue ?? []
                }
                #expect(try await pending().map { $0.arrayValue?[1] } == [.string(numbered), .string(front), .string(plain), .string(owned)])
                #expect(try await pending().last?.arrayValue?[3] == ["owner": "u1"])
                _ = try await client.post("\(standIn.baseURL)/queue", json: #"{"delete": ["\#(plain)"]}"#)
                let afterDelete = try await pending()
                #expect(afterDelete.count == 3 && !afterDelete.contains { $0.arrayValue?[1] == .string(plain) })
                _ = try await client.post("\(standIn.baseURL)/queue", json: #"{"clear": true}"#)
                #expect(try await pending().isEmpty)

                standIn.releaseExecution()
                _ = try await finished(client, standIn, blocker)
                let second = try promptId(try await client.post(url, json: saveWorkflow(color: 15)))
                _ = try await finished(client, standIn, second)
                _ = try await client.post("\(standIn.baseURL)/history", json: #"{"delete": ["\#(blocker)"]}"#)
                #expect(try await client.call("\(standIn.baseURL)/history/\(blocker)").json() == [:])
                #expect(try await client.call("\(standIn.baseURL)/history").json().objectValue?.map(\.0) == [second])
                _ = try await client.post("\(standIn.baseURL)/history", json: #"{"clear": true}"#)
                #expect(try await client.call("\(standIn.baseURL)/history").json() == [:])
            }
        }
    }

    @Test func jobsAPIListsQueueAndHistoryAsJobs() async throws {
        var options = ComfyUIStandIn.Options()
        options.jobsAPI = true
        try await withComfyUIStandIn(options) { standIn in
            try await withHTTPClient { client in
                let base = standIn.baseURL
                let url = "\(base)/prompt"
                let done = try promptId(
                    try await client.post(url, json: saveWorkflow(color: 1, extra: #""extra_data": {"extra_pnginfo": {"workflow": {"id": "wf-1"}}}, "#)))
                _ = try await finished(client, standIn, done)
                standIn.holdExecution()
                let cancelled = try promptId(try await client.post(url, json: saveWorkflow(color: 2)))
                try await running(client, standIn, cancelled)
                _ = try await client.call(.POST, "\(base)/interrupt")
                _ = try await finished(client, standIn, cancelled)
                let active = try promptId(try await client.post(url, json: saveWorkflow(color: 3)))
                try await running(client, standIn, active)
                try await Task.sleep(for: .milliseconds(5))
                let waiting = try promptId(try await client.post(url, json: saveWorkflow(color: 4)))

                let list = try await client.call("\(base)/api/jobs").json()
                let jobs = try #require(list["jobs"]?.arrayValue)
                #expect(jobs.map { $0["id"] } == [.string(waiting), .string(active), .string(cancelled), .string(done)])
                #expect(jobs.map { $0["status"] } == ["pending", "in_progress", "cancelled", "completed"])
                #expect(list["pagination"] == ["offset": 0, "limit": nil, "total": 4, "has_more": false])
                let completed = jobs[3]
                #expect(completed["workflow_id"] == "wf-1" && completed["outputs_count"] == 1 && completed["previewable_outputs_count"] == 1)
                #expect(completed["preview_output"]?["nodeId"] == "2" && completed["preview_output"]?["mediaType"] == "images")
                #expect(completed["preview_output"]?["type"] == "output")
                #expect(completed["execution_start_time"]?.intValue != nil && completed["execution_end_time"]?.intValue != nil)
                #expect(completed["create_time"]?.intValue != nil && completed["outputs"] == nil)
                #expect(jobs[0]["outputs_count"] == 0 && jobs[0]["workflow"] == nil)

                let page = try await client.call("\(base)/api/jobs?limit=1&offset=1").json()
                #expect(page["jobs"]?.arrayValue?.map { $0["id"] } == [.string(active)])
                #expect(page["pagination"] == ["offset": 1, "limit": 1, "total": 4, "has_more": true])
                let finishedOnly = try await client.call("\(base)/api/jobs?status=completed,cancelled&sort_order=asc").json()
                #expect(finishedOnly["jobs"]?.arrayValue?.map { $0["id"] } == [.string(done), .string(cancelled)])
                #expect(try await client.call("\(base)/api/jobs?workflow_id=wf-1").json()["jobs"]?.arrayValue?.count == 1)
                let badStatus = try await client.call("\(base)/api/jobs?status=bogus")
                #expect(badStatus.status == 400)
                #expect(try badStatus.json()["error"] == "Invalid status value(s): bogus. Valid values: pending, in_progress, completed, failed, cancelled")
                #expect(try await client.call("\(base)/api/jobs?limit=0").json() == ["error": "limit must be a positive integer"])
                #expect(try await client.call("\(base)/api/api/jobs").status == 200)

                let detail = try await client.call("\(base)/api/jobs/\(done)").json()
                #expect(detail["outputs"]?["2"]?["images"]?.arrayValue?.count == 1)
                #expect(detail["execution_status"]?["status_str"] == "success")
                #expect(detail["workflow"]?["extra_data"]?["extra_pnginfo"]?["workflow"]?["id"] == "wf-1")
                #expect(try await client.call("\(base)/api/jobs/\(waiting)").json()["workflow"]?["prompt"]?["2"]?["class_type"] == "SaveImage")
                let unknown = try await client.call("\(base)/api/jobs/nope")
                #expect(try unknown.status == 404 && unknown.json() == ["error": "Job not found"])
                _ = try await client.post("\(base)/queue", json: #"{"clear": true}"#)
            }
        }
        try await withComfyUIStandIn { standIn in
            try await withHTTPClient { client in
                #expect(try await client.call("\(standIn.baseURL)/api/jobs").status == 404)
                let id = try promptId(try await client.post("\(standIn.baseURL)/prompt", json: saveWorkflow(color: 5)))
                #expect(try await finished(client, standIn, id)["prompt"]?.arrayValue?[3]["create_time"] == nil)
            }
        }
    }
}

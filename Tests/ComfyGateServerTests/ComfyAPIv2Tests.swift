import AsyncHTTPClient
import ComfyGateAssets
import ComfyGateCore
import ComfyGateTestSupport
import Foundation
import NIOCore
import NIOHTTP1
import Testing

/// The Comfy API v2 door against the stand-in, over real HTTP: the flow `comfy-sdk` runs (asset upload, submit,
/// events, outputs, workflow, list), each user's jobs and assets invisible to the others, idempotency, quotas,
/// cancellation in each state, and errors in the contract's envelope.
@Suite struct ComfyAPIv2Tests {
    static let picture = StandInPNG.solidImage(width: 8, height: 8, color: 0x3366CC)
    static var pictureHash: String { "blake3:" + BLAKE3Hasher.hash(picture).map { String(format: "%02x", $0) }.joined() }

    /// LoadImage of an asset → SaveImage.
    static func graph(asset: String, prefix: String = "v2") -> String {
        #"""
        {"workflow": {"1": {"class_type": "LoadImage", "inputs": {"image": {"__type": "core/ASSET", "info": {"id": "\#(asset)", "file_path": "in.png"}}}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "\#(prefix)"}}}, "metadata": {"run": "7"}}
        """#
    }

    static func savingGraph(color: Int = 1) -> String {
        #"{"workflow": "# + String(Workflow.save(color: color).dropFirst(#"{"prompt": "#.count))
    }

    @Test func theSDKsUsualFlowRunsThroughTheDoor() async throws {
        try await withGateway { gate in
            let (alice, bob, _) = try await IsolationTests.members(gate)
            #expect(try await alice.v2(.HEAD, "/assets/by-hash/\(Self.pictureHash)").status == 404)
            let uploaded = try await alice.uploadAsset(Self.picture, path: "in.png", expectedHash: Self.pictureHash)
            #expect(uploaded.status == 201)
            let asset = try uploaded.json()
            #expect(asset["hash"] as? String == Self.pictureHash)
            #expect(asset["size_bytes"] as? Int == Self.picture.count)
            #expect(asset["created_new"] as? Bool == true)
            #expect((asset["url"] as? String)?.hasPrefix(gate.baseURL + "/api/v2/assets/") == true)
            let assetID = try #require(asset["id"] as? String)
            #expect(try await alice.v2(.HEAD, "/assets/by-hash/\(Self.pictureHash)").status == 200)
            let again = try await alice.v2(.POST, "/assets/from-hash", json: #"{"hash": "\#(Self.pictureHash)", "file_path": "in.png"}"#)
            #expect(again.status == 200 && (try? again.json())?["id"] as? String == assetID, "the same reference again")

            // Someone else's content is as good as missing.
            #expect(try await bob.v2(.HEAD, "/assets/by-hash/\(Self.pictureHash)").status == 404)
            let stolen = try await bob.v2(.POST, "/assets/from-hash", json: #"{"hash": "\#(Self.pictureHash)"}"#)
            #expect(stolen.status == 404 && stolen.errorCode == "blob_not_found")
            #expect(try await bob.v2(.GET, "/assets/\(assetID)").status == 404)
            let borrowed = try await bob.v2(.POST, "/jobs", json: Self.graph(asset: assetID))
            #expect(borrowed.status == 422 && borrowed.errorCode == "missing_asset")

            // Held until the event stream is open, so the stream sees the job's whole life.
            gate.standIn.holdExecution()
            let submitted = try await alice.v2(.POST, "/jobs", json: Self.graph(asset: assetID), headers: [("Idempotency-Key", "flow-1")])
            #expect(submitted.status == 201, "\(submitted.text)")
            let job = try submitted.json()
            let jobID = try #require(job["id"] as? String)
            for key in ["created_at", "started_at", "completed_at", "expires_at", "queue_position", "progress", "outputs", "error", "urls"] {
                #expect(job.keys.contains(key), "\(key) missing")
            }
            let urls = try #require(job["urls"] as? [String: String])
            #expect(urls["self"] == "/api/v2/jobs/\(jobID)" && urls["events"] == "/api/v2/jobs/\(jobID)/events")

            async let streamed = alice.events(jobID)
            try await Task.sleep(for: .milliseconds(300))
            gate.standIn.releaseExecution()
            let frames = try await streamed
            #expect(frames.first?.event == "status")
            #expect(frames.last?.event == "status" && frames.last?.data["status"] as? String == "succeeded")
            let outputFrames = frames.filter { $0.event == "output" }
            #expect(outputFrames.count == 1, "\(frames.map(\.event))")

            let finished = try await alice.v2(.GET, "/jobs/\(jobID)").json()
            #expect(finished["status"] as? String == "succeeded")
            #expect((finished["metadata"] as? [String: String]) == ["run": "7"])
            #expect(finished["started_at"] is String && finished["completed_at"] is String)
            let output = try #require((finished["outputs"] as? [[String: Any]])?.first)
            #expect(output["type"] as? String == "image" && output["content_type"] as? String == "image/png")
            #expect(output.keys.contains("hash"))
            let outputID = try #require(output["id"] as? String)
            #expect(output["url"] as? String == gate.baseURL + "/api/v2/assets/\(outputID)/content")
            #expect(outputFrames.first?.data["id"] as? String == outputID)

            let content = try await alice.v2(.GET, "/assets/\(outputID)/content")
            #expect(content.status == 200 && pngWidth(content.body.readableBytesView) == 8)
            let head = try await alice.v2(.GET, "/assets/\(outputID)/content", headers: [("Range", "bytes=0-7")])
            #expect(head.status == 206 && Array(head.body.readableBytesView) == StandInPNG.signature)
            #expect(head.header("Content-Range")?.hasPrefix("bytes 0-7/") == true)
            #expect(try await bob.v2(.GET, "/assets/\(outputID)/content").status == 404)
            let uploadRange = try await alice.v2(.GET, "/assets/\(assetID)/content", headers: [("Range", "bytes=1-3")])
            #expect(uploadRange.status == 206 && Array(uploadRange.body.readableBytesView) == Array(Self.picture[1...3]))
            #expect(try await alice.v2(.GET, "/assets/\(assetID)/content", headers: [("Range", "bytes=5000-")]).status == 416)

            // The executed graph: the asset became a file in alice's own input folder.
            let workflow = try await alice.v2(.GET, "/jobs/\(jobID)/workflow").json()
            #expect(workflow["format"] as? String == "api")
            let image = ((workflow["workflow"] as? [String: Any])?["1"] as? [String: Any]).flatMap { ($0["inputs"] as? [String: Any])?["image"] as? String }
            #expect(image?.hasPrefix("users/alice/") == true && image?.hasSuffix("_in.png") == true, "\(image ?? "nil")")

            let list = try await alice.v2(.GET, "/jobs?limit=5").json()
            let items = try #require(list["jobs"] as? [[String: Any]])
            #expect(items.map { $0["id"] as? String } == [jobID])
            #expect(items.first?["create_time"] is String)
            #expect((try await bob.v2(.GET, "/jobs").json()["jobs"] as? [Any])?.isEmpty == true)
            #expect(try await bob.v2(.GET, "/jobs/\(jobID)").status == 404)
            #expect(try await bob.v2(.GET, "/jobs/\(jobID)/events").status == 404)

            // Deleting the record: its content goes when nothing else uses it.
            #expect(try await alice.v2(.DELETE, "/assets/\(assetID)").status == 204)
            #expect(try await alice.v2(.DELETE, "/assets/\(assetID)").status == 404)
            #expect(try await alice.v2(.HEAD, "/assets/by-hash/\(Self.pictureHash)").status == 404)
        }
    }

    @Test func aKeyIsSingleUseAndARefusalLeavesItFree() async throws {
        try await withGateway(configure: { $0.quotas[.user] = QuotaLimits(maxWaitingJobs: 1, jobsPerDay: 3) }) { gate in
            gate.standIn.holdExecution()
            let (alice, _, _) = try await IsolationTests.members(gate)
            let first = try await alice.v2(.POST, "/jobs", json: Self.savingGraph(color: 1), headers: [("Idempotency-Key", "k1")])
            #expect(first.status == 201)
            let firstID = try #require(try first.json()["id"] as? String)
            let reused = try await alice.v2(.POST, "/jobs", json: Self.savingGraph(color: 1), headers: [("Idempotency-Key", "k1")])
            #expect(reused.status == 422 && reused.errorCode == "idempotency_key_reuse")

            let full = try await alice.v2(.POST, "/jobs", json: Self.savingGraph(color: 2), headers: [("Idempotency-Key", "k2")])
            #expect(full.status == 429 && full.errorCode == "queue_full")
            #expect(Int(full.header("Retry-After") ?? "") ?? 0 >= 1)
            #expect(try await alice.v2(.POST, "/jobs/\(firstID)/cancel").status == 200)
            _ = try await eventuallyAsync(within: .seconds(30)) { try await gate.store.job(id: firstID)?.state == .canceled }
            let retried = try await alice.v2(.POST, "/jobs", json: Self.savingGraph(color: 2), headers: [("Idempotency-Key", "k2")])
            #expect(retried.status == 201, "a refused submission did not claim its key: \(retried.text)")
            let retriedID = try #require(try retried.json()["id"] as? String)
            #expect(try await alice.v2(.POST, "/jobs/\(retriedID)/cancel").status == 200)
            _ = try await eventuallyAsync(within: .seconds(30)) { try await gate.store.job(id: retriedID)?.state.isFinished == true }

            let third = try #require(try await alice.v2(.POST, "/jobs", json: Self.savingGraph(color: 3)).json()["id"] as? String)
            _ = try await alice.v2(.POST, "/jobs/\(third)/cancel")
            _ = try await eventuallyAsync(within: .seconds(30)) { try await gate.store.job(id: third)?.state.isFinished == true }
            // Three jobs today, none waiting: the day's budget is what is over.
            let spent = try await alice.v2(.POST, "/jobs", json: Self.savingGraph(color: 4))
            #expect(spent.status == 402 && spent.errorCode == "insufficient_credits", "\(spent.text)")
            #expect(Int(spent.header("Retry-After") ?? "") ?? 0 > 86_000, "the day's first job leaves the day in a day")
            gate.standIn.releaseExecution()
        }
    }

    @Test func gpuTimeAndImageAreaLimitsAreAnsweredAsTheContractSays() async throws {
        try await withGateway(configure: {
            $0.quotas[.user] = QuotaLimits(gpuSecondsPerDay: 60, maxImageArea: 64 * 64)
        }) { gate in
            let (alice, bob, _) = try await IsolationTests.members(gate)
            let large = #"{"workflow": {"1": {"class_type": "EmptyLatentImage", "inputs": {"width": 1024, "height": 1024, "batch_size": 1}}}}"#
            let tooLarge = try await bob.v2(.POST, "/jobs", json: large)
            #expect(tooLarge.status == 422 && tooLarge.errorCode == "invalid_workflow")
            #expect(((try? tooLarge.json())?["error"] as? [String: Any]).flatMap { ($0["details"] as? [String: Any])?["limit"] as? String }
                == "max_image_area")
            #expect(tooLarge.header("Retry-After") == nil, "no wait makes an image smaller")

            // Alice used 90 GPU seconds today.
            let now = gate.clock.now()
            try await gate.store.insertJob(Job(
                userID: alice.id, source: .v2, state: .succeeded, workflow: "{}", createdAt: now.addingTimeInterval(-600),
                startedAt: now.addingTimeInterval(-590), completedAt: now.addingTimeInterval(-500), gpuSeconds: 90))
            let spent = try await alice.v2(.POST, "/jobs", json: Self.savingGraph())
            #expect(spent.status == 402 && spent.errorCode == "insufficient_credits", "\(spent.text)")
            #expect(Int(spent.header("Retry-After") ?? "") ?? 0 > 80_000)
            #expect(try await bob.v2(.POST, "/jobs", json: Self.savingGraph()).status == 201, "bob's day is his own")
        }
    }

    @Test func aJobIsCancelledInEachState() async throws {
        try await withGateway(configure: { $0.jobs.inFlight = 1 }) { gate in
            gate.standIn.holdExecution()
            let (alice, bob, _) = try await IsolationTests.members(gate)
            let running = try #require(try await alice.v2(.POST, "/jobs", json: Self.savingGraph(color: 1)).json()["id"] as? String)
            try await gate.waitUntilRunning(running)
            let held = try await alice.v2(.POST, "/jobs", json: Self.savingGraph(color: 2)).json()
            #expect(held["status"] as? String == "queued" && held["queue_position"] as? Int == 1)
            let heldID = try #require(held["id"] as? String)

            #expect(try await bob.v2(.POST, "/jobs/\(heldID)/cancel").status == 404, "only the owner cancels")
            let canceledHeld = try await alice.v2(.POST, "/jobs/\(heldID)/cancel").json()
            #expect(canceledHeld["status"] as? String == "canceled")
            #expect(gate.recorded("POST", "/queue").isEmpty, "a held job never reaches ComfyUI")

            let canceling = try await alice.v2(.POST, "/jobs/\(running)/cancel").json()
            #expect(["canceling", "canceled"].contains(canceling["status"] as? String))
            #expect(try await eventuallyAsync(within: .seconds(30)) {
                (try await alice.v2(.GET, "/jobs/\(running)").json()["status"] as? String) == "canceled"
            })

            gate.standIn.releaseExecution()
            let done = try #require(try await alice.v2(.POST, "/jobs", json: Self.savingGraph(color: 3)).json()["id"] as? String)
            #expect(try await eventuallyAsync(within: .seconds(30)) {
                (try await alice.v2(.GET, "/jobs/\(done)").json()["status"] as? String) == "succeeded"
            })
            let unchanged = try await alice.v2(.POST, "/jobs/\(done)/cancel")
            #expect(unchanged.status == 200 && (try? unchanged.json())?["status"] as? String == "succeeded")
        }
    }

    @Test func refusalsComeInTheContractsEnvelope() async throws {
        try await withGateway { gate in
            let (alice, _, _) = try await IsolationTests.members(gate)
            let viewer = try await gate.member("vera", role: .viewer)
            let health = try await TestHTTP.send(.GET, gate.baseURL + "/api/v2/health")
            #expect(health.status == 200 && (try? health.json())?["status"] as? String == "healthy")

            let anonymous = try await TestHTTP.send(.GET, gate.baseURL + "/api/v2/jobs")
            #expect(anonymous.status == 401 && anonymous.errorCode == "unauthorized")
            #expect(anonymous.header("WWW-Authenticate")?.hasPrefix("Bearer") == true)
            let denied = try await viewer.v2(.POST, "/jobs", json: Self.savingGraph())
            #expect(denied.status == 403 && denied.errorCode == "forbidden")
            #expect(try await viewer.v2(.GET, "/jobs").status == 200, "a viewer reads")
            #expect(try await alice.v2(.GET, "/nothing-here").status == 404)
            #expect(try await alice.v2(.GET, "/assets/by-hash/\(Self.pictureHash)").status == 405)

            let notJSON = try await alice.v2(.POST, "/jobs", json: "[1]")
            #expect(notJSON.status == 400 && notJSON.errorCode == "invalid_request")
            let uiFormat = try await alice.v2(.POST, "/jobs", json: #"{"workflow": {"nodes": [], "links": []}}"#)
            #expect(uiFormat.status == 422 && uiFormat.errorCode == "workflow_format_ui")
            let unknownNode = try await alice.v2(.POST, "/jobs", json: #"{"workflow": {"1": {"class_type": "NoSuchNode", "inputs": {}}}}"#)
            #expect(unknownNode.status == 422 && unknownNode.errorCode == "invalid_workflow")
            let badMetadata = try await alice.v2(.POST, "/jobs", json: #"{"workflow": {}, "metadata": {"bad key": "x"}}"#)
            #expect(badMetadata.status == 422 && badMetadata.errorCode == "metadata_invalid")
            let mismatch = try await alice.uploadAsset(Self.picture, path: "in.png", expectedHash: "blake3:" + String(repeating: "0", count: 64))
            #expect(mismatch.status == 409 && mismatch.errorCode == "hash_mismatch")
            let escaping = try await alice.uploadAsset(Self.picture, path: "../secret.png", expectedHash: nil)
            #expect(escaping.status == 422)
            #expect(try await gate.store.countJobs(userID: alice.id, states: nil, createdAfter: nil) == 0, "refusals make no jobs")

            // The websocket upgrade asks the same policy: the door is never a websocket, nor relayed to ComfyUI.
            let upgrade = try RawConnection(port: gate.port, timeoutSeconds: 20)
            try await upgrade.write(
                "GET /api/v2/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(alice.token)\r\nUpgrade: websocket\r\n"
                    + "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
            let (answer, _) = await upgrade.readToEnd()
            #expect(answer.hasPrefix("HTTP/1.1 400"), "got: \(answer.prefix(60))")
            #expect(gate.comfyUIWebSockets.isEmpty)
        }
    }
}

/// One server-sent event.
struct ServerSentEvent: @unchecked Sendable {
    let event: String
    let data: [String: Any]
}

extension TestResponse {
    /// The `error.code` of a Comfy API v2 error envelope.
    var errorCode: String? {
        ((try? json())?["error"] as? [String: Any])?["code"] as? String
    }
}

extension Member {
    func v2(_ method: HTTPMethod, _ path: String, json: String? = nil, headers: [(String, String)] = []) async throws -> TestResponse {
        let type = json == nil ? [] : [("Content-Type", "application/json")]
        return try await TestHTTP.send(method, gate.baseURL + "/api/v2" + path, headers: [auth] + type + headers, body: json)
    }

    /// `POST /api/v2/assets` as `comfy-sdk` sends it: `content_type`, `file_path`, `expected_hash`, then `file`.
    func uploadAsset(_ bytes: [UInt8], path: String, expectedHash: String?) async throws -> TestResponse {
        let boundary = "----comfy" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        var body: [UInt8] = []
        func field(_ name: String, _ value: String) {
            body += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n\(value)\r\n".utf8)
        }
        field("content_type", "image/png")
        field("file_path", path)
        if let expectedHash { field("expected_hash", expectedHash) }
        body += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"\(path)\"\r\nContent-Type: image/png\r\n\r\n".utf8)
        body += bytes
        body += Array("\r\n--\(boundary)--\r\n".utf8)
        var request = HTTPClientRequest(url: gate.baseURL + "/api/v2/assets")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        request.headers.add(name: "Content-Type", value: "multipart/form-data; boundary=\(boundary)")
        request.headers.add(name: "Idempotency-Key", value: UUID().uuidString)
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await TestHTTP.client.execute(request, timeout: .seconds(60))
        return TestResponse(
            status: Int(response.status.code), headers: response.headers, body: try await response.body.collect(upTo: 1 << 20))
    }

    /// A job's event stream, read until it ends (the server ends it after the terminal `status`).
    func events(_ jobID: String) async throws -> [ServerSentEvent] {
        var request = HTTPClientRequest(url: gate.baseURL + "/api/v2/jobs/\(jobID)/events")
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        request.headers.add(name: "Accept", value: "text/event-stream")
        let response = try await TestHTTP.client.execute(request, timeout: .seconds(60))
        guard response.status == .ok, response.headers.first(name: "Content-Type") == "text/event-stream" else {
            throw IsolationTestError.unexpected("events answered \(response.status)")
        }
        var text = ""
        for try await buffer in response.body { text += String(buffer: buffer) }
        return try text.components(separatedBy: "\n\n").compactMap { frame in
            var event: String?
            var data: String?
            for line in frame.split(separator: "\n") {
                if line.hasPrefix("event: ") { event = String(line.dropFirst(7)) }
                if line.hasPrefix("data: ") { data = String(line.dropFirst(6)) }
            }
            guard let event, let data else { return nil }
            let object = try JSONSerialization.jsonObject(with: Data(data.utf8)) as? [String: Any] ?? [:]
            return ServerSentEvent(event: event, data: object)
        }
    }
}

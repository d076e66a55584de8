import ComfyGateCore
import ComfyGateSQLite
import ComfyGateTestSupport
import Foundation
import NIOHTTP1
import Testing

/// The gateway's job queue through the native door, against the stand-in: jobs held in the gateway, fair order,
/// quotas, validation of held prompts, cancellation, and history kept by the gateway.
@Suite struct JobQueueTests {
    @Test func aLightUsersJobWaitsOnlyForWhatWasAlreadyHandedOver() async throws {
        try await withGateway(configure: { $0.jobs.inFlight = 1 }) { gate in
            gate.standIn.holdExecution()
            let (heavy, light, admin) = try await IsolationTests.members(gate)
            let first = try await heavy.queueAccepted(Workflow.save(color: 1))
            try await gate.waitUntilRunning(first)
            var heavyIDs = [first]
            for color in 2...4 { heavyIDs.append(try await heavy.queueAccepted(Workflow.save(color: color))) }
            let lightID = try await light.queueAccepted(Workflow.save(color: 9))

            // ComfyUI has the one job handed over; the others wait in the gateway, each user seeing their own.
            let atComfyUI = try await gate.comfyQueue()
            #expect(atComfyUI.running == [first] && atComfyUI.pending.isEmpty)
            let heavyQueue = try IsolationTests.queueIDs(try await heavy.get("/queue"))
            #expect(heavyQueue.running == [first])
            #expect(heavyQueue.pending == Array(heavyIDs[1...]))
            let lightQueue = try IsolationTests.queueIDs(try await light.get("/queue"))
            #expect(lightQueue.running.isEmpty && lightQueue.pending == [lightID])
            // An admin sees every held job, in the order they will be handed over: the light user's first.
            #expect(try IsolationTests.queueIDs(try await admin.get("/queue")).pending == [lightID] + heavyIDs[1...])

            gate.standIn.releaseExecution()
            _ = try await eventuallyAsync(within: .seconds(30)) { try await gate.comfyHistoryIDs().count == 5 }
            #expect(try await gate.comfyHistoryIDs() == [first, lightID] + heavyIDs[1...], "the light user went next")

            // The gateway keeps the history: once it has seen the jobs finish, it outlives ComfyUI's memory.
            #expect(try await eventuallyAsync(within: .seconds(30)) {
                var finished = 0
                for id in heavyIDs + [lightID] where try await gate.store.job(id: id)?.state == .succeeded { finished += 1 }
                return finished == 5
            })
            _ = try await TestHTTP.send(
                .POST, "\(gate.standIn.baseURL)/history", headers: [("Content-Type", "application/json")], body: #"{"clear": true}"#)
            #expect(try await gate.comfyHistoryIDs().isEmpty)
            #expect(Set(try IsolationTests.historyIDs(try await heavy.get("/history"))) == Set(heavyIDs))
            #expect(try IsolationTests.historyIDs(try await light.get("/history")) == [lightID])
            #expect(try IsolationTests.historyIDs(try await light.get("/history/\(lightID)")) == [lightID])
            #expect(try await light.get("/history/\(first)").text == "{}")

            let job = try #require(try await gate.store.job(id: lightID))
            #expect(job.state == .succeeded)
            #expect(job.userID == light.id)
            #expect(job.outputs.map(\.mediaKind) == [.image])
            #expect(job.dispatchedAt != nil && job.historyEntry != nil)
        }
    }

    @Test func threeUsersAtUnequalRatesEachWaitOnlyForWhatWasHandedOver() async throws {
        try await withGateway(configure: { $0.jobs.inFlight = 1 }) { gate in
            gate.standIn.holdExecution()
            let (heavy, medium, _) = try await IsolationTests.members(gate)
            let light = try await gate.member("lena")
            let first = try await heavy.queueAccepted(Workflow.save(color: 1))
            try await gate.waitUntilRunning(first)
            var heavyIDs = [first], mediumIDs: [String] = []
            for color in 2...6 { heavyIDs.append(try await heavy.queueAccepted(Workflow.save(color: color))) }
            for color in 7...9 { mediumIDs.append(try await medium.queueAccepted(Workflow.save(color: color))) }
            let lightID = try await light.queueAccepted(Workflow.save(color: 10))
            gate.standIn.releaseExecution()
            _ = try await eventuallyAsync(within: .seconds(30)) { try await gate.comfyHistoryIDs().count == 10 }
            let order = try await gate.comfyHistoryIDs()
            #expect(order.count == 10 && order.first == first)
            func position(_ id: String) -> Int { order.firstIndex(of: id) ?? .max }
            func heavyBefore(_ id: String) -> Int { heavyIDs.filter { position($0) < position(id) }.count }
            // When the medium and the light user queued, only heavy's first job had been handed over.
            #expect(heavyBefore(lightID) == 1, "\(order)")
            #expect(heavyBefore(mediumIDs[0]) == 1, "\(order)")
            // Each user's jobs ran first in, first out; no user's job ran twice.
            #expect(heavyIDs.map(position) == heavyIDs.map(position).sorted())
            #expect(mediumIDs.map(position) == mediumIDs.map(position).sorted())
            #expect(Set(order).count == 10)
        }
    }

    @Test func eachQuotaIsAnswered429WithItsReason() async throws {
        try await withGateway(configure: {
            $0.quotas[.user] = QuotaLimits(maxWaitingJobs: 2, jobsPerDay: 3, maxImageArea: 64 * 64)
        }) { gate in
            gate.standIn.holdExecution()
            let (alice, bob, admin) = try await IsolationTests.members(gate)
            func reason(_ answer: TestResponse) throws -> (limit: String?, error: String?) {
                let json = try answer.json()
                return (json["limit"] as? String, json["error"] as? String)
            }

            _ = try await alice.queueAccepted(Workflow.save(color: 1))
            _ = try await alice.queueAccepted(Workflow.save(color: 2))
            let full = try await alice.queue(Workflow.save(color: 3))
            #expect(full.status == 429)
            #expect(try reason(full).limit == "max_waiting_jobs")
            #expect(try reason(full).error?.contains("the most allowed is 2") == true)
            #expect(Int(full.header("Retry-After") ?? "") ?? 0 >= 1)

            let large = Workflow.body(nodes: [
                #""1": {"class_type": "EmptyLatentImage", "inputs": {"width": 1024, "height": 1024, "batch_size": 1}}"#,
                #""2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "big"}}"#,
            ])
            let tooLarge = try await bob.queue(large)
            #expect(tooLarge.status == 429)
            #expect(try reason(tooLarge).limit == "max_image_area")
            #expect(tooLarge.header("Retry-After") == nil, "no wait makes an image smaller")

            // A user's own limit goes over their role's.
            try await gate.store.setUserQuota(UserQuota(userID: alice.id, limits: QuotaLimits(maxWaitingJobs: 5)))
            #expect(try await alice.queue(Workflow.save(color: 4)).status == 200)
            let day = try await alice.queue(Workflow.save(color: 5))
            #expect(day.status == 429)
            #expect(try reason(day).limit == "jobs_per_day")
            #expect(Int(day.header("Retry-After") ?? "") ?? 0 > 86_000, "the day's first job leaves the day in a day")

            // Refusals are no jobs; admins have no limits unless configured.
            #expect(try await gate.store.countJobs(userID: alice.id, states: nil, createdAfter: nil) == 3)
            #expect(try await gate.store.countJobs(userID: bob.id, states: nil, createdAfter: nil) == 0)
            for color in 10..<14 { _ = try await admin.queueAccepted(Workflow.save(color: color)) }
            _ = try await admin.post("/queue", json: #"{"clear": true}"#)
            gate.standIn.releaseExecution()
        }
    }

    @Test func aHeldPromptIsCheckedAsComfyUIWouldCheckIt() async throws {
        try await withGateway(configure: { $0.jobs.inFlight = 1 }) { gate in
            gate.standIn.holdExecution()
            let (alice, _, _) = try await IsolationTests.members(gate)
            let unknown = Workflow.body(nodes: [#""1": {"class_type": "NoSuchNode", "inputs": {}}"#])

            // With a slot free, ComfyUI answers itself, and a refused prompt is no job: its id is free again.
            let chosenID = UUID().uuidString.lowercased()
            let direct = try await alice.queue(
                Workflow.body(nodes: [#""1": {"class_type": "NoSuchNode", "inputs": {}}"#], extra: #""prompt_id": "\#(chosenID)", "#))
            #expect(direct.status == 400)
            #expect(((try direct.json()["error"] as? [String: Any])?["type"] as? String) == "invalid_prompt")
            #expect(gate.recorded("POST", "/prompt").count == 1)

            let running = try await alice.queueAccepted(Workflow.save(extra: #""prompt_id": "\#(chosenID)", "#))
            #expect(running == chosenID)
            try await gate.waitUntilRunning(running)
            // Held: the gateway answers from ComfyUI's node catalog, with ComfyUI's shape, and ComfyUI is not asked.
            let held = try await alice.queue(unknown)
            #expect(held.status == 400)
            let error = try #require(try held.json()["error"] as? [String: Any])
            #expect(error["type"] as? String == "invalid_prompt")
            #expect((error["message"] as? String)?.contains("NoSuchNode") == true)
            #expect(gate.recorded("POST", "/prompt").count == 2)
            #expect(try await gate.store.countJobs(userID: alice.id, states: nil, createdAfter: nil) == 1)

            let missing = try await alice.queue(#"{"client_id": "x"}"#)
            #expect(missing.status == 400)
            #expect(((try missing.json()["error"] as? [String: Any])?["type"] as? String) == "no_prompt")
            gate.standIn.releaseExecution()
        }
    }

    @Test func whatComfyUIRefusesAtHandOverFailsWithItsReasonOnTheSocketAndInHistory() async throws {
        try await withGateway(configure: { $0.jobs.inFlight = 1 }) { gate in
            gate.standIn.holdExecution()
            let (alice, _, _) = try await IsolationTests.members(gate)
            let socket = try await alice.listen()
            defer { Task { await socket.stop() } }
            let running = try await alice.queueAccepted(Workflow.save(color: 1))
            try await gate.waitUntilRunning(running)
            // Numbers out of range are left to ComfyUI (its node catalog does not settle them), so this is held.
            let tooSmall = Workflow.body(nodes: [
                #""1": {"class_type": "EmptyImage", "inputs": {"width": 0, "height": 4, "batch_size": 1, "color": 1}}"#,
                #""2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "small"}}"#,
            ])
            let refused = try await alice.queueAccepted(tooSmall)
            gate.standIn.releaseExecution()

            _ = try await eventuallyAsync(within: .seconds(30)) { try await gate.store.job(id: refused)?.state == .failed }
            let job = try #require(try await gate.store.job(id: refused))
            #expect(job.failure?.code == "invalid_prompt")
            #expect(job.failure?.nodeID == "1")
            #expect(try await eventually(within: .seconds(10)) { !socket.messages("execution_error", promptID: refused).isEmpty })
            let history = try StandInJSON.parse(try await alice.get("/history/\(refused)").text)
            #expect(history[refused]?["status"]?["status_str"]?.stringValue == "error")
            #expect(try await gate.store.job(id: running)?.state == .succeeded)
        }
    }

    @Test func cancellingAHeldJobNeverTouchesComfyUI() async throws {
        try await withGateway(configure: { $0.jobs.inFlight = 1 }) { gate in
            gate.standIn.holdExecution()
            let (alice, bob, _) = try await IsolationTests.members(gate)
            let running = try await alice.queueAccepted(Workflow.save(color: 1))
            try await gate.waitUntilRunning(running)
            let held = try await alice.queueAccepted(Workflow.save(color: 2))
            let kept = try await alice.queueAccepted(Workflow.save(color: 3))
            gate.standIn.clearRecordings()

            // Another user's delete does nothing to it.
            #expect(try await bob.post("/queue", json: #"{"delete": ["\#(held)"]}"#).status == 200)
            #expect(try await gate.store.job(id: held)?.state == .queued)

            #expect(try await alice.post("/queue", json: #"{"delete": ["\#(held)"]}"#).status == 200)
            let job = try #require(try await gate.store.job(id: held))
            #expect(job.state == .canceled)
            #expect(job.dispatchedAt == nil)
            #expect(gate.comfyUIRequests.isEmpty, "a job ComfyUI never had is cancelled without it")
            let queue = try IsolationTests.queueIDs(try await alice.get("/queue"))
            #expect(queue.pending == [kept], "\(queue), kept \(kept)")

            gate.standIn.releaseExecution()
            _ = try await eventuallyAsync(within: .seconds(30)) { try await gate.store.job(id: kept)?.state == .succeeded }
            #expect(try await gate.comfyHistoryIDs() == [running, kept])
        }
    }

    @Test func theWebSocketCountsOnlyTheUsersOwnWaitingJobs() async throws {
        try await withGateway(configure: { $0.jobs.inFlight = 1 }) { gate in
            gate.standIn.holdExecution()
            let (alice, bob, _) = try await IsolationTests.members(gate)
            let bobs = try await bob.listen()
            defer { Task { await bobs.stop() } }
            let running = try await alice.queueAccepted(Workflow.save(color: 1))
            try await gate.waitUntilRunning(running)
            for color in 2...3 { _ = try await alice.queueAccepted(Workflow.save(color: color)) }
            _ = try await bob.queueAccepted(Workflow.save(color: 4))

            func remaining(_ message: StandInJSON) -> Int? {
                guard case .int(let count)? = message["data"]?["status"]?["exec_info"]?["queue_remaining"] else { return nil }
                return count
            }
            // Bob's socket is told of his one job, never of alice's three.
            #expect(try await eventually(within: .seconds(10)) { bobs.messages("status").last.flatMap(remaining) == 1 })
            #expect(bobs.messages("status").compactMap(remaining).allSatisfy { $0 <= 1 })
            gate.standIn.releaseExecution()
        }
    }

    @Test func restartsOfTheGatewayAndOfComfyUILoseNothingAndRunNothingTwice() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("comfygate-restart-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("gateway.sqlite").path
        try await withComfyUIStandIn(.init()) { standIn in
            standIn.holdExecution()
            let (user, token, ids) = try await withGateway(in: standIn, store: try SQLiteStore(path: path)) { gate in
                let alice = try await gate.member("alice")
                var ids: [String] = []
                for color in 1...4 { ids.append(try await alice.queueAccepted(Workflow.save(color: color))) }
                try await gate.waitUntilRunning(ids[0])
                #expect(try await gate.comfyQueue().pending == [ids[1]], "two jobs at ComfyUI, two held")
                return (alice.user, alice.token, ids)
            }
            // While the gateway is down, ComfyUI restarts and forgets the prompt it had waiting.
            let deleted = try await TestHTTP.send(
                .POST, "\(standIn.baseURL)/queue", headers: [("Content-Type", "application/json")],
                body: #"{"delete": ["\#(ids[1])"]}"#)
            #expect(deleted.status == 200)
            try await withGateway(in: standIn, store: try SQLiteStore(path: path)) { gate in
                let alice = Member(gate: gate, user: user, token: token)
                standIn.releaseExecution()
                _ = try await eventuallyAsync(within: .seconds(30)) {
                    var succeeded = 0
                    for id in ids where try await gate.store.job(id: id)?.state == .succeeded { succeeded += 1 }
                    return succeeded == ids.count
                }
                let ran = try await gate.comfyHistoryIDs()
                #expect(ran.count == ids.count && Set(ran) == Set(ids), "each job ran once: \(ran)")
                #expect(Set(try IsolationTests.historyIDs(try await alice.get("/history"))) == Set(ids))
            }
        }
    }
}

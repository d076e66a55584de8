import ComfyGateCore
import ComfyGateServer
import ComfyGateSQLite
import ComfyGateTestSupport
import Foundation
import NIOCore
import NIOHTTP1
import Testing

/// Several ComfyUI backends behind one gateway: dispatch by models and load, affinity of everything about a job to
/// the backend that ran it, draining, input placement, readiness.
@Suite struct BackendPoolTests {
    /// The stand-ins' model lists: `qwen` has Qwen-Image, `edit` Qwen-Image-Edit.
    static func options(diffusionModels: [String]) -> ComfyUIStandIn.Options {
        var options = ComfyUIStandIn.Options()
        options.models["diffusion_models"] = diffusionModels
        return options
    }

    static let qwen = "qwen_image_fp8_e4m3fn.safetensors"
    static let edit = "qwen_image_edit_fp8_e4m3fn.safetensors"

    /// `UNETLoader(model)` beside `EmptyImage` → `SaveImage`: a graph that names a model file.
    static func naming(_ model: String, prefix: String = "out", extraData: String? = nil) -> String {
        Workflow.body(
            nodes: [
                #""1": {"class_type": "EmptyImage", "inputs": {"width": 4, "height": 4, "batch_size": 1, "color": 7}}"#,
                #""2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "\#(prefix)"}}"#,
                #""3": {"class_type": "UNETLoader", "inputs": {"unet_name": "\#(model)", "weight_dtype": "default"}}"#,
            ], extra: extraData.map { #""extra_data": \#($0), "# } ?? "")
    }

    @Test func jobsGoToABackendThatHasEveryModelFileTheyName() async throws {
        try await withBackends([Self.options(diffusionModels: [Self.qwen]), Self.options(diffusionModels: [Self.edit])]) { gate, standIns in
            let alice = try await gate.member("alice")
            for _ in 0..<3 {
                let id = try await alice.queueAccepted(Self.naming(Self.edit))
                let job = try await gate.finishedJob(id)
                #expect(job.backend == "b" && job.state == .succeeded, "only b has \(Self.edit): \(String(describing: job.backend))")
                #expect(try await standIns[1].historyIDs().contains(id))
            }
            let onA = try await alice.queueAccepted(Self.naming(Self.qwen))
            #expect(try await gate.finishedJob(onA).backend == "a")

            let nowhere = try await alice.queue(Self.naming("flux1-dev.safetensors"))
            #expect(nowhere.status == 400)
            let error = try #require(try nowhere.json()["error"] as? [String: Any])
            #expect(error["type"] as? String == "missing_models")
            #expect((error["details"] as? String)?.contains("no ComfyUI backend has these model files: flux1-dev.safetensors") == true)

            let both = Workflow.body(nodes: [
                #""1": {"class_type": "UNETLoader", "inputs": {"unet_name": "\#(Self.qwen)", "weight_dtype": "default"}}"#,
                #""2": {"class_type": "UNETLoader", "inputs": {"unet_name": "\#(Self.edit)", "weight_dtype": "default"}}"#,
                #""3": {"class_type": "EmptyImage", "inputs": {"width": 4, "height": 4, "batch_size": 1, "color": 7}}"#,
                #""4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "x"}}"#,
            ])
            let split = try await alice.queue(both)
            #expect(split.status == 400)
            let details = (try split.json()["error"] as? [String: Any])?["details"] as? String ?? ""
            #expect(details.contains("no single ComfyUI backend") && details.contains("a lacks \(Self.edit)") && details.contains("b lacks \(Self.qwen)"))
        }
    }

    @Test func loadIsSpreadAndEverythingAboutAJobGoesToItsBackend() async throws {
        try await withBackends([.init(), .init()], configure: { $0.jobs.inFlight = 1 }) { gate, standIns in
            for standIn in standIns { standIn.holdExecution() }
            let alice = try await gate.member("alice")
            let listener = try await alice.listen(clientID: "alice-tab")
            defer { Task { await listener.stop() } }
            // The one socket is joined to both backends (the second in the background, after the handshake).
            let joined = try await eventuallyAsync { standIns.allSatisfy(\.hasClientWebSocket) }
            #expect(joined)
            var ids: [String] = []
            for color in 1...3 { ids.append(try await alice.queueAccepted(Workflow.save(prefix: "spread", color: color, clientID: "alice-tab"))) }
            // One slot each: one job runs on each backend, the third waits in the gateway.
            _ = try await eventuallyAsync {
                let onA = try await standIns[0].queueIDs().count
                let onB = try await standIns[1].queueIDs().count
                return onA == 1 && onB == 1
            }
            let third = try #require(try await gate.store.job(id: ids[2]))
            #expect(third.state == .queued)
            let queue = try StandInJSON.parse(try await alice.get("/queue").text)
            #expect((queue["queue_running"]?.arrayValue?.count ?? 0) == 2, "the native queue shows what runs on both backends")
            for standIn in standIns { standIn.releaseExecution() }

            var backends: Set<String> = []
            for id in ids {
                let job = try await gate.finishedJob(id)
                #expect(job.state == .succeeded)
                backends.insert(job.backend ?? "")
                // Its history comes from the gateway; its file from the backend that ran it.
                let entry = try StandInJSON.parse(try await alice.get("/history/\(id)").text)[id]
                let image = try #require(entry?["outputs"]?["2"]?["images"]?.arrayValue?.first)
                let name = try #require(image["filename"]?.stringValue)
                let subfolder = image["subfolder"]?.stringValue ?? ""
                let view = try await alice.get("/view?filename=\(name)&subfolder=\(subfolder)&type=output")
                #expect(view.status == 200 && pngWidth(view.body.readableBytesView) == 4, "\(name) from \(job.backend ?? "?")")
                let told = try await eventually(within: .seconds(5)) { listener.sawFinish(of: id) }
                #expect(told, "the one websocket tells of the job on \(job.backend ?? "?")")
            }
            #expect(backends == ["a", "b"])
        }
    }

    @Test func aDrainedBackendFinishesItsWorkAndTakesNothingNew() async throws {
        try await withBackends([.init(), .init()], configure: { $0.jobs.inFlight = 1 }) { gate, standIns in
            standIns[1].holdExecution()
            let alice = try await gate.member("alice")
            // b's slot taken by a running job, then b drained.
            _ = try await alice.queueAccepted(Workflow.save(prefix: "first", color: 1))
            let running = try await alice.queueAccepted(Workflow.save(prefix: "second", color: 2))
            _ = try await eventuallyAsync { try await standIns[1].queueIDs() == [running] }
            try await BackendAdministration(store: gate.databaseStore).setDrained(true, backend: "b", known: ["a", "b"], by: "test")
            _ = try await eventuallyAsync { try await gate.readiness().backend("b")?["drained"] as? Bool == true }
            standIns[1].releaseExecution()
            #expect(try await gate.finishedJob(running).state == .succeeded, "a drained backend finishes what it runs")
            for color in 3...6 {
                let id = try await alice.queueAccepted(Workflow.save(prefix: "drained", color: color))
                #expect(try await gate.finishedJob(id).backend == "a")
            }
            // Both drained: nothing is ready; jobs wait in the gateway.
            try await BackendAdministration(store: gate.databaseStore).setDrained(true, backend: "a", known: ["a", "b"], by: "test")
            _ = try await eventuallyAsync { try await TestHTTP.send(.GET, gate.baseURL + "/readyz").status == 503 }
            let waiting = try await alice.queueAccepted(Workflow.save(prefix: "waits", color: 9))
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await gate.store.job(id: waiting)?.state == .queued)
            try await BackendAdministration(store: gate.databaseStore).setDrained(false, backend: "b", known: ["a", "b"], by: "test")
            #expect(try await gate.finishedJob(waiting).backend == "b", "re-enabled, b takes the waiting job")
            #expect(try await gate.store.auditEvents(limit: 10).contains { $0.action == "backend.enable" && $0.detail == "backend b" })
        }
    }

    @Test func aBackendThatDiesGivesBackItsWaitingJobsFailsItsRunningOnesAndRejoinsWhenItReturns() async throws {
        let port = try LoopbackPort.free()
        let doomed = {
            var options = ComfyUIStandIn.Options()
            options.port = port
            return options
        }()
        try await withComfyUIStandIn(.init()) { survivor in
            let backends = [
                BackendConfiguration(name: "b", url: URL(string: survivor.baseURL)!, slots: 1),
                BackendConfiguration(name: "a", url: URL(string: "http://127.0.0.1:\(port)")!, slots: 2),
            ]
            try await withGateway(in: survivor, store: try SQLiteStore.inMemory(), configure: { $0.configuredBackends = backends }) { gate in
                let alice = try await gate.member("alice")
                let (onB, running, waiting) = try await withComfyUIStandIn(doomed) { a in
                    _ = try await eventuallyAsync { try await gate.readiness().backendsUp == 2 }
                    a.holdExecution()
                    survivor.holdExecution()
                    // b (listed first) takes the first job in its one slot, so the next two go to a: one runs there, one
                    // waits in its queue.
                    let onB = try await alice.queueAccepted(Workflow.save(prefix: "on-b", color: 1))
                    _ = try await eventuallyAsync { try await survivor.queueIDs() == [onB] }
                    let running = try await alice.queueAccepted(Workflow.save(prefix: "runs", color: 2))
                    _ = try await eventuallyAsync { try await a.queueIDs() == [running] }
                    let waiting = try await alice.queueAccepted(Workflow.save(
                        prefix: "retried", color: 3, extra: #""extra_data": {"comfygate_retryable": true}, "#))
                    _ = try await eventuallyAsync { try await a.queueIDs().count == 2 }
                    let placed = [try await gate.store.job(id: running), try await gate.store.job(id: waiting)]
                    #expect(placed.map { $0?.backend } == ["a", "a"], "\(placed.map { "\($0?.state.rawValue ?? "?") on \($0?.backend ?? "-")" })")
                    return (onB, running, waiting)
                }
                // a is gone (its stand-in stopped) with one job running and one waiting in its queue.
                let failed = try await gate.finishedJob(running)
                #expect(failed.state == .failed && failed.failure?.code == "backend_failed", "\(String(describing: failed.failure))")
                #expect(failed.failure?.message.contains("'a' stopped answering") == true)
                let entry = try StandInJSON.parse(try await alice.get("/history/\(running)").text)[running]
                #expect(entry?["status"]?["status_str"]?.stringValue == "error", "the native history tells of it")
                _ = try await eventuallyAsync { try await gate.store.job(id: waiting)?.state == .queued }
                survivor.releaseExecution()
                let moved = try await gate.finishedJob(waiting)
                #expect(moved.state == .succeeded && moved.backend == "b", "the waiting job ran on b")
                #expect(try await gate.finishedJob(onB).state == .succeeded)
                #expect(try await gate.readiness().backend("a")?["state"] as? String == "down")

                // a comes back on its port: it rejoins by itself and takes work again.
                let retriedJob = try await withComfyUIStandIn(doomed) { a in
                    _ = try await eventuallyAsync(within: .seconds(20)) { try await gate.readiness().backendsUp == 2 }
                    survivor.holdExecution()
                    let blocker = try await alice.queueAccepted(Workflow.save(prefix: "blocker", color: 4))
                    let next = try await alice.queueAccepted(Workflow.save(prefix: "back", color: 5))
                    survivor.releaseExecution()
                    let ranOn = [try await gate.finishedJob(blocker).backend, try await gate.finishedJob(next).backend]
                    #expect(ranOn.contains("a"), "a takes work again: \(ranOn)")
                    // A retryable job running on a when it dies runs again once, on b.
                    a.holdExecution()
                    survivor.holdExecution()
                    let occupying = try await alice.queueAccepted(Workflow.save(prefix: "occupies-b", color: 6))
                    _ = try await eventuallyAsync { try await survivor.queueIDs() == [occupying] }
                    let retried = try await alice.queueAccepted(Workflow.save(
                        prefix: "retried", color: 7, extra: #""extra_data": {"comfygate_retryable": true}, "#))
                    _ = try await eventuallyAsync { try await a.queueIDs() == [retried] }
                    #expect(try await a.historyIDs().allSatisfy { ![running, waiting, onB].contains($0) })
                    return retried
                }
                let retried = retriedJob
                _ = try await eventuallyAsync { try await gate.store.job(id: retried)?.state == .queued }
                survivor.releaseExecution()
                let again = try await gate.finishedJob(retried)
                #expect(again.state == .succeeded && again.backend == "b" && again.attempts == 2, "\(again.state) on \(again.backend ?? "-"), \(again.attempts)")
                let everything = try await survivor.historyIDs()
                #expect(everything.count == Set(everything).count, "nothing ran twice")
            }
        }
    }

    @Test func theAdminPageDrainsAndEnablesABackend() async throws {
        try await withBackends([.init(), .init()]) { gate, _ in
            _ = try await gate.makeUser("root", role: .admin)
            _ = try await gate.makeUser("alice")
            let admin = try await WebPagesTests.Browser.signIn(gate, "root")
            let page = try await admin.get("/admin")
            #expect(page.status == 200 && page.text.contains(#"action="/admin/backends/b/drain""#))
            let drained = try await admin.post("/admin/backends/b/drain")
            #expect(drained.status == 303 && drained.header("Location") == "/admin?notice=backend-drained#backends")
            #expect(try await gate.readiness().backend("b")?["drained"] as? Bool == true, "this gateway follows at once")
            #expect(try await admin.get("/admin").text.contains(#"action="/admin/backends/b/enable""#))
            #expect(try await gate.store.auditEvents(limit: 5).contains { $0.action == "backend.drain" && $0.userName == "root" })
            let alice = try await WebPagesTests.Browser.signIn(gate, "alice")
            #expect(try await alice.post("/admin/backends/a/drain").status == 403, "only admins drain")
            #expect(try await admin.post("/admin/backends/b/drain", csrf: "0000").status == 403, "a forged form is refused")
            #expect(try await admin.post("/admin/backends/nope/drain").status == 404)
            #expect(try await admin.post("/admin/backends/b/enable").status == 303)
            #expect(try await gate.readiness().backend("b")?["drained"] as? Bool == false)
        }
    }

    @Test func inputsArePlacedOnTheBackendThatRunsTheJob() async throws {
        try await withBackends([Self.options(diffusionModels: [Self.qwen]), Self.options(diffusionModels: [Self.edit])]) { gate, standIns in
            let alice = try await gate.member("alice")
            // The upload goes to the primary backend (a); the job can only run on b.
            let uploaded = try await alice.upload(StandInPNG.solidImage(width: 9, height: 5, color: 0x112233), name: "photo.png")
            #expect(uploaded.status == 200)
            let answer = try StandInJSON.parse(uploaded.text)
            let path = [answer["subfolder"]?.stringValue ?? "", answer["name"]?.stringValue ?? ""].filter { !$0.isEmpty }.joined(separator: "/")
            let graph = Workflow.body(nodes: [
                #""1": {"class_type": "LoadImage", "inputs": {"image": "\#(path)"}}"#,
                #""2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "placed"}}"#,
                #""3": {"class_type": "UNETLoader", "inputs": {"unet_name": "\#(Self.edit)", "weight_dtype": "default"}}"#,
            ])
            let id = try await alice.queueAccepted(graph)
            let job = try await gate.finishedJob(id)
            #expect(job.backend == "b" && job.state == .succeeded, "\(String(describing: job.failure))")
            let name = try #require(answer["name"]?.stringValue)
            #expect(standIns[1].fileContents(name: name, subfolder: answer["subfolder"]?.stringValue ?? "", type: .input)
                == StandInPNG.solidImage(width: 9, height: 5, color: 0x112233))
        }
    }

    @Test func readinessListsEveryBackend() async throws {
        try await withBackends([.init(), .init()]) { gate, _ in
            let ready = try await gate.readiness()
            #expect(ready.status == 200)
            let backends = try #require(ready.body["backends"] as? [[String: Any]])
            #expect(backends.map { $0["name"] as? String } == ["a", "b"])
            #expect(backends.allSatisfy { $0["state"] as? String == "up" && ($0["devices"] as? [Any])?.count == 1 })
        }
        // One backend down: still ready on the other.
        let refusing = try RefusingPort()
        try await withComfyUIStandIn(.init()) { standIn in
            let backends = [
                BackendConfiguration(name: "up", url: URL(string: standIn.baseURL)!),
                BackendConfiguration(name: "gone", url: URL(string: "http://127.0.0.1:\(refusing.port)")!),
            ]
            try await withGateway(in: standIn, store: try SQLiteStore.inMemory(), configure: { $0.configuredBackends = backends }) { gate in
                let ready = try await gate.readiness()
                #expect(ready.status == 200)
                #expect(ready.backend("gone")?["state"] as? String == "down")
                #expect((ready.backend("gone")?["error"] as? String)?.isEmpty == false)
            }
        }
        withExtendedLifetime(refusing) {}
    }
}

/// Runs `body` with a gateway in front of one stand-in per options, named a, b, c… in that order.
func withBackends<T: Sendable>(
    _ options: [ComfyUIStandIn.Options],
    configure: @escaping @Sendable (inout GatewayConfiguration) -> Void = { _ in },
    _ body: @escaping @Sendable (GatewayHarness, [ComfyUIStandIn]) async throws -> T
) async throws -> T {
    try await withStandIns(options[...], started: []) { standIns in
        let backends = standIns.enumerated().map { index, standIn in
            BackendConfiguration(name: String(UnicodeScalar(UInt8(ascii: "a") + UInt8(index))), url: URL(string: standIn.baseURL)!)
        }
        return try await withGateway(in: standIns[0], store: try SQLiteStore.inMemory(), configure: { configuration in
            configuration.configuredBackends = backends
            configure(&configuration)
        }) { gate in
            _ = try await eventuallyAsync { try await gate.readiness().backendsUp == standIns.count }
            return try await body(gate, standIns)
        }
    }
}

private func withStandIns<T: Sendable>(
    _ options: ArraySlice<ComfyUIStandIn.Options>, started: [ComfyUIStandIn], _ body: @Sendable ([ComfyUIStandIn]) async throws -> T
) async throws -> T {
    guard let first = options.first else { return try await body(started) }
    return try await withComfyUIStandIn(first) { standIn in
        try await withStandIns(options.dropFirst(), started: started + [standIn], body)
    }
}

extension ComfyUIStandIn {
    /// Whether a client's websocket (not the gateway job queue's own) is open on it.
    var hasClientWebSocket: Bool {
        recordedWebSockets.contains { socket in
            socket.isOpen && !socket.handshakeHeaders.contains { $0.name.lowercased() == "user-agent" && $0.value == "comfygate-jobs" }
        }
    }

    /// The prompt ids in its queue, running and waiting (asked directly).
    func queueIDs() async throws -> [String] {
        let queue = try StandInJSON.parse(try await TestHTTP.send(.GET, "\(baseURL)/queue").text)
        return ["queue_running", "queue_pending"].flatMap { list in
            (queue[list]?.arrayValue ?? []).compactMap { $0.arrayValue?.dropFirst().first?.stringValue }
        }
    }

    /// The prompt ids in its history (asked directly).
    func historyIDs() async throws -> [String] {
        (try StandInJSON.parse(try await TestHTTP.send(.GET, "\(baseURL)/history").text).objectValue ?? []).map(\.0)
    }
}

extension GatewayHarness {
    /// A job once it has finished (within 20 s).
    func finishedJob(_ id: String) async throws -> Job {
        var found: Job?
        _ = try await eventuallyAsync {
            found = try await store.job(id: id)
            return found?.state.isFinished ?? false
        }
        guard let found, found.state.isFinished else { throw IsolationTestError.unexpected("job \(id) did not finish") }
        return found
    }

    /// `GET /readyz`.
    func readiness() async throws -> Readiness {
        let answer = try await TestHTTP.send(.GET, baseURL + "/readyz")
        return Readiness(status: answer.status, body: try answer.json())
    }
}

struct Readiness {
    let status: Int
    let body: [String: Any]

    func backend(_ name: String) -> [String: Any]? {
        (body["backends"] as? [[String: Any]])?.first { $0["name"] as? String == name }
    }

    /// Backends that answer, whose circuit breaker is closed and whose node catalog the gateway has read.
    var backendsUp: Int {
        (body["backends"] as? [[String: Any]])?.count { backend in
            backend["state"] as? String == "up" && backend["breaker"] as? String == "closed" && backend["node_catalog"] as? Bool == true
        } ?? 0
    }
}

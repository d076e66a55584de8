import AsyncHTTPClient
import ComfyGateCore
import ComfyGatePostgres
import ComfyGateTestSupport
import ComfyUIClient
import Foundation
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import Testing

/// Two `comfygate serve` processes on one PostgreSQL database in front of the same two ComfyUI stand-ins, and
/// `comfygate backends` reading what they record.
@Suite(.serialized) struct ReplicaTests {
    @Test func twoReplicasShareOneQueueAndRunEveryJobOnce() async throws {
        try await Self.withReplicaDeployment { deployment in
            let (first, second) = (deployment.replicas[0], deployment.replicas[1])
            // Hundreds of jobs submitted at once, half through each replica.
            let ids = try await Self.submit(200, alternatingOver: [first.port, second.port], token: deployment.token)
            #expect(ids.count == 200)
            do {
                try await Self.waitUntilFinished(ids, port: second.port, token: deployment.token, within: .seconds(120))
            } catch {
                var queues: [String] = []
                for standIn in deployment.standIns {
                    let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: standIn.baseURL + "/queue"), timeout: .seconds(10))
                    queues.append(String(buffer: try await response.body.collect(upTo: 1 << 20)))
                }
                let ran = try await deployment.standIns.asyncFlatMap { try await $0.historyIDsDirect() }
                Issue.record("stand-in queues: \(queues); ran \(ran.count) of \(ids.count)")
                throw error
            }
            let ran = try await deployment.standIns.asyncFlatMap { try await $0.historyIDsDirect() }
            #expect(ran.count == Set(ran).count, "no job ran twice: \(ran.count - Set(ran).count) repeats")
            #expect(Set(ids).isSubset(of: Set(ran)), "every job ran")
            let onA = try await deployment.standIns[0].historyIDsDirect().count
            let onB = try await deployment.standIns[1].historyIDsDirect().count
            #expect(onA > 0 && onB > 0, "both backends took work: \(onA) and \(onB)")

            // A replica that claimed a job and died before ComfyUI had it: once its lease ends, another runs it.
            let store = try PostgresStore(url: deployment.databaseURL, logger: Logger(label: "replica-test"))
            let orphan = try await withPostgres(store) { store -> Job? in
                let user = try #require(try await store.user(named: "alice"))
                let job = Job(userID: user.id, source: .native, workflow: Self.graph(color: 99), createdAt: Date())
                try await store.insertJob(job)
                let claimed = try await store.claimJob(id: job.id, backend: "a", slots: 2, at: Date())
                #expect(claimed?.state == .running, "claimed as a replica would, then that replica is gone")
                let deadline = ContinuousClock.now + .seconds(30)
                while ContinuousClock.now < deadline {
                    if let current = try await store.job(id: job.id), current.state.isFinished { return current }
                    try await Task.sleep(for: .milliseconds(100))
                }
                return try await store.job(id: job.id)
            }
            #expect(orphan?.state == .succeeded && orphan?.attempts == 2, "taken back after its lease, run once: \(String(describing: orphan?.state))")
            let orphanID = orphan?.id ?? ""
            #expect(try await deployment.standIns.asyncFlatMap { try await $0.historyIDsDirect() }.filter { $0 == orphanID }.count == 1)

            // A websocket on one replica hears of the jobs the other dispatched.
            let client = try ComfyUIClient(
                baseURL: "http://127.0.0.1:\(second.port)", credential: .bearer(deployment.token), httpClient: HTTPClient.shared)
            let heard = try await withDeadline(.seconds(30)) {
                try await client.withEvents(clientID: "replica-tab") { session in
                    try await Task.sleep(for: .milliseconds(500))  // the socket joins the second backend after its handshake
                    let sent = Set(try await Self.submit(4, alternatingOver: [first.port], token: deployment.token, clientID: "replica-tab"))
                    var finished: Set<String> = []
                    for try await event in session.events {
                        if case .executionSuccess(let promptID) = event, sent.contains(promptID) { finished.insert(promptID) }
                        if finished == sent { break }
                    }
                    return finished == sent
                }
            }
            #expect(heard, "every job submitted through replica 1 was told on replica 2's socket")

            // One replica killed while jobs are being submitted and dispatched: what it accepted still runs, once.
            let more = Task { try await Self.submit(60, alternatingOver: [first.port, second.port], token: deployment.token, tolerateFailures: true) }
            try await Task.sleep(for: .milliseconds(150))
            first.process.send(SIGKILL)
            _ = await first.process.exitStatus(within: .seconds(10))
            let accepted = try await more.value
            #expect(accepted.count >= 30, "the surviving replica kept accepting: \(accepted.count)")
            try await Self.waitUntilFinished(accepted, port: second.port, token: deployment.token, within: .seconds(90))
            let all = try await deployment.standIns.asyncFlatMap { try await $0.historyIDsDirect() }
            #expect(all.count == Set(all).count, "no job ran twice after the kill")
            #expect(Set(accepted).isSubset(of: Set(all)))

            // What the replicas record, read by the command line; a drain through it reaches the running replica.
            let listed = try await CommandRunner.run(["backends", "--json", "--config", deployment.config.path])
            #expect(listed.status == 0, "\(listed.stderr)")
            let report = try #require(try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [String: Any])
            #expect(report["version"] as? Int == 1)
            let backends = try #require(report["backends"] as? [[String: Any]])
            #expect(backends.map { $0["name"] as? String } == ["a", "b"])
            #expect(backends.allSatisfy { $0["state"] as? String == "up" && $0["drained"] as? Bool == false })
            let drained = try await CommandRunner.run(["backends", "drain", "b", "--config", deployment.config.path])
            #expect(drained.status == 0, "\(drained.stderr)")
            #expect(drained.stderr.contains("drained b"))
            let unknown = try await CommandRunner.run(["backends", "drain", "nope", "--config", deployment.config.path])
            #expect(unknown.status == 2)
            #expect(unknown.stderr.contains("no backend is named 'nope' (backends: a, b)"))
            let afterDrain = try await Self.submit(6, alternatingOver: [second.port], token: deployment.token, settle: .seconds(2))
            try await Self.waitUntilFinished(afterDrain, port: second.port, token: deployment.token, within: .seconds(30))
            let ranOnB = Set(try await deployment.standIns[1].historyIDsDirect())
            #expect(ranOnB.isDisjoint(with: afterDrain), "a drained backend takes nothing new")
            #expect(try await CommandRunner.run(["backends", "enable", "b", "--config", deployment.config.path]).status == 0)
        }
    }

    // MARK: Deployment

    struct Deployment: Sendable {
        let standIns: [ComfyUIStandIn]
        let replicas: [ServeProcess]
        let databaseURL: String
        let config: URL
        let token: String
    }

    /// Two stand-ins (a, b), a fresh database, a user with a token, two replicas; everything stopped afterwards.
    static func withReplicaDeployment(_ body: @Sendable (Deployment) async throws -> Void) async throws {
        guard let serverURL = ProcessInfo.processInfo.environment["COMFYGATE_TEST_POSTGRES_URL"], !serverURL.isEmpty else {
            Issue.record("COMFYGATE_TEST_POSTGRES_URL is not set: run the tests through scripts/test")
            return
        }
        let databaseURL = try await PostgresTestServer.createDatabase(on: serverURL)
        let directory = try AccountCommandTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try await withComfyUIStandIn(.init()) { a in
            try await withComfyUIStandIn(.init()) { b in
                let config = directory.appendingPathComponent("comfygate.toml")
                try """
                    database_url = "\(databaseURL)"
                    data = "\(directory.appendingPathComponent("data").path)"

                    [jobs]
                    in_flight = 2
                    dispatch_lease = "3s"

                    [[backends]]
                    name = "a"
                    url = "\(a.baseURL)"

                    [[backends]]
                    name = "b"
                    url = "\(b.baseURL)"
                    """.write(to: config, atomically: true, encoding: .utf8)
                let common = ["--config", config.path]
                #expect(try await CommandRunner.run(["users", "add", "alice", "--role", "user", "--password-stdin"] + common,
                    standardInput: "correct-horse-battery\n").status == 0)
                let token = try await CommandRunner.run(["tokens", "create", "--user", "alice"] + common)
                #expect(token.status == 0, "\(token.stderr)")
                // At debug level a replica logs each step of its shutdown, which a replica that does not stop shows.
                let serve = common + ["--log-level", "debug"]
                try await ServeProcess.running(serve) { first in
                    try await ServeProcess.running(serve) { second in
                        try await body(Deployment(
                            standIns: [a, b], replicas: [first, second], databaseURL: databaseURL, config: config,
                            token: token.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
                    }
                }
            }
        }
    }

    static func graph(color: Int) -> String {
        #"{"1": {"class_type": "EmptyImage", "inputs": {"width": 4, "height": 4, "batch_size": 1, "color": \#(color)}}, "#
            + #""2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "replica"}}}"#
    }

    /// Submits `count` jobs, 16 at a time, spread over the ports in turn; the ids of the accepted ones.
    static func submit(
        _ count: Int, alternatingOver ports: [Int], token: String, tolerateFailures: Bool = false, settle: Duration = .zero,
        clientID: String? = nil
    ) async throws -> [String] {
        try await Task.sleep(for: settle)
        return try await withThrowingTaskGroup(of: String?.self) { group in
            var ids: [String] = []
            for index in 0..<count {
                if index >= 16, let id = try await group.next() { id.map { ids.append($0) } }
                let port = ports[index % ports.count]
                group.addTask {
                    var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/prompt")
                    request.method = .POST
                    request.headers.add(name: "Authorization", value: "Bearer \(token)")
                    request.headers.add(name: "Content-Type", value: "application/json")
                    let client = clientID.map { #", "client_id": "\#($0)""# } ?? ""
                    request.body = .bytes(ByteBuffer(string: #"{"prompt": \#(graph(color: index))\#(client)}"#))
                    do {
                        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
                        let body = try await response.body.collect(upTo: 1 << 20)
                        guard response.status == .ok else {
                            if tolerateFailures { return nil }
                            throw ReplicaTestError.refused(Int(response.status.code), String(buffer: body))
                        }
                        let answer = try JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any]
                        return answer?["prompt_id"] as? String
                    } catch where tolerateFailures {
                        return nil
                    }
                }
            }
            for try await id in group { id.map { ids.append($0) } }
            return ids
        }
    }

    /// Waits until the gateway's native history has every job.
    static func waitUntilFinished(_ ids: [String], port: Int, token: String, within timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        var missing = Set(ids)
        while !missing.isEmpty, ContinuousClock.now < deadline {
            for id in missing {
                var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/history/\(id)")
                request.headers.add(name: "Authorization", value: "Bearer \(token)")
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
                let body = try await response.body.collect(upTo: 1 << 20)
                if let entry = (try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any])?[id] as? [String: Any],
                    (entry["status"] as? [String: Any])?["completed"] as? Bool == true
                {
                    missing.remove(id)
                }
            }
            if !missing.isEmpty { try await Task.sleep(for: .milliseconds(200)) }
        }
        if !missing.isEmpty { throw ReplicaTestError.unfinished(missing.count) }
    }
}

enum ReplicaTestError: Error {
    case refused(Int, String)
    case unfinished(Int)
}

/// Runs `body` with a PostgreSQL store's client running beside it.
private func withPostgres<T: Sendable>(_ store: PostgresStore, _ body: @Sendable (PostgresStore) async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await store.run() }
        defer { group.cancelAll() }
        return try await body(store)
    }
}

/// Fresh databases on the test server, made with its own `psql`.
enum PostgresTestServer {
    /// Creates an empty, uniquely named database; its URL.
    static func createDatabase(on serverURL: String) async throws -> String {
        let name = "comfygate_replicas_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12).lowercased()
        let created = try await ChildProcess.run(["psql", serverURL, "-v", "ON_ERROR_STOP=1", "-c", "CREATE DATABASE \(name)"], timeout: .seconds(30))
        guard created.status == 0 else { throw ReplicaTestError.refused(Int(created.status), created.output) }
        var components = try #require(URLComponents(string: serverURL))
        components.path = "/" + name
        return try #require(components.string)
    }
}

extension ComfyUIStandIn {
    /// The prompt ids in its history, asked directly.
    func historyIDsDirect() async throws -> [String] {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: baseURL + "/history"), timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 64 << 20)
        return ((try JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any]) ?? [:]).keys.map { $0 }
    }
}

extension Array where Element: Sendable {
    func asyncFlatMap<T>(_ transform: (Element) async throws -> [T]) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result += try await transform(element) }
        return result
    }
}

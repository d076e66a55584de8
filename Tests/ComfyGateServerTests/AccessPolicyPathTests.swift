import ComfyGateCore
import ComfyGatePolicy
import ComfyGateTestSupport
import Foundation
import NIOHTTP1
import Testing

/// Every access-policy case runs through every request path the gateway has — the event-loop fast path (a bodiless
/// request whose credential is cached), the Hummingbird path (the same request with a body framing the fast path
/// does not take) and the websocket upgrade (the same target as a handshake) — so no rule can hold on one path and
/// not on another.
@Suite struct AccessPolicyPathTests {
    enum Caller: String, Sendable {
        case alice, bob, viewer, admin
    }

    /// What the gateway must do with the request.
    enum Outcome: Sendable {
        /// Refused by the gateway with this status and a JSON `error` naming this text; ComfyUI never asked.
        case refused(Int, String)
        /// Sent on to ComfyUI, whose answer comes back.
        case forwarded
        /// Answered by the gateway with exactly this body; ComfyUI never asked.
        case answered(String)
        /// Answered by the gateway from its jobs with a body holding this text (the job's history); ComfyUI never
        /// asked by the request.
        case answeredFromJobs(containing: String)
    }

    struct Case: Sendable, CustomTestStringConvertible {
        let caller: Caller
        let method: String
        let target: String
        let outcome: Outcome
        var testDescription: String { "\(caller) \(method) \(target)" }

        /// A websocket handshake is a GET (RFC 6455 §4.1): other methods are checked on the two HTTP paths only.
        var hasWebSocketForm: Bool { method == "GET" }
    }

    /// The request paths.
    enum Path: String, CaseIterable, Sendable {
        case fast = "fast path"
        case hummingbird = "Hummingbird path"
        case webSocket = "websocket upgrade"
    }

    /// alice's prompt, queued with a prompt id of her choosing.
    static let alicePrompt = "alice-prompt-1"
    static let aliceOutput = "/view?filename=a_00001_.png&subfolder=users/alice&type=output"

    static let cases: [Case] = [
        // Roles.
        Case(caller: .viewer, method: "POST", target: "/prompt", outcome: .refused(403, "role viewer may not POST")),
        Case(caller: .viewer, method: "POST", target: "/api/interrupt", outcome: .refused(403, "role viewer may not POST")),
        Case(caller: .viewer, method: "GET", target: "/queue", outcome: .forwarded),
        Case(caller: .viewer, method: "GET", target: "/ws?clientId=v1", outcome: .forwarded),
        // Admin-only routes, however the path is spelled.
        Case(caller: .bob, method: "GET", target: "/internal/logs", outcome: .refused(403, "/internal/* is for admins")),
        Case(caller: .bob, method: "GET", target: "/api/internal/logs", outcome: .refused(403, "/internal/* is for admins")),
        Case(caller: .bob, method: "GET", target: "/inter%6Eal/logs", outcome: .refused(403, "/internal/* is for admins")),
        Case(caller: .bob, method: "GET", target: "/api/%69nternal/logs", outcome: .refused(403, "/internal/* is for admins")),
        Case(caller: .bob, method: "GET", target: "/internal%2Flogs", outcome: .refused(403, "/internal/* is for admins")),
        Case(caller: .bob, method: "GET", target: "/internal/", outcome: .refused(403, "/internal/* is for admins")),
        Case(caller: .bob, method: "GET", target: "/manager/queue/status", outcome: .refused(403, "/manager/* is for admins")),
        Case(caller: .bob, method: "GET", target: "/api/customnode/getlist", outcome: .refused(403, "/customnode/* is for admins")),
        Case(caller: .bob, method: "POST", target: "/free", outcome: .refused(403, "POST /free is for admins")),
        Case(caller: .bob, method: "POST", target: "/api/users", outcome: .refused(403, "POST /users is for admins")),
        // Dot segments resolve to another route than the one checked.
        Case(caller: .bob, method: "GET", target: "/x/../internal/logs", outcome: .refused(400, "'.' or '..' segments")),
        Case(caller: .bob, method: "GET", target: "/x/%2E%2E/internal/logs", outcome: .refused(400, "'.' or '..' segments")),
        Case(caller: .bob, method: "GET", target: "/./internal/logs", outcome: .refused(400, "'.' or '..' segments")),
        Case(caller: .admin, method: "GET", target: "/api/../internal/logs", outcome: .refused(400, "'.' or '..' segments")),
        // Files.
        Case(caller: .bob, method: "GET", target: aliceOutput, outcome: .refused(403, "is not one of your files")),
        Case(caller: .bob, method: "HEAD", target: aliceOutput, outcome: .refused(403, "is not one of your files")),
        Case(caller: .bob, method: "GET", target: "/api" + aliceOutput, outcome: .refused(403, "is not one of your files")),
        Case(caller: .bob, method: "GET", target: "/view?filename=a_00001_.png&subfolder=users/bob/../alice&type=output",
            outcome: .refused(403, "is not one of your files")),
        Case(caller: .bob, method: "GET", target: "/view?filename=a_00001_.png%20%5Boutput%5D&subfolder=users%2Falice",
            outcome: .refused(403, "is not one of your files")),
        Case(caller: .bob, method: "GET", target: "/view?filename=up.png&subfolder=users/alice&type=input",
            outcome: .refused(403, "is not one of your files")),
        Case(caller: .alice, method: "GET", target: aliceOutput, outcome: .forwarded),
        Case(caller: .alice, method: "HEAD", target: aliceOutput, outcome: .forwarded),
        Case(caller: .alice, method: "GET", target: "/view?filename=up.png&subfolder=users/alice&type=input", outcome: .forwarded),
        // Another user's prompt is answered like an unknown one.
        Case(caller: .bob, method: "GET", target: "/history/\(alicePrompt)", outcome: .answered("{}")),
        Case(caller: .bob, method: "GET", target: "/api/history/\(alicePrompt)", outcome: .answered("{}")),
        Case(caller: .alice, method: "GET", target: "/history/\(alicePrompt)", outcome: .answeredFromJobs(containing: alicePrompt)),
        // Admins go everywhere.
        Case(caller: .admin, method: "GET", target: "/internal/logs", outcome: .forwarded),
        Case(caller: .admin, method: "GET", target: "/api/%69nternal/logs", outcome: .forwarded),
        Case(caller: .admin, method: "GET", target: "/manager/queue/status", outcome: .forwarded),
        Case(caller: .admin, method: "POST", target: "/free", outcome: .forwarded),
        Case(caller: .admin, method: "GET", target: aliceOutput, outcome: .forwarded),
        Case(caller: .admin, method: "GET", target: "/history/\(alicePrompt)", outcome: .answeredFromJobs(containing: alicePrompt)),
        // `[policy]` patterns: denied_paths = ["/system_stats"], admin_only_paths = ["/models/*"].
        Case(caller: .admin, method: "GET", target: "/system_stats", outcome: .refused(403, "closed on this gateway")),
        Case(caller: .bob, method: "GET", target: "/api/system_stats/", outcome: .refused(403, "closed on this gateway")),
        Case(caller: .alice, method: "GET", target: "/%73ystem_stats", outcome: .refused(403, "closed on this gateway")),
        Case(caller: .bob, method: "GET", target: "/models/checkpoints", outcome: .refused(403, "/models/* (policy) is for admins")),
        Case(caller: .viewer, method: "GET", target: "/api/models", outcome: .refused(403, "/models/* (policy) is for admins")),
        Case(caller: .admin, method: "GET", target: "/api/models/checkpoints", outcome: .forwarded),
        Case(caller: .bob, method: "GET", target: "/embeddings", outcome: .forwarded),
    ]

    @Test(arguments: cases)
    func theDecisionIsTheSameOnEveryRequestPath(_ policyCase: Case) async throws {
        try await withGateway(configure: {
            $0.policy.deniedPaths = [PathPattern("/system_stats")].compactMap { $0 }
            $0.policy.adminOnlyPaths = [PathPattern("/models/*")].compactMap { $0 }
        }) { gate in
            try await gate.settleStartupProbe()
            let alice = try await gate.member("alice")
            let tokens: [Caller: String] = [
                .alice: alice.token,
                .bob: try await gate.member("bob").token,
                .viewer: try await gate.member("vera", role: .viewer).token,
                .admin: try await gate.member("root", role: .admin).token,
            ]
            try gate.standIn.addFile([0x89, 0x50, 0x4E, 0x47], name: "a_00001_.png", subfolder: "users/alice", type: .output)
            try gate.standIn.addFile([0x89, 0x50, 0x4E, 0x47], name: "up.png", subfolder: "users/alice", type: .input)
            _ = try await alice.queueAccepted(Workflow.save(prefix: "a", extra: #""prompt_id": "\#(Self.alicePrompt)", "#))
            _ = try await gate.finishedEntry(Self.alicePrompt)
            let token = try #require(tokens[policyCase.caller])
            // The credential is cached from here on: bodiless requests may take the fast path.
            #expect(try await TestHTTP.send(.GET, gate.baseURL + "/prompt", headers: [("Authorization", "Bearer \(token)")]).status == 200)

            for path in Path.allCases where path != .webSocket || policyCase.hasWebSocketForm {
                gate.standIn.clearRecordings()
                let socketsBefore = gate.comfyUIWebSockets.count
                let answer = try await Self.send(policyCase, token: token, on: path, port: gate.port)
                let reachedComfyUI = !gate.comfyUIRequests.isEmpty || gate.comfyUIWebSockets.count > socketsBefore
                let label = Comment(rawValue: "\(path.rawValue): \(policyCase.testDescription) → \(answer)")
                switch (policyCase.outcome, path) {
                case (.refused(let status, let reason), _):
                    #expect(answer.status == status, label)
                    // A HEAD answer has no body to name the reason in.
                    #expect(policyCase.method == "HEAD" || answer.error?.contains(reason) == true, label)
                    #expect(!reachedComfyUI, label)
                case (.answered, .webSocket):
                    // An answer of the gateway's own is no websocket.
                    #expect(answer.status == 400, label)
                    #expect(answer.error?.contains("is not a websocket") == true, label)
                    #expect(!reachedComfyUI, label)
                case (.answered(let body), _):
                    #expect(answer.status == 200, label)
                    #expect(policyCase.method == "HEAD" || answer.text == body, label)
                    #expect(!reachedComfyUI, label)
                case (.forwarded, .webSocket), (.answeredFromJobs, .webSocket):
                    // ComfyUI accepts a websocket on /ws only; anywhere else it refuses the handshake the gateway
                    // passed on, and the gateway says so.
                    if policyCase.target.hasPrefix("/ws") {
                        #expect(answer.status == 101, label)
                        #expect(reachedComfyUI, label)
                    } else {
                        #expect(answer.status == 502, label)
                        #expect(answer.error == "upstream refused the websocket upgrade", label)
                    }
                case (.answeredFromJobs(let text), _):
                    #expect(answer.status == 200, label)
                    #expect(policyCase.method == "HEAD" || answer.text.contains("\"\(text)\""), label)
                    #expect(policyCase.method == "HEAD" || answer.text.contains("\"outputs\""), label)
                    #expect(!reachedComfyUI, label)
                case (.forwarded, _):
                    // The stand-in records its status once its answer is out.
                    _ = try await eventually(within: .seconds(5)) { gate.comfyUIRequests.first.map { $0.status != 0 } ?? true }
                    let request = gate.comfyUIRequests.first
                    #expect(request != nil, label)
                    #expect(request.map { answer.status == $0.status } ?? false, "ComfyUI's own answer comes back: \(label)")
                }
            }
        }
    }

    /// The case's request on one path, on a fresh connection.
    static func send(_ policyCase: Case, token: String, on path: Path, port: Int) async throws -> RawAnswer {
        let head = "\(policyCase.method) \(policyCase.target) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n"
            + "Authorization: Bearer \(token)\r\n"
        switch path {
        case .fast:
            // Bodiless: nothing or `Content-Length: 0`, as FastProxyHandler.fastRoute takes it.
            let length = policyCase.method == "POST" ? "Content-Length: 0\r\n" : ""
            return try await RawHTTP.exchange(port: port, head + length + "\r\n", isHead: policyCase.method == "HEAD")
        case .hummingbird:
            // A chunked (empty) body: the fast path never takes a request with `Transfer-Encoding`.
            return try await RawHTTP.exchange(
                port: port, head + "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", isHead: policyCase.method == "HEAD"
            )
        case .webSocket:
            return try await RawHTTP.handshake(port: port, target: policyCase.target, token: token)
        }
    }
}

import ComfyGateCore
import ComfyGateTestSupport
import Foundation
import Testing

/// The official `comfy-sdk` (PyPI, installed by `scripts/test`) runs its usual flow against the gateway unchanged:
/// an uploaded input, a submitted workflow, progress over server-sent events, downloaded outputs, a cancelled job,
/// `run()`, typed errors. The script is `Tests/ComfySDK/sdk_flow.py`; it asks this test to hold and release the
/// stand-in's execution around its cancellation, so the job is cancelled while it runs.
@Suite struct ComfySDKTests {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("ComfySDK/sdk_flow.py")

    @Test func theOfficialSDKRunsItsUsualFlowUnchanged() async throws {
        try await withGateway { gate in
            let (alice, _, _) = try await IsolationTests.members(gate)
            let run = try await DedicatedThread.run(name: "comfy-sdk") {
                try Self.runScript(baseURL: gate.baseURL, token: alice.token, standIn: gate.standIn)
            }
            #expect(run.status == 0, "comfy-sdk flow failed:\n\(run.output)\n\(run.errors)")
            #expect(run.output.contains("comfy-sdk flow: all expectations held"))
            // What the SDK did is in the gateway's store: jobs and assets of alice's, nobody else's.
            let jobs = try await gate.store.jobs(userID: nil, states: nil, limit: 100, createdBefore: nil)
            #expect(jobs.count >= 4 && jobs.allSatisfy { $0.userID == alice.id && $0.source == .v2 })
            #expect(jobs.contains { $0.state == .canceled })
        }
    }

    /// Runs the script to its end (at most three minutes), answering its requests; its exit status and output.
    static func runScript(baseURL: String, token: String, standIn: ComfyUIStandIn) throws -> (status: Int32, output: String, errors: String) {
        var environment = ProcessInfo.processInfo.environment
        environment["COMFY_BASE_URL"] = baseURL
        environment["COMFY_API_KEY"] = token
        let process = try ChildProcess(["python3", script.path], environment: environment, standardInput: .pipe)
        let errors = Thread.detachedRead(process.standardError)
        let deadline = DispatchTime.now() + .seconds(180)
        DispatchQueue.global().asyncAfter(deadline: deadline) { process.send(SIGTERM) }

        var printed = ""
        var pending = Data()
        while true {
            let chunk = process.standardOutput?.readAvailableBytes() ?? Data()
            if chunk.isEmpty { break }
            pending += chunk
            while let newline = pending.firstIndex(of: 0x0A) {
                let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
                pending = Data(pending[pending.index(after: newline)...])
                printed += line + "\n"
                switch line {
                case "@@ hold execution": standIn.holdExecution()
                case "@@ release execution": standIn.releaseExecution()
                default: continue
                }
                process.standardInput?.write(Data("done\n".utf8))
            }
        }
        let status = process.waitForExit()
        standIn.releaseExecution()
        return (status, printed, String(decoding: errors.wait(), as: UTF8.self))
    }
}

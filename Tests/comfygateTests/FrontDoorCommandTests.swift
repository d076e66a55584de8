import ComfyGateTestSupport
import Foundation
import Testing

/// What a new user meets first: account commands that never create an empty store somewhere unexpected, and
/// `models` answering usage errors plainly.
@Suite struct FrontDoorCommandTests {
    @Test func aReadOrAccountCommandNeverCreatesAnEmptyStore() async throws {
        let directory = try AccountCommandTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = directory.appendingPathComponent("data")

        for arguments in [["users", "list"], ["tokens", "create", "--user", "admin"], ["usage"]] {
            let answer = try await CommandRunner.run(arguments + ["--data", data.path])
            #expect(answer.status == 2, "\(arguments): \(answer.stderr)")
            #expect(answer.stderr.contains("no ComfyGate store at \(data.path)/comfygate.sqlite (data directory from --data)"))
            #expect(answer.stderr.contains("comfygate users add"))
            #expect(!FileManager.default.fileExists(atPath: data.path), "\(arguments) created the data directory")
        }
        // From the default, run in another directory: the message says which directory the default is relative to.
        let elsewhere = try await CommandRunner.run(["users", "list"], in: directory)
        #expect(elsewhere.status == 2)
        #expect(elsewhere.stderr.contains("the default ./comfygate-data, relative to \(directory.path)"))

        // `users add` creates it; then the others find it.
        #expect(try await CommandRunner.run(["users", "add", "admin", "--role", "admin", "--data", data.path]).status == 0)
        #expect(try await CommandRunner.run(["users", "list", "--data", data.path]).status == 0)
        let viaEnvironment = try await CommandRunner.run(["users", "list"], environment: ["COMFYGATE_DATA": data.path])
        #expect(viaEnvironment.status == 0 && viaEnvironment.stdout.contains("admin"), "\(viaEnvironment.stderr)")
    }

    @Test func modelsCommandsSayWhatIsMissing() async throws {
        let list = try await CommandRunner.run(["models", "list", "--json"])
        #expect(list.status == 0, "\(list.stderr)")
        let listed = try #require(try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [String: Any])
        #expect(listed["version"] as? Int == 1)
        let files = try #require(listed["files"] as? [[String: Any]])
        #expect(files.contains { $0["name"] as? String == "qwen_image_edit_fp8_e4m3fn.safetensors" && $0["folder"] as? String == "diffusion_models" })
        #expect(files.allSatisfy { ($0["url"] as? String)?.hasPrefix("https://huggingface.co/") == true })

        let noDirectory = try await CommandRunner.run(["models", "download"])
        #expect(noDirectory.status == 2 && noDirectory.stderr.contains("--models-dir DIR or COMFYUI_MODELS_DIR"))
        let unknown = try await CommandRunner.run(["models", "download", "sdxl", "--models-dir", "/tmp"])
        #expect(unknown.status == 2 && unknown.stderr.contains("'sdxl' is neither a model file nor a set"))
        let badMirror = try await CommandRunner.run(["models", "list"], environment: ["HF_ENDPOINT": "ftp://mirror"])
        #expect(badMirror.status == 2 && badMirror.stderr.contains("HF_ENDPOINT"))
    }

    @Test func serveSaysAtStartWhetherComfyUIAnswers() async throws {
        let directory = try AccountCommandTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let closed = try RefusingPort()
        let alone = try await ServeProcess.start(["--data", directory.path, "--upstream", "http://127.0.0.1:\(closed.port)"])
        _ = try await eventually(within: .seconds(10)) { alone.standardError.contains("ComfyUI does not answer") }
        _ = alone.stop()
        #expect(alone.standardError.contains(#"msg="ComfyUI does not answer""#), "\(alone.standardError)")
        #expect(alone.standardError.contains("upstream=http://127.0.0.1:\(closed.port)"))

        try await withComfyUIStandIn { standIn in
            let gate = try await ServeProcess.start(["--data", directory.path, "--upstream", standIn.baseURL])
            _ = try await eventually(within: .seconds(10)) { gate.standardError.contains("ComfyUI answers") }
            _ = gate.stop()
            #expect(gate.standardError.contains(#"msg="ComfyUI answers""#), "\(gate.standardError)")
            #expect(!gate.standardError.contains("does not answer"))
        }
    }

    @Test func theAuditTrailIsReadByUserAndTime() async throws {
        let directory = try AccountCommandTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = ["--data", directory.path]
        #expect(try await CommandRunner.run(["users", "add", "alice", "--role", "user"] + data).status == 0)
        #expect(try await CommandRunner.run(["users", "add", "bob", "--role", "user"] + data).status == 0)
        #expect(try await CommandRunner.run(["users", "disable", "bob"] + data).status == 0)

        let all = try await CommandRunner.run(["audit", "--json"] + data)
        #expect(all.status == 0, "\(all.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(all.stdout.utf8)) as? [String: Any])
        #expect(json["version"] as? Int == 1)
        let events = try #require(json["events"] as? [[String: Any]])
        #expect(events.map { $0["action"] as? String } == ["user.disabled", "user.created", "user.created"], "newest first")
        let bobs = try await CommandRunner.run(["audit", "--user", "BOB", "--since", "1h"] + data)
        #expect(bobs.status == 0 && bobs.stdout.hasPrefix("TIME"))
        #expect(bobs.stdout.contains("user.disabled") && !bobs.stdout.contains("alice"), "\(bobs.stdout)")
        #expect(try await CommandRunner.run(["audit", "--since", "soon"] + data).status == 2)
    }
}

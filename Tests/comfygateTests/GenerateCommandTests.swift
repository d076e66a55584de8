import AsyncHTTPClient
import ComfyGateTestSupport
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import Testing

/// `comfygate generate` against the stand-in, bare and behind `comfygate serve`: the built-in templates with their
/// overrides, an input image, outputs saved under their names, and each way a run fails.
@Suite struct GenerateCommandTests {
    /// The stand-in with the Qwen FP8 model files in place.
    static var qwenModels: ComfyUIStandIn.Options {
        var options = ComfyUIStandIn.Options()
        options.models["diffusion_models", default: []] += ["qwen_image_fp8_e4m3fn.safetensors", "qwen_image_edit_fp8_e4m3fn.safetensors"]
        options.models["text_encoders", default: []] += ["qwen_2.5_vl_7b_fp8_scaled.safetensors"]
        options.models["vae", default: []] += ["qwen_image_vae.safetensors"]
        return options
    }

    static func json(_ url: String) async throws -> [String: Any] {
        let response = try await ServeCommandTests.client.execute(HTTPClientRequest(url: url), timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 16 << 20)
        return try JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any] ?? [:]
    }

    static func pngWidth(_ data: Data) -> Int? {
        let bytes = [UInt8](data)
        guard bytes.count >= 24, bytes[0..<8] == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] else { return nil }
        return bytes[16..<20].reduce(0) { $0 << 8 | Int($1) }
    }

    @Test func theTextToImageTemplateRunsWithItsOverridesAndSavesItsOutput() async throws {
        let directory = try AccountCommandTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try await withComfyUIStandIn(Self.qwenModels) { standIn in
            let result = try await CommandRunner.run([
                "generate", "--template", "qwen-image", "--url", standIn.baseURL, "--prompt", "a lighthouse at dusk", "--seed", "7",
                "--steps", "4", "--size", "256x192", "--out", directory.path, "--json",
            ])
            #expect(result.status == 0, "\(result.stderr)")
            let json = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
            #expect(json["version"] as? Int == 1)
            let output = try #require((json["outputs"] as? [[String: Any]])?.first)
            let path = try #require(output["path"] as? String)
            #expect(path.hasPrefix(directory.path) && (output["filename"] as? String)?.hasPrefix("qwen-image") == true)
            #expect(Self.pngWidth(try Data(contentsOf: URL(fileURLWithPath: path))) == 256, "the size override reached the latent")
            // What ComfyUI ran: the overrides in place.
            let history = try await Self.json(standIn.baseURL + "/history")
            let entry = try #require(history.values.first as? [String: Any])
            let graph = try #require((entry["prompt"] as? [Any])?[2] as? [String: [String: Any]])
            let sampler = try #require(graph["3"]?["inputs"] as? [String: Any])
            #expect(sampler["seed"] as? Int == 7 && sampler["steps"] as? Int == 4)
            #expect((graph["6"]?["inputs"] as? [String: Any])?["text"] as? String == "a lighthouse at dusk")
            // Plain progress on a pipe: each node, and the sampler's steps.
            #expect(result.stderr.contains("node 3 (KSampler)") && result.stderr.contains("step 4/4"), "\(result.stderr)")
        }
    }

    @Test func theEditTemplateUploadsItsImageBehindComfyGate() async throws {
        let directory = try AccountCommandTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let picture = directory.appendingPathComponent("photo.png")
        try Data(StandInPNG.solidImage(width: 48, height: 32, color: 0x112233)).write(to: picture)
        try await withComfyUIStandIn(Self.qwenModels) { standIn in
            let data = directory.appendingPathComponent("data").path
            #expect(try await CommandRunner.run(["users", "add", "alice", "--role", "user", "--password-stdin", "--data", data],
                standardInput: "alice-password-1\n").status == 0)
            let token = try await CommandRunner.run(["tokens", "create", "--user", "alice", "--data", data]).stdout
                .trimmingCharacters(in: .whitespacesAndNewlines)
            try await ServeProcess.running(["--data", data, "--upstream", standIn.baseURL]) { gate in
                let out = directory.appendingPathComponent("out").path
                let result = try await CommandRunner.run(
                    ["generate", "--template", "qwen-image-edit", "--image", picture.path, "--prompt", "make it snow",
                     "--url", "http://127.0.0.1:\(gate.port)", "--out", out],
                    environment: ["COMFYGATE_TOKEN": token])
                #expect(result.status == 0, "\(result.stderr)")
                let saved = result.stdout.split(separator: "\n").map(String.init)
                #expect(saved.count == 1 && saved[0].hasPrefix(out))
                #expect(Self.pngWidth(try Data(contentsOf: URL(fileURLWithPath: saved[0]))) == 48, "the edit keeps the input's size")
                // The upload went to alice's own folder, and her image is what LoadImage read.
                #expect(standIn.files(in: .input, subfolder: "users/alice").contains("photo.png"))
            }
        }
    }

    @Test func eachFailureIsOneReadableLineWithItsExitCode() async throws {
        let directory = try AccountCommandTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let workflow = directory.appendingPathComponent("workflow.json")
        try Data(#"{"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 3}}, "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "w"}}}"#.utf8).write(to: workflow)
        try await withComfyUIStandIn(Self.qwenModels) { standIn in
            let base = ["--url", standIn.baseURL, "--out", directory.path]
            // Validation: ComfyUI's refusal with the node, its class and the reason.
            let invalid = try await CommandRunner.run(["generate", "--template", "qwen-image", "--steps", "4", "--set", "3.cfg=500"] + base)
            #expect(invalid.status == 1)
            #expect(invalid.stderr.contains("ComfyUI refused the workflow") && invalid.stderr.contains("node 3 (KSampler): Value 500.0 bigger than max of 100.0"),
                "\(invalid.stderr)")
            // Execution: the node, the exception type and message.
            let failing = try await CommandRunner.run(["generate", workflow.path, "--set", "2.filename_prefix=../../escape"] + base)
            #expect(failing.status == 1)
            #expect(failing.stderr.contains("node 2 (SaveImage) raised Exception: **** ERROR: Saving image outside the output folder"), "\(failing.stderr)")
            // Interrupted while it runs.
            standIn.holdExecution()
            async let interrupted = CommandRunner.run(["generate", workflow.path, "--set", "1.color=9"] + base)
            var running = false
            for _ in 0..<400 where !running {
                running = !((try await Self.json(standIn.baseURL + "/queue"))["queue_running"] as? [Any] ?? []).isEmpty
                if !running { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(running, "the run reached ComfyUI")
            var interrupt = HTTPClientRequest(url: standIn.baseURL + "/interrupt")
            interrupt.method = .POST
            interrupt.body = .bytes(ByteBuffer(string: "{}"))
            _ = try await ServeCommandTests.client.execute(interrupt, timeout: .seconds(30))
            standIn.releaseExecution()
            let stopped = try await interrupted
            #expect(stopped.status == 1 && stopped.stderr.contains("the run was interrupted"), "\(stopped.stderr)")
            // Usage errors: 2.
            #expect(try await CommandRunner.run(["generate"] + base).status == 2)
            #expect(try await CommandRunner.run(["generate", "--template", "qwen-image-edit"] + base).status == 2, "needs --image")
            let noSampler = try await CommandRunner.run(["generate", workflow.path, "--steps", "3"] + base)
            #expect(noSampler.status == 2 && noSampler.stderr.contains("--steps: the workflow has no KSampler"))
        }
    }
}

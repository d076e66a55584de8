import ComfyGateCore
import ComfyGateDoctor
import ComfyGateTestSupport
import Foundation
import Testing


/// `comfygate setup` end to end against the stand-in: the Compose project written and validated by Debian's
/// `docker-compose config` with Docker skipped, ComfyGate in front of an existing ComfyUI with its systemd unit checked
/// by `systemd-analyze verify`, dry runs, a failing prerequisite, the report, and a second run that keeps everything.
@Suite struct SetupCommandTests {
    /// A port nothing listens on now.
    static func freePort() throws -> Int { try LoopbackPort.free() }

    static func read(_ url: URL) throws -> String { try String(contentsOf: url, encoding: .utf8) }

    /// Publishes stand-ins for the qwen-image-edit set's three files on the hub: their folder and bytes by name.
    static func publishEditSet(on hub: ModelHub) -> [String: (folder: String, bytes: [UInt8])] {
        let files = [
            ("qwen_image_edit_fp8_e4m3fn.safetensors", "diffusion_models"), ("qwen_2.5_vl_7b_fp8_scaled.safetensors", "text_encoders"),
            ("qwen_image_vae.safetensors", "vae"),
        ]
        var published: [String: (folder: String, bytes: [UInt8])] = [:]
        for (index, (name, folder)) in files.enumerated() {
            let bytes = (0..<(40_000 + index * 7_000)).map { UInt8(truncatingIfNeeded: $0 * (index + 3)) }
            hub.publish(bytes, name: name)
            published[name] = (folder, bytes)
        }
        return published
    }

    static func mode(_ url: URL) throws -> Int {
        try #require(try FileManager.default.attributesOfItem(atPath: url.path)[.posixPermissions] as? Int)
    }

    /// Runs a program of this machine to its end.
    static func system(_ command: [String], in directory: URL? = nil) async throws -> ChildProcess.Completion {
        try await ChildProcess.run(command, directory: directory?.path, timeout: .seconds(60))
    }

    @Test func withDockerSkippedTheComposeProjectIsWrittenAndTheDeploymentTestedOnThisHost() async throws {
        let root = try AccountCommandTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let directory = root.appendingPathComponent("qwen")
        try await ModelHub.with { hub in
            let published = Self.publishEditSet(on: hub)
            try await withComfyUIStandIn { standIn in
                let arguments = [
                    "setup", "--dir", directory.path, "--skip-docker", "--upstream", standIn.baseURL,
                    "--listen", "127.0.0.1:\(try Self.freePort())",
                ]
                let environment = ["HF_ENDPOINT": hub.endpoint.absoluteString]
                let first = try await CommandRunner.run(arguments, environment: environment, timeout: 180)
                #expect(first.status == 0, "\(first.stdout)\n\(first.stderr)")
                #expect(first.stdout.contains("INCOMPLETE: no step failed, but 1 step(s) were skipped and are not verified: Start."), "\(first.stdout)")
                // The models, verified, in the Compose project's models folder.
                for (name, file) in published {
                    let path = directory.appendingPathComponent("models/\(file.folder)/\(name)")
                    #expect(try Data(contentsOf: path) == Data(file.bytes), "\(name)")
                }

                // The report: every step with its result and time, the skipped one never counted as done.
                let report = try Self.read(directory.appendingPathComponent("setup-report.md"))
                #expect(report.contains("- **Result:** INCOMPLETE"), "\(report)")
                #expect(!report.contains("Complete: every step"))
                for (index, step) in ["Prerequisites", "Deployment files", "Accounts", "Secrets", "Models", "Start", "Readiness", "Test generation"].enumerated() {
                    let row = try #require(report.split(separator: "\n").first { $0.hasPrefix("| \(index + 1) | \(step) |") }, "\(step)")
                    let expected = step == "Start" ? "| skipped — not verified |" : "| ok |"
                    #expect(row.contains(expected), "\(row)")
                    #expect(row.contains(" s |"), "a duration: \(row)")
                }
                #expect(report.contains("not checked — Docker engine, Compose, NVIDIA runtime and the ComfyGate image (--skip-docker)"))
                #expect(report.contains("Docker skipped (--skip-docker): the Compose project was not started"))
                #expect(report.contains("ok — free disk: the models need "))
                #expect(report.contains("ok — ComfyUI answers at \(standIn.baseURL)"))
                #expect(report.contains("generation: "), "the doctor's generation evidence")
                #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent("doctor-report.md").path))
                // The test generation reached ComfyUI through the gateway.
                let history = try await GenerateCommandTests.json(standIn.baseURL + "/history")
                #expect(!history.isEmpty)

                // Secrets: one raw token for scripts, the admin's password, both 0600 and named nowhere else.
                let tokenFile = directory.appendingPathComponent(".secrets/.env.generated")
                let passwordFile = directory.appendingPathComponent(".secrets/comfygate-admin.env")
                let token = try #require(TokenSource.dotenv(try Self.read(tokenFile))["QWEN_API_USER_TOKEN"])
                let password = try #require(TokenSource.dotenv(try Self.read(passwordFile))["COMFYGATE_ADMIN_PASSWORD"])
                #expect(try Self.mode(tokenFile) == 0o600 && Self.mode(passwordFile) == 0o600)
                #expect(try Self.mode(directory.appendingPathComponent("data")) == 0o700)
                for text in [report, first.stdout, first.stderr, try Self.read(directory.appendingPathComponent("setup-gateway.log"))] {
                    #expect(!text.contains(token) && !text.contains(password))
                }

                // The Compose project: valid for Docker Compose, ComfyUI unpublished and only on the internal network.
                let compose = try await Self.system(["docker-compose", "-f", "compose.yaml", "config"], in: directory)
                #expect(compose.status == 0, "\(compose.output)")
                let layout = try await Self.system([
                    "python3", "-c",
                    """
                    import sys, yaml
                    c = yaml.safe_load(open(sys.argv[1]))
                    s = c["services"]
                    print("comfyui-ports", "ports" in s["comfyui"])
                    print("comfyui-networks", sorted(s["comfyui"]["networks"]))
                    print("internal", c["networks"]["backend"].get("internal"))
                    print("gateway-ports", [p["published"] if isinstance(p, dict) else p for p in s["comfygate"]["ports"]])
                    """,
                    directory.appendingPathComponent("compose.yaml").path,
                ])
                #expect(layout.output.contains("comfyui-ports False"), "\(layout.output)")
                #expect(layout.output.contains("comfyui-networks ['backend']") && layout.output.contains("internal True"))
                #expect(layout.output.contains("gateway-ports"), "\(layout.output)")
                // One ComfyUI image definition: the file setup writes is deploy/comfyui/Dockerfile.
                let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                    .deletingLastPathComponent()
                #expect(try Self.read(directory.appendingPathComponent("comfyui/Dockerfile"))
                    == Self.read(repository.appendingPathComponent("deploy/comfyui/Dockerfile")))

                // Again: everything kept, nothing regenerated.
                let second = try await CommandRunner.run(arguments, environment: environment, timeout: 180)
                #expect(second.status == 0, "\(second.stdout)")
                #expect(second.stdout.contains("kept user admin") && second.stdout.contains("compose.yaml: unchanged"))
                #expect(second.stdout.contains("adopted qwen_api_user"), "\(second.stdout)")
                #expect(second.stdout.contains("qwen_image_vae.safetensors: already there"), "\(second.stdout)")
                #expect(TokenSource.dotenv(try Self.read(tokenFile))["QWEN_API_USER_TOKEN"] == token)
                #expect(TokenSource.dotenv(try Self.read(passwordFile))["COMFYGATE_ADMIN_PASSWORD"] == password)
            }
        }
    }

    @Test func inFrontOfAnExistingComfyUIItWritesAConfigurationAndAVerifiedSystemdUnit() async throws {
        let root = try AccountCommandTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let directory = root.appendingPathComponent("gate")
        let port = try Self.freePort()
        try await ModelHub.with { hub in
            _ = Self.publishEditSet(on: hub)
            try await withComfyUIStandIn { standIn in
                let models = root.appendingPathComponent("ComfyUI/models")
                let result = try await CommandRunner.run(
                    ["setup", "--dir", directory.path, "--upstream", standIn.baseURL, "--listen", "127.0.0.1:\(port)", "--models-dir", models.path],
                    environment: ["HF_ENDPOINT": hub.endpoint.absoluteString], timeout: 180)
                #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
                #expect(result.stdout.contains("Complete: every step ran and passed."), "\(result.stdout)")
                #expect(FileManager.default.fileExists(atPath: models.appendingPathComponent("vae/qwen_image_vae.safetensors").path))
                #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("compose.yaml").path))
                let configuration = try Self.read(directory.appendingPathComponent("comfygate.toml"))
                #expect(configuration.contains("upstream = \"\(standIn.baseURL)\"") && configuration.contains("listen = \"127.0.0.1:\(port)\""))
                let unit = directory.appendingPathComponent("comfygate.service")
                #expect(try Self.read(unit).contains("ExecStart=\(CommandRunner.executable.resolvingSymlinksInPath().path) serve --config"))
                let verify = try await Self.system(["systemd-analyze", "verify", unit.path])
                #expect(verify.status == 0, "\(verify.output)")
                let report = try Self.read(directory.appendingPathComponent("setup-report.md"))
                #expect(report.contains("ComfyGate on this host in front of the existing ComfyUI at \(standIn.baseURL)"))
                #expect(report.contains("- **Result:** Complete: every step ran and passed."), "\(report)")
                #expect(!report.contains("skipped — not verified"))
                // The gateway setup started for its test is gone again.
                #expect(try await Self.system(["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/\(port)"]).status != 0)
            }
        }
    }

    @Test func skippedStepsAreReportedAsNotVerifiedNeverAsDone() async throws {
        let root = try AccountCommandTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let directory = root.appendingPathComponent("partial")
        try await withComfyUIStandIn { standIn in
            let result = try await CommandRunner.run([
                "setup", "--dir", directory.path, "--upstream", standIn.baseURL, "--listen", "127.0.0.1:\(try Self.freePort())",
                "--skip-models", "--skip-test",
            ])
            #expect(result.status == 0, "nothing failed: \(result.stdout)")
            #expect(result.stdout.contains(
                "INCOMPLETE: no step failed, but 4 step(s) were skipped and are not verified: Models, Start, Readiness, Test generation."),
                "\(result.stdout)")
            let report = try Self.read(directory.appendingPathComponent("setup-report.md"))
            #expect(report.contains("| 8 | Test generation | skipped — not verified |"), "\(report)")
            #expect(report.contains("--skip-test: no request went through the gateway, so the deployment is not verified"))
            #expect(report.contains("Skipped steps are not verified"))
            #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("setup-gateway.log").path), "no gateway ran")
        }
    }

    @Test func aDryRunChangesNothingAndSaysWhatItWouldDo() async throws {
        let root = try AccountCommandTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let directory = root.appendingPathComponent("planned")
        try await withComfyUIStandIn { standIn in
            let result = try await CommandRunner.run([
                "setup", "--dir", directory.path, "--dry-run", "--skip-docker", "--upstream", standIn.baseURL,
                "--listen", "127.0.0.1:\(try Self.freePort())", "--skip-models",
            ])
            #expect(result.status == 0, "\(result.stdout)")
            #expect(result.stdout.contains("would write compose.yaml") && result.stdout.contains("[WOULD RUN] Test generation"))
            #expect(result.stdout.contains("Dry run: nothing was changed"))
            #expect(!FileManager.default.fileExists(atPath: directory.path))
        }
        // With Docker: the prerequisites ask Docker itself, and still nothing is written.
        let docker = try await CommandRunner.run(["setup", "--dir", directory.path, "--dry-run", "--skip-models"])
        #expect(docker.stdout.contains("Docker engine") || docker.stdout.contains("Docker is not installed"), "\(docker.stdout)")
        #expect(docker.status == (docker.stdout.contains("[FAILED] Prerequisites") ? 1 : 0))
        #expect(!FileManager.default.fileExists(atPath: directory.path))
    }

    @Test func aComfyUIThatDoesNotAnswerStopsSetupWithAFixAndAReport() async throws {
        let root = try AccountCommandTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let directory = root.appendingPathComponent("down")
        let refusing = try RefusingPort()
        let result = try await CommandRunner.run([
            "setup", "--dir", directory.path, "--upstream", "http://127.0.0.1:\(refusing.port)", "--listen", "127.0.0.1:\(try Self.freePort())",
        ])
        #expect(result.status == 1)
        #expect(result.stdout.contains("FAILED — ComfyUI at http://127.0.0.1:\(refusing.port) does not answer"), "\(result.stdout)")
        #expect(result.stdout.contains("fix: Start ComfyUI"))
        #expect(result.stdout.contains("FAILED at “Prerequisites”"))
        let report = try Self.read(directory.appendingPathComponent("setup-report.md"))
        #expect(report.contains("| 2 | Deployment files | not run |") && report.contains("## How to fix what failed"))
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("data").path))
    }

    @Test func badOptionsAreUsageErrors() async throws {
        for (arguments, message) in [
            (["--listen", "nowhere"], "--listen: 'nowhere' is not host:port"),
            (["--upstream", "ftp://x"], "--upstream: 'ftp://x' is not an http:// or https:// URL"),
            (["--models", "no-such-model"], "no-such-model"),
            (["--models-dir", "/tmp/models"], "--models-dir goes with --upstream"),
        ] {
            let result = try await CommandRunner.run(["setup", "--dry-run"] + arguments)
            #expect(result.status == 2 && result.stderr.contains(message), "\(arguments): \(result.stderr)")
        }
    }
}

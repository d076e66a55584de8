import ComfyGateDoctor
import ComfyGateTestSupport
import Foundation
import Testing

/// ComfyUI-Login's token: line 1 of login/PASSWORD (any 60-character bcrypt string will do for the stand-in).
let loginHash = "$2b$12$abcdefghijklmnopqrstuuQ8Vq1mQ0n9Wm6cF9ZQd0bK7xJm3nZbSXY"

func loginOptions(hash: String? = loginHash) -> ComfyUIStandIn.Options {
    var options = ComfyUIStandIn.Options()
    options.login = .init(passwordHash: hash)
    return options
}

@Suite("doctor against real servers on loopback", .timeLimit(.minutes(3)))
struct DoctorTests {
    @Test func bareComfyUIOnLoopbackWarnsThatAnyoneCanRunCode() async throws {
        try await withComfyUIStandIn { standIn in
            let report = await runDoctor(standIn.baseURL)
            #expect(report.target == .comfyUI, "\(report.dump)")
            #expect(report.status(.tcpConnect) == .pass)
            #expect(report.status(.tls) == .skip)
            #expect(report.status(.httpAnswer) == .pass)
            #expect(report[.httpAnswer]?.evidence.hasPrefix("HTTP/1.1 200") == true)
            #expect(report.status(.authEnforced) == .warn)
            #expect(report.cause(.authEnforced) == "bare_comfyui")
            #expect(report[.authEnforced]?.diagnosis?.cause.contains("can run code on the machine") == true)
            #expect(report.status(.tokenAccepted) == .skip && report.status(.wrongTokenRefused) == .skip)
            #expect(report.status(.loginPage) == .skip)
            #expect(report.status(.webSocket) == .pass)
            #expect(report.status(.comfyUIFacts) == .warn && report.cause(.comfyUIFacts) == "no_gpu")
            #expect(report[.comfyUIFacts]?.evidence.contains("ComfyUI 0.3.64, Python 3.12.3, PyTorch 2.8.0+cpu") == true)
            #expect(report.status(.models) == .skip && report.status(.secrets) == .skip && report.status(.generation) == .skip)
            #expect(report.exitCode == 0)
        }
    }

    @Test func bareComfyUIListeningOnAllInterfacesFails() async throws {
        var options = ComfyUIStandIn.Options()
        options.argv = ["main.py", "--listen", "--port", "8188"]
        options.devices = [.init(name: "cuda:0 NVIDIA RTX 3090", type: "cuda", index: 0, vramTotal: 25_769_803_776, vramFree: 24_696_061_952)]
        try await withComfyUIStandIn(options) { standIn in
            let report = await runDoctor(standIn.baseURL)
            #expect(report.status(.authEnforced) == .fail && report.cause(.authEnforced) == "bare_comfyui_exposed", "\(report.dump)")
            #expect(report.status(.comfyUIFacts) == .pass)
            #expect(report[.comfyUIFacts]?.evidence.contains("cuda:0 NVIDIA RTX 3090 (VRAM 23.0 GiB free of 24.0 GiB)") == true)
            #expect(report.exitCode == 1)
        }
    }

    @Test func comfyUILoginWithItsHashLinePasses() async throws {
        try await withComfyUIStandIn(loginOptions()) { standIn in
            let report = await runDoctor(standIn.baseURL, token: loginHash)
            #expect(report.target == .comfyUILogin, "\(report.dump)")
            #expect(report.status(.authEnforced) == .pass)
            #expect(report[.authEnforced]?.evidence.contains(#"{"error": "Authentication required."}"#) == true)
            #expect(report.status(.tokenAccepted) == .pass)
            #expect(report.status(.wrongTokenRefused) == .pass)
            #expect(report.status(.loginPage) == .pass)
            #expect(report[.loginPage]?.evidence.contains("→ /login") == true)
            #expect(report.status(.webSocket) == .pass)
            #expect(report.exitCode == 0)
            #expect(!report.dump.contains(loginHash))
        }
    }

    @Test(arguments: [
        ("2%=tVJ6@!Nc(7#VTvj-Bh3^nm0WY-Lij", "login_token_is_raw_secret"),
        ("$2b$12$ubd9tM4L2pvqB/peVpwvyuASqddG9WVoNj0NaAPHYyH57LW.vVjr.", "login_token_not_password_hash"),
        ("$2b$12$ubd9tM4L2pvqB/peVpwvyuASqddG9WVoNj0NaAP.vVjr.", "token_mangled"),
        ("tok en", "login_malformed_authorization"),
    ])
    func comfyUILoginRefusalsNameTheCause(token: String, cause: String) async throws {
        try await withComfyUIStandIn(loginOptions()) { standIn in
            let report = await runDoctor(standIn.baseURL, token: token)
            #expect(report.target == .comfyUILogin)
            #expect(report.status(.tokenAccepted) == .fail, "\(report.dump)")
            #expect(report.cause(.tokenAccepted) == cause)
            #expect(report.status(.webSocket) == .skip)
            #expect(report.exitCode == 1)
            #expect(!report.dump.contains(token))
        }
    }

    @Test func comfyUILoginWithoutPasswordAcceptsAnEmptyToken() async throws {
        try await withComfyUIStandIn(loginOptions(hash: nil)) { standIn in
            let report = await runDoctor(standIn.baseURL)
            #expect(report.target == .comfyUILogin)
            #expect(report.status(.authEnforced) == .fail && report.cause(.authEnforced) == "login_no_password", "\(report.dump)")
            #expect(report[.authEnforced]?.diagnosis?.cause.contains("first visitor of /login sets the password") == true)
            #expect(report.status(.tokenAccepted) == .skip)
            #expect(report.exitCode == 1)
        }
    }

    @Test func rawSecretRunWritesAMarkdownReportLikeTheHandWrittenOne() async throws {
        try await withComfyUIStandIn(loginOptions()) { standIn in
            let report = await runDoctor(standIn.baseURL, token: "2%=tVJ6@!Nc(7#VTvj-Bh3^nm0WY-Lij")
            let markdown = MarkdownRenderer().render(report)
            #expect(markdown.hasPrefix("# ComfyGate doctor report\n"))
            for heading in ["## Objective", "## Target", "## Checks", "## Metrics", "## Failures: causes and fixes", "## Recommendations"] {
                #expect(markdown.contains("\n\(heading)\n"), "missing \(heading)")
            }
            #expect(markdown.contains("| Kind | ComfyUI behind ComfyUI-Login |"))
            #expect(markdown.contains("| ComfyUI | 0.3.64 |") == false)  // the token was refused: no stats
            #expect(markdown.contains("| 6 | Token accepted on /system_stats | ❌ fail |"))
            #expect(markdown.contains("- **Success rate**: "))
            #expect(markdown.contains("### Token accepted on /system_stats"))
            #expect(markdown.contains("- **Likely cause** (`login_token_is_raw_secret`): ComfyUI-Login compares the token with the first line"))
            #expect(markdown.contains("head -n1 login/PASSWORD"))
            #expect(markdown.contains("consider ComfyGate in front"))
            #expect(!markdown.contains("tVJ6@!Nc"))
            let run = report.checks.count - report.count(.skip)
            let passed = report.count(.pass) + report.count(.warn)
            #expect(markdown.contains("(\(passed) of \(run) checks run did not fail)"))
        }
    }

    @Test func emptyReplyIsRecognisedAndExplained() async throws {
        try await MisbehavingServer.with(.closeWithoutResponse) { port in
            let report = await runDoctor("http://127.0.0.1:\(port)")
            #expect(report.status(.tcpConnect) == .pass)
            #expect(report.status(.httpAnswer) == .fail, "\(report.dump)")
            #expect(report.cause(.httpAnswer) == "empty_reply")
            #expect(report[.httpAnswer]?.evidence.contains("Empty reply from server") == true)
            #expect(report[.httpAnswer]?.diagnosis?.cause.contains("0.0.0.0") == true)
            #expect(report.checks.filter { $0.status == .skip }.count == CheckID.allCases.count - 2)
            #expect(report.exitCode == 1)
        }
    }

    @Test func closedPortIsConnectionRefused() async throws {
        let refusing = try MisbehavingServer.closedPort()
        let port = refusing.port
        let report = await runDoctor("http://127.0.0.1:\(port)")
        #expect(report.status(.tcpConnect) == .fail, "\(report.dump)")
        #expect(report.cause(.tcpConnect) == "connection_refused")
        #expect(report[.tcpConnect]?.evidence == "connection to 127.0.0.1:\(port) refused")
        #expect(report.checks.dropFirst().allSatisfy { $0.status == .skip })
        #expect(report.exitCode == 1)
        withExtendedLifetime(refusing) {}
    }

    @Test func unresolvableNameIsNamed() async throws {
        let report = await runDoctor("http://comfyui.invalid:8188")
        #expect(report.status(.tcpConnect) == .fail)
        #expect(report.cause(.tcpConnect) == "name_unresolvable", "\(report.dump)")
    }

    @Test func serverSlowerThanTheTimeout() async throws {
        try await MisbehavingServer.with(.silent) { port in
            let clock = ContinuousClock()
            let start = clock.now
            // Long enough for a loopback connect on a machine busy with the rest of the suite.
            let report = await runDoctor("http://127.0.0.1:\(port)", timeout: .milliseconds(1500))
            // Not a speed check: the run must end on its own rather than hang on a silent server.
            #expect(start.duration(to: clock.now) < .seconds(60))
            #expect(report.status(.tcpConnect) == .pass)
            #expect(report.status(.httpAnswer) == .fail, "\(report.dump)")
            #expect(report.cause(.httpAnswer) == "slow_answer")
            #expect(report[.httpAnswer]?.evidence.contains("no complete answer within 1.50 s") == true)
            #expect(report.exitCode == 1)
        }
    }

    @Test func generateRunsTheModelFreeWorkflowEndToEnd() async throws {
        try await withComfyUIStandIn(loginOptions()) { standIn in
            let report = await runDoctor(standIn.baseURL, token: loginHash, generate: true)
            #expect(report.status(.generation) == .pass, "\(report.dump)")
            let evidence = try #require(report[.generation]?.evidence)
            #expect(evidence.contains("comfygate-doctor_00001_.png, PNG 64×64"))
            #expect(standIn.files(in: .output).contains("comfygate-doctor_00001_.png"))
            #expect(report.exitCode == 0)
        }
    }

    @Test func requiredModelsOfTheQwenWorkflow() async throws {
        var options = ComfyUIStandIn.Options()
        options.models["diffusion_models"] = ["qwen_image_edit_fp8_e4m3fn.safetensors"]
        options.models["vae"] = ["qwen_image_vae.safetensors"]
        try await withComfyUIStandIn(options) { standIn in
            let report = await runDoctor(standIn.baseURL, models: .qwenImageEditFP8)
            #expect(report.status(.models) == .fail, "\(report.dump)")
            #expect(report.cause(.models) == "models_missing")
            #expect(report[.models]?.evidence == "qwen-image-edit-fp8: 2 of 3 files present; missing text_encoders/qwen_2.5_vl_7b_fp8_scaled.safetensors")
            #expect(report[.models]?.diagnosis?.fix.contains("https://huggingface.co/Comfy-Org/Qwen-Image_ComfyUI/") == true)
        }
        options.models["text_encoders"] = ["qwen_2.5_vl_7b_fp8_scaled.safetensors"]
        try await withComfyUIStandIn(options) { standIn in
            let report = await runDoctor(standIn.baseURL, models: .qwenImageEditFP8)
            #expect(report.status(.models) == .pass, "\(report.dump)")
        }
    }

    @Test func secretsSeamReportsProblemsWithoutValues() async throws {
        try await withComfyUIStandIn { standIn in
            var configuration = DoctorConfiguration(url: standIn.baseURL, timeout: .seconds(30))
            configuration.secretsCheck = SecretsCheck(manifest: "secrets.toml") { ["QWEN_API_USER_TOKEN: hash does not match"] }
            let report = await Doctor(configuration: configuration).run()
            #expect(report.status(.secrets) == .fail && report.cause(.secrets) == "secrets_inconsistent")
            configuration.secretsCheck = SecretsCheck(manifest: "secrets.toml") { [] }
            #expect(await Doctor(configuration: configuration).run().status(.secrets) == .pass)
        }
    }

    @Test func jsonReportFollowsTheDocumentedSchema() async throws {
        try await withComfyUIStandIn(loginOptions()) { standIn in
            let report = await runDoctor(standIn.baseURL, token: "raw-secret")
            let json = JSONRenderer().render(report)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
            #expect(Set(object.keys) == ["schema", "url", "target", "started_at", "duration_ms", "outcome", "exit_code", "summary", "checks", "comfyui"])
            #expect(object["schema"] as? String == "comfygate.doctor/1")
            #expect(object["target"] as? String == "comfyui-login")
            #expect(object["outcome"] as? String == "fail" && object["exit_code"] as? Int == 1)
            let checks = try #require(object["checks"] as? [[String: Any]])
            #expect(checks.map { $0["id"] as? String } == CheckID.allCases.map(\.rawValue))
            #expect(checks.allSatisfy { Set($0.keys) == ["id", "title", "status", "duration_ms", "evidence", "cause", "cause_text", "fix"] })
            let token = try #require(checks.first { $0["id"] as? String == "token_accepted" })
            #expect(token["status"] as? String == "fail" && token["cause"] as? String == "login_token_is_raw_secret")
            let summary = try #require(object["summary"] as? [String: Any])
            #expect(summary["fail"] as? Int == report.count(.fail))
            #expect(!json.contains("raw-secret"))
        }
    }

    @Test func terminalTableUsesColourOnlyWhenAsked() async throws {
        try await withComfyUIStandIn { standIn in
            let report = await runDoctor(standIn.baseURL)
            let plain = TerminalRenderer(colour: false).render(report)
            let coloured = TerminalRenderer(colour: true).render(report)
            #expect(!plain.contains("\u{1B}["))
            #expect(coloured.contains("\u{1B}[32mPASS\u{1B}[0m"))
            #expect(plain.contains("  WARN  Authentication enforced"))
            #expect(plain.contains("          cause: ComfyUI answers without any authentication."))
        }
    }

    @Test func watchPrintsOnlyChangesAndStops() async throws {
        let firstPasswordHash = "$2b$12$firstfirstfirstfirstfuQ8Vq1mQ0n9Wm6cF9ZQd0bK7xJm3nZbSX"
        var options = loginOptions(hash: nil)
        options.login = .init(passwordHash: nil, newHashForFirstPassword: { _ in firstPasswordHash })
        try await withComfyUIStandIn(options) { standIn in
            let lines = Lines()
            let doctor = Doctor(configuration: DoctorConfiguration(url: standIn.baseURL, token: firstPasswordHash, timeout: .seconds(30)))
            let watch = DoctorWatch(doctor: doctor, interval: .milliseconds(100), now: { Date(timeIntervalSince1970: 1_763_077_620) })
            let last = await watch.run(
                until: {
                    // Bounded, and ended by cancellation: a loop that swallowed it would spin.
                    guard (try? await eventually(within: .seconds(60), { lines.all.contains { $0.contains("overall: fail") } })) == true
                    else { return }
                    // Someone sets the password through /login: the deployment becomes healthy.
                    _ = try? await HTTPProbe.postForm(standIn.baseURL + "/login", "username=admin&password=secret")
                    _ = try? await eventually(within: .seconds(60)) { lines.all.contains { $0.contains("overall: pass") } }
                },
                emit: lines.append)
            let all = lines.all
            #expect(all.allSatisfy { $0.hasPrefix("2025-11-13T23:47:00Z  ") }, "\(all)")
            #expect(all.contains { $0.contains("auth_enforced: fail — ") && $0.hasSuffix("[login_no_password]") })
            #expect(all.contains { $0.contains("auth_enforced: fail → pass") })
            #expect(all.contains { $0.contains("token_accepted: fail → pass") })
            #expect(all.filter { $0.contains("tcp_connect") }.count == 1)
            #expect(last?.exitCode == 0)
        }
    }

    @Test func changesAreComputedPerCheck() {
        let date = Date(timeIntervalSince1970: 0)
        func report(_ statuses: [CheckStatus]) -> DoctorReport {
            DoctorReport(
                url: "http://x", target: .comfyUI, startedAt: date, duration: .zero, generateRequested: false, workflow: nil,
                checks: zip(CheckID.allCases, statuses).map { CheckResult(id: $0, status: $1, evidence: "e") }, comfyUI: nil)
        }
        let first = report([.pass, .pass])
        #expect(DoctorWatch.changes(from: nil, to: first, at: date).count == 3)
        #expect(DoctorWatch.changes(from: first, to: first, at: date).isEmpty)
        #expect(DoctorWatch.changes(from: first, to: report([.pass, .fail]), at: date) == [
            "1970-01-01T00:00:00Z  tls: pass → fail — e",
            "1970-01-01T00:00:00Z  overall: fail — 1 passed, 0 warning(s), 1 failed, 0 skipped — success rate 50% (1 of 2 run) in <1 ms",
        ])
    }
}

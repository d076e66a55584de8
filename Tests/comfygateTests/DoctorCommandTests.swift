import ComfyGateTestSupport
import Foundation
import Testing

private func doctor(_ arguments: [String]) async throws -> CommandRunner.Result {
    try await CommandRunner.run(["doctor"] + arguments, timeout: 60)
}

@Suite("comfygate doctor (subprocess)", .timeLimit(.minutes(2)))
struct DoctorCommandTests {
    @Test func exitCodesForPassFailAndUsage() async throws {
        var options = ComfyUIStandIn.Options()
        options.login = .init(passwordHash: "$2b$12$abcdefghijklmnopqrstuuQ8Vq1mQ0n9Wm6cF9ZQd0bK7xJm3nZbSXY")
        try await withComfyUIStandIn(options) { standIn in
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("doctor-cli-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let env = directory.appendingPathComponent(".env.generated")
            try "QWEN_API_USER_TOKEN=2%=tVJ6@!Nc(7#VTvj-Bh3^nm0WY-Lij\nGOOD='$2b$12$abcdefghijklmnopqrstuuQ8Vq1mQ0n9Wm6cF9ZQd0bK7xJm3nZbSXY'\n"
                .write(to: env, atomically: true, encoding: .utf8)
            let report = directory.appendingPathComponent("validation.md")

            let failing = try await doctor(
                ["--url", standIn.baseURL, "--token-file", env.path, "--token-key", "QWEN_API_USER_TOKEN", "--report", report.path])
            #expect(failing.status == 1, "\(failing.stderr)")
            #expect(failing.stdout.contains("FAIL  Token accepted on /system_stats"))
            #expect(failing.stdout.contains("[login_token_is_raw_secret]"))
            #expect(!failing.stdout.contains("\u{1B}["))
            #expect(failing.stderr.contains("report written to \(report.path)"))
            #expect(try String(contentsOf: report, encoding: .utf8).contains("## Failures: causes and fixes"))

            let passing = try await doctor(["--url", standIn.baseURL, "--token-file", env.path, "--token-key", "GOOD", "--json"])
            #expect(passing.status == 0, "\(passing.stdout)")
            let json = try JSONSerialization.jsonObject(with: Data(passing.stdout.utf8)) as? [String: Any]
            #expect(json?["target"] as? String == "comfyui-login" && json?["outcome"] as? String == "pass")

            for usage in [
                ["--url", standIn.baseURL, "--token", "a", "--token-file", env.path],
                ["--url", "127.0.0.1:8188"],
                ["--url", standIn.baseURL, "--token-file", env.path, "--token-key", "MISSING"],
                ["--url", standIn.baseURL, "--timeout", "0"],
            ] {
                let result = try await doctor(usage)
                #expect(result.status == 2, "\(usage): \(result.stderr)")
            }
        }
    }

    /// A secrets manifest named in `--config` is checked like `comfygate secrets check`: the seed's drifted
    /// files fail the run, and pass once `secrets sync` has repaired them.
    @Test func secretsManifestFromTheConfigurationIsChecked() async throws {
        let root = try SeedSecretsFixture.temporaryDirectory("doctor")
        defer { try? FileManager.default.removeItem(at: root) }
        try SeedSecretsFixture.write(.afterRepair, to: root)
        #expect(try await CommandRunner.run(["secrets", "init", "--layout", "comfyui-qwen"], in: root).status == 0)
        let config = root.appendingPathComponent("doctor.toml")
        try "secrets_manifest = \"comfygate-secrets.toml\"\n".write(to: config, atomically: true, encoding: .utf8)
        try await withComfyUIStandIn { standIn in
            func secretsCheck() async throws -> (status: String?, evidence: String?, exit: Int32) {
                let result = try await doctor(["--url", standIn.baseURL, "--config", config.path, "--json"])
                let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
                let checks = json?["checks"] as? [[String: Any]] ?? []
                let check = checks.first { $0["id"] as? String == "secrets" }
                return (check?["status"] as? String, check?["evidence"] as? String, result.status)
            }
            let drifted = try await secretsCheck()
            #expect(drifted.status == "fail")
            #expect(drifted.evidence?.contains("2 problem(s)") == true, "\(drifted.evidence ?? "")")
            #expect(drifted.exit == 1)
            #expect(try await CommandRunner.run(["secrets", "sync"], in: root).status == 0)
            let repaired = try await secretsCheck()
            #expect(repaired.status == "pass", "\(repaired.evidence ?? "")")
        }
    }
}

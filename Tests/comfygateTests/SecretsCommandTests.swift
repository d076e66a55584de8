import ComfyGateCore
import ComfyGateTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `comfygate secrets` run as a subprocess on the seed's real files.
@Suite("comfygate secrets (CLI)")
struct SecretsCommandTests {
    static let secrets = [
        SeedSecretsFixture.rawToken, SeedSecretsFixture.oldServerHash, SeedSecretsFixture.oldDockerHash,
        SeedSecretsFixture.repairedHash, "$2b$12$",
    ]

    func seedTree(_ state: SeedSecretsFixture.State) throws -> URL {
        let root = try SeedSecretsFixture.temporaryDirectory("cli")
        try SeedSecretsFixture.write(state, to: root)
        return root
    }

    func bytes(_ root: URL, _ path: String) throws -> [UInt8] {
        Array(try Data(contentsOf: root.appendingPathComponent(path)))
    }

    func mode(_ url: URL) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: url.path)[.posixPermissions] as? Int) ?? -1
    }

    func expectNoSecret(_ result: CommandRunner.Result, sourceLocation: SourceLocation = #_sourceLocation) {
        for secret in Self.secrets {
            #expect(!result.stdout.contains(secret) && !result.stderr.contains(secret), sourceLocation: sourceLocation)
        }
    }

    @Test(arguments: SeedSecretsFixture.State.allCases)
    func initCheckSyncCheck(state: SeedSecretsFixture.State) async throws {
        let root = try seedTree(state)
        defer { try? FileManager.default.removeItem(at: root) }
        let originalEnv = try bytes(root, SeedSecretsFixture.dockerEnvPath)

        let initResult = try await CommandRunner.run(
            ["secrets", "init", "--layout", "comfyui-qwen", "--root", root.path],
            in: FileManager.default.temporaryDirectory)
        #expect(initResult.status == 0, "\(initResult.stderr)")
        #expect(initResult.stdout.contains("adopted qwen_api_user from .secrets/.env.generated:QWEN_API_USER_TOKEN"))
        #expect(try bytes(root, SeedSecretsFixture.sourcePath) == Array(SeedSecretsFixture.sourceText.utf8))

        let check = try await CommandRunner.run(["secrets", "check"], in: root)
        #expect(check.status == 1)
        let rows = check.stdout.split(separator: "\n").map(String.init)
        #expect(rows.contains { $0.hasPrefix("OK") && $0.contains(".secrets/.env.generated:QWEN_API_USER_TOKEN") })
        #expect(rows.contains { $0.hasPrefix("DRIFT") && $0.contains(".secrets/qwen-api-user.token") })
        if state == .beforeRepair {
            #expect(
                rows.contains {
                    $0.hasPrefix("MALFORMED") && $0.contains("comfyui-qwen/.env:COMFYUI_BEARER_TOKEN")
                        && $0.contains("bcrypt hashes have 60 characters, this one has 63")
                })
        } else {
            #expect(rows.contains { $0.hasPrefix("DRIFT") && $0.contains("comfyui-qwen/.env:COMFYUI_BEARER_TOKEN") })
        }
        expectNoSecret(check)

        let json = try await CommandRunner.run(["secrets", "check", "--json"], in: root)
        #expect(json.status == 1)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let statuses = (object["locations"] as? [[String: Any]])?.compactMap { $0["status"] as? String }
        #expect(statuses == (state == .beforeRepair ? ["OK", "DRIFT", "MALFORMED"] : ["OK", "DRIFT", "DRIFT"]))
        #expect(object["ok"] as? Bool == false && object["version"] as? Int == 1)
        expectNoSecret(json)

        let sync = try await CommandRunner.run(["secrets", "sync"], in: root)
        #expect(sync.status == 0, "\(sync.stderr)")
        expectNoSecret(sync)
        let recheck = try await CommandRunner.run(["secrets", "check"], in: root)
        #expect(recheck.status == 0, "\(recheck.stdout)")
        #expect(recheck.stdout.contains("all 3 OK"))

        #expect(try bytes(root, SeedSecretsFixture.sourcePath) == Array(SeedSecretsFixture.sourceText.utf8))
        let newLines = try bytes(root, SeedSecretsFixture.dockerEnvPath).split(
            separator: 10, omittingEmptySubsequences: false)
        let oldLines = originalEnv.split(separator: 10, omittingEmptySubsequences: false)
        #expect(newLines.count == oldLines.count)
        for index in oldLines.indices where index != SeedSecretsFixture.dockerTokenLine - 1 {
            #expect(newLines[index] == oldLines[index], "line \(index + 1)")
        }
        let line66 = String(decoding: newLines[SeedSecretsFixture.dockerTokenLine - 1], as: UTF8.self)
        #expect(line66.hasPrefix("COMFYUI_BEARER_TOKEN='$2b$12$") && line66.hasSuffix("'") && line66.count == 21 + 62)
        let dockerHash = String(line66.dropFirst(22).dropLast())
        let serverHash = String(decoding: try bytes(root, SeedSecretsFixture.serverHashPath), as: UTF8.self)
        #expect(serverHash.hasSuffix("\n"))
        for hash in [dockerHash, serverHash.trimmingCharacters(in: .newlines)] {
            #expect(try await PythonBcrypt.verify(SeedSecretsFixture.rawToken, hash: hash))
        }
        let backupDirectory = root.appendingPathComponent(".secrets/backups")
        let backups = try FileManager.default.contentsOfDirectory(atPath: backupDirectory.path).sorted()
        #expect(backups.count == 2)
        #expect(
            backups.contains {
                $0.hasPrefix("docker-configurations__services__comfyui-qwen__.env.") && $0.hasSuffix(".bak")
            })
        #expect(backups.contains { $0.hasPrefix(".secrets__qwen-api-user.token.") })
        for name in backups {
            let backup = backupDirectory.appendingPathComponent(name)
            #expect(try mode(backup) == 0o600)
            if name.hasPrefix("docker") { #expect(Array(try Data(contentsOf: backup)) == originalEnv) }
        }
        for path in [
            SeedSecretsFixture.sourcePath, SeedSecretsFixture.serverHashPath, SeedSecretsFixture.dockerEnvPath,
        ] {
            #expect(try mode(root.appendingPathComponent(path)) == 0o600)
        }
        let again = try await CommandRunner.run(["secrets", "sync"], in: root)
        #expect(again.status == 0 && again.stdout.contains("nothing to do"))
    }

    @Test func usageAndManifestErrorsExitWith2() async throws {
        let root = try SeedSecretsFixture.temporaryDirectory("cli")
        defer { try? FileManager.default.removeItem(at: root) }
        let noManifest = try await CommandRunner.run(["secrets", "check"], in: root)
        #expect(noManifest.status == 2)
        #expect(noManifest.stderr.contains("no manifest here"))
        let badLayout = try await CommandRunner.run(["secrets", "init", "--layout", "nope"], in: root)
        #expect(badLayout.status == 2 && badLayout.stderr.contains("unknown layout 'nope'"))

        let manifest = root.appendingPathComponent("bad.toml")
        try Data(
            """
            bcrypt_cost = 3
            [secrets.x]
            length = 8
            source = { path = "a", format = "dotenv" }
            """.utf8
        ).write(to: manifest)
        let invalid = try await CommandRunner.run(["secrets", "sync", "--manifest", manifest.path], in: root)
        #expect(invalid.status == 2)
        let problems = invalid.stderr.split(separator: "\n")
        #expect(problems.count == 3, "\(invalid.stderr)")
        #expect(problems.allSatisfy { $0.contains(manifest.path) })
        #expect(!invalid.stderr.contains("Fatal error") && !invalid.stderr.contains("Stack"))

        _ = try await CommandRunner.run(["secrets", "init", "--layout", "comfyui-qwen"], in: root)
        let grace = try await CommandRunner.run(["secrets", "rotate", "--grace", "soon"], in: root)
        #expect(grace.status == 2 && grace.stderr.contains("--grace 'soon'"))
        let unknown = try await CommandRunner.run(["secrets", "rotate", "other"], in: root)
        #expect(unknown.status == 2 && unknown.stderr.contains("no secret named 'other'"))
    }

    @Test func symlinkTargetFailsWithExit1AndWritesNothing() async throws {
        let root = try seedTree(.beforeRepair)
        defer { try? FileManager.default.removeItem(at: root) }
        _ = try await CommandRunner.run(["secrets", "init", "--layout", "comfyui-qwen"], in: root)
        let server = root.appendingPathComponent(SeedSecretsFixture.serverHashPath)
        try FileManager.default.removeItem(at: server)
        try FileManager.default.createSymbolicLink(atPath: server.path, withDestinationPath: "elsewhere")
        let envBefore = try bytes(root, SeedSecretsFixture.dockerEnvPath)
        let sync = try await CommandRunner.run(["secrets", "sync"], in: root)
        #expect(sync.status == 1)
        #expect(sync.stderr.contains("\(server.path): is a symbolic link"))
        #expect(try bytes(root, SeedSecretsFixture.dockerEnvPath) == envBefore)
    }

    @Test func dryRunAndRotation() async throws {
        let root = try seedTree(.afterRepair)
        defer { try? FileManager.default.removeItem(at: root) }
        _ = try await CommandRunner.run(["secrets", "init", "--layout", "comfyui-qwen"], in: root)
        let manifest = root.appendingPathComponent(SecretsManifest.defaultFileName)
        let text = try String(contentsOf: manifest, encoding: .utf8)
            .replacingOccurrences(of: "bcrypt_cost = 12", with: "bcrypt_cost = 4")
            .replacingOccurrences(
                of: "# after_rotate = \"docker compose up -d comfyui-qwen\"",
                with: "after_rotate = \"echo restarting; exit 7\"")
        try Data(text.utf8).write(to: manifest)
        let files = [
            SeedSecretsFixture.sourcePath, SeedSecretsFixture.serverHashPath, SeedSecretsFixture.dockerEnvPath,
        ]
        let before = try files.map { try bytes(root, $0) }

        let dry = try await CommandRunner.run(["secrets", "sync", "--dry-run"], in: root)
        #expect(dry.status == 0)
        #expect(dry.stdout.contains("dry run") && dry.stdout.contains("would: qwen_api_user"))
        expectNoSecret(dry)
        let dryRotate = try await CommandRunner.run(["secrets", "rotate", "--dry-run"], in: root)
        #expect(dryRotate.status == 0 && dryRotate.stdout.contains("would run: echo restarting; exit 7"))
        #expect(try files.map { try bytes(root, $0) } == before)

        let rotate = try await CommandRunner.run(["secrets", "rotate", "qwen_api_user"], in: root)
        #expect(rotate.status == 1)
        #expect(rotate.stderr.contains("restarting"))
        #expect(rotate.stderr.contains("failed with exit status 7 (the rotation itself is complete)"))
        let check = try await CommandRunner.run(["secrets", "check"], in: root)
        #expect(check.status == 0, "\(check.stdout)")
        #expect(try bytes(root, SeedSecretsFixture.sourcePath) != before[0])

        try Data(text.replacingOccurrences(of: "exit 7", with: "true").utf8).write(to: manifest)
        let success = try await CommandRunner.run(["secrets", "rotate"], in: root)
        #expect(success.status == 0 && success.stdout.contains("ran: echo restarting; true"))
    }

    @Test func concurrentRunsAreSerialisedByTheLock() async throws {
        let root = try seedTree(.beforeRepair)
        defer { try? FileManager.default.removeItem(at: root) }
        _ = try await CommandRunner.run(["secrets", "init", "--layout", "comfyui-qwen"], in: root)
        let lockPath = SecretsLock.file(for: root.appendingPathComponent(SecretsManifest.defaultFileName)).path
        let descriptor = open(lockPath, O_RDWR | O_CREAT, 0o600)
        #expect(descriptor >= 0)
        #expect(flock(descriptor, LOCK_EX) == 0)
        let errorFile = root.appendingPathComponent("stderr.txt")
        _ = FileManager.default.createFile(atPath: errorFile.path, contents: nil)
        let process = try CommandRunner.launch(["secrets", "sync"], in: root, standardOutput: .null, standardError: .file(errorFile.path))
        var waited = false
        for _ in 0..<100 where !waited {
            try await Task.sleep(for: .milliseconds(50))
            waited = (try? String(contentsOf: errorFile, encoding: .utf8))?.contains("waiting for it to finish") == true
        }
        #expect(waited)
        #expect(process.isRunning)
        let envBefore = try bytes(root, SeedSecretsFixture.dockerEnvPath)
        #expect(try bytes(root, SeedSecretsFixture.dockerEnvPath) == envBefore)
        flock(descriptor, LOCK_UN)
        close(descriptor)
        #expect(await DedicatedThread.run(name: "test-subprocess") { process.waitForExit() } == 0)
        #expect(try await CommandRunner.run(["secrets", "check"], in: root).status == 0)
    }

    /// Kills a real `comfygate secrets sync` (SIGKILL) before each of the 8 write steps of each of the 2 files it
    /// writes: 16 interruption points. Each file must then be whole (old or new), backups exact, and a plain
    /// sync must finish the job.
    @Test func killingTheProcessAtEveryStepLosesNothing() async throws {
        let hasher = PasswordHasher(maxCost: 31)
        var points = 0
        for step in WriteStep.allCases {
            for occurrence in 1...2 {
                let root = try seedTree(.beforeRepair)
                defer { try? FileManager.default.removeItem(at: root) }
                _ = try await CommandRunner.run(["secrets", "init", "--layout", "comfyui-qwen"], in: root)
                let manifest = root.appendingPathComponent(SecretsManifest.defaultFileName)
                let text = try String(contentsOf: manifest, encoding: .utf8).replacingOccurrences(
                    of: "bcrypt_cost = 12", with: "bcrypt_cost = 4")
                try Data(text.utf8).write(to: manifest)
                let oldServer = try bytes(root, SeedSecretsFixture.serverHashPath)
                let oldEnv = try bytes(root, SeedSecretsFixture.dockerEnvPath)

                let killed = try await CommandRunner.killWhenPrinted(
                    "comfygate-secrets-paused", ["secrets", "sync"], in: root,
                    environment: ["COMFYGATE_SECRETS_TEST_PAUSE": "\(step.rawValue):\(occurrence)"])
                #expect(killed, "\(step) #\(occurrence) was never reached")
                points += 1

                let server = try bytes(root, SeedSecretsFixture.serverHashPath)
                if server != oldServer {
                    let hash = try BcryptHash(parsing: String(decoding: server.dropLast(), as: UTF8.self))
                    #expect(
                        try await hasher.verify(SeedSecretsFixture.rawToken, against: hash), "\(step) #\(occurrence)")
                }
                let env = try bytes(root, SeedSecretsFixture.dockerEnvPath)
                if env != oldEnv {
                    let document = DotenvDocument(bytes: env)
                    let hash = try BcryptHash(
                        parsing: try #require(document.entry(forKey: "COMFYUI_BEARER_TOKEN")?.value))
                    #expect(try await hasher.verify(SeedSecretsFixture.rawToken, against: hash))
                    var expected = DotenvDocument(bytes: oldEnv)
                    try expected.set(hash.string, forKey: "COMFYUI_BEARER_TOKEN")
                    #expect(env == expected.bytes)
                }
                let backupDirectory = root.appendingPathComponent(".secrets/backups")
                for name in (try? FileManager.default.contentsOfDirectory(atPath: backupDirectory.path)) ?? []
                where name.hasSuffix(".bak") {
                    let content = Array(try Data(contentsOf: backupDirectory.appendingPathComponent(name)))
                    #expect(
                        content == (name.hasPrefix("docker") ? oldEnv : oldServer),
                        "\(name) after \(step) #\(occurrence)")
                }
                #expect(try await CommandRunner.run(["secrets", "sync"], in: root).status == 0)
                #expect(try await CommandRunner.run(["secrets", "check"], in: root).status == 0)
                let all = FileManager.default.enumerator(atPath: root.path)?.allObjects as? [String] ?? []
                #expect(!all.contains { $0.contains(".comfygate-tmp-") }, "leftovers after \(step) #\(occurrence)")
            }
        }
        #expect(points == 16)
    }
}

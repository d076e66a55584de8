import ComfyGateTestSupport
import Foundation
import Testing

@testable import ComfyGateCore

@Suite("Secrets: engine")
struct SecretsEngineTests {
    let hasher = PasswordHasher(maxCost: 31)

    func statuses(_ reports: [LocationReport]) -> [String] { reports.map(\.status.rawValue) }

    @Test(arguments: SeedSecretsFixture.State.allCases)
    func theSeedIsCaughtAndRepaired(state: SeedSecretsFixture.State) async throws {
        let tree = try SeedTree(state)
        defer { tree.remove() }
        let engine = try tree.engine()
        let before = await engine.check()
        let expected = state == .beforeRepair ? ["OK", "DRIFT", "MALFORMED"] : ["OK", "DRIFT", "DRIFT"]
        #expect(statuses(before) == expected)
        if state == .beforeRepair {
            #expect(before[2].reason == "bcrypt hashes have 60 characters, this one has 63")
        }
        let originalEnv = try tree.text(SeedSecretsFixture.dockerEnvPath)

        let report = try await engine.sync()
        #expect(report.actions.count == 2)
        #expect(statuses(await engine.check()) == ["OK", "OK", "OK"])
        #expect(try tree.rawToken() == SeedSecretsFixture.rawToken)
        let newEnv = try tree.text(SeedSecretsFixture.dockerEnvPath).split(
            separator: "\n", omittingEmptySubsequences: false)
        let oldEnv = originalEnv.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(newEnv.count == oldEnv.count)
        for index in oldEnv.indices where index != SeedSecretsFixture.dockerTokenLine - 1 {
            #expect(newEnv[index] == oldEnv[index])
        }
        #expect(newEnv[65].hasPrefix("COMFYUI_BEARER_TOKEN='$2b$04$"))
        for hash in [try tree.serverHash(), try #require(try tree.dockerHash())] {
            #expect(try await PythonBcrypt.verify(SeedSecretsFixture.rawToken, hash: hash))
        }
        let backups = tree.backups()
        #expect(backups.count == 2)
        for backup in backups {
            #expect(try tree.mode(backup.path.replacingOccurrences(of: tree.root.path + "/", with: "")) == 0o600)
        }
        #expect(try await engine.sync().actions.isEmpty)
    }

    @Test func widerModesAreUnsafeAndNarrowed() async throws {
        let tree = try SeedTree(.beforeRepair)
        defer { tree.remove() }
        let engine = try tree.engine()
        _ = try await engine.sync()
        try FileManager.default.setAttributes(
            [.posixPermissions: 0o644], ofItemAtPath: tree.url(SeedSecretsFixture.sourcePath).path)
        let report = await engine.check()
        #expect(report[0].status == .unsafe)
        #expect(report[0].reason == "mode 0644 is wider than 0600")
        let sync = try await engine.sync()
        #expect(sync.actions.map(\.summary) == ["chmod 0600 (was 0644)"])
        #expect(try tree.mode(SeedSecretsFixture.sourcePath) == 0o600)
        #expect(statuses(await engine.check()) == ["OK", "OK", "OK"])
    }

    @Test func filesInAGitWorkTreeMustBeIgnored() async throws {
        let tree = try SeedTree(.afterRepair)
        defer { tree.remove() }
        let git = try ChildProcess(["git", "init", "-q", tree.root.path], standardOutput: .null, standardError: .null)
        #expect(git.waitForExit() == 0)
        let engine = try tree.engine()
        _ = try await engine.sync()
        let exposed = await engine.check()
        #expect(statuses(exposed) == ["UNSAFE", "UNSAFE", "UNSAFE"])
        #expect(exposed[0].reason?.contains("not ignored by git") == true)
        let warnings = try await engine.sync().warnings
        for path in [
            SeedSecretsFixture.sourcePath, SeedSecretsFixture.serverHashPath, SeedSecretsFixture.dockerEnvPath,
        ] {
            #expect(warnings.contains { $0.hasPrefix(path) && $0.contains("not ignored by git") })
        }
        try Data(".secrets/\n.env\n".utf8).write(to: tree.url(".gitignore"))
        #expect(statuses(await engine.check()) == ["OK", "OK", "OK"])
    }

    @Test func symlinksAndDirectoriesAreRefusedWithoutWritingAnything() async throws {
        let tree = try SeedTree(.beforeRepair)
        defer { tree.remove() }
        let server = tree.url(SeedSecretsFixture.serverHashPath)
        try FileManager.default.removeItem(at: server)
        try FileManager.default.createSymbolicLink(atPath: server.path, withDestinationPath: "/etc/hostname")
        let engine = try tree.engine()
        let envBefore = try tree.bytes(SeedSecretsFixture.dockerEnvPath)
        #expect(await engine.check()[1].status == .error)
        await #expect {
            try await engine.sync()
        } throws: { error in
            (error as? SecretsError)?.problems == [
                "\(server.path): is a symbolic link; refusing to follow it (point the manifest at the real file)"
            ]
        }
        #expect(try tree.bytes(SeedSecretsFixture.dockerEnvPath) == envBefore)
        try FileManager.default.removeItem(at: server)
        try FileManager.default.createDirectory(at: server, withIntermediateDirectories: false)
        #expect(await engine.check()[1].reason == "is a directory, not a file")
        await #expect(throws: SecretsError.self) { try await engine.sync() }
        #expect(tree.backups().isEmpty)
    }

    @Test func comfyUILoginPasswordFile() async throws {
        let tree = try SeedTree(.afterRepair) { text in
            text + """

                [[secrets.qwen_api_user.targets]]
                path = "ComfyUI/login/PASSWORD"
                format = "comfyui-login"
                value = "bcrypt"
                username = "admin"

                """
        }
        defer { tree.remove() }
        let engine = try tree.engine()
        #expect(await engine.check()[3].status == .missing)
        await #expect {
            try await engine.sync()
        } throws: { error in
            (error as? SecretsError)?.problems.first?.contains("ComfyUI/login does not exist") == true
        }
        try FileManager.default.createDirectory(at: tree.url("ComfyUI/login"), withIntermediateDirectories: true)
        _ = try await engine.sync()
        let lines = try tree.text("ComfyUI/login/PASSWORD").split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 2 && lines[1] == "admin")
        #expect(try await PythonBcrypt.verify(SeedSecretsFixture.rawToken, hash: String(lines[0])))
        #expect(statuses(await engine.check()) == ["OK", "OK", "OK", "OK"])
        try Data((lines[0] + "\nroot").utf8).write(to: tree.url("ComfyUI/login/PASSWORD"))
        #expect(await engine.check()[3].status == .drift)
    }

    @Test func gatewayStoreTokensRotateWithAGracePeriod() async throws {
        let tree = try SeedTree(.afterRepair) { text in
            text + """

                [[secrets.qwen_api_user.targets]]
                path = "comfygate-data"
                format = "comfygate-store"
                value = "bcrypt"
                user = "alice"

                """
        }
        defer { tree.remove() }
        let store = InMemoryGatewayStore()
        let engine = try tree.engine(store: store)
        #expect(await engine.check()[3].reason == "user alice does not exist in the store")
        await #expect(throws: SecretsError.self) { try await engine.sync() }
        let alice = User(name: "alice", role: .user, passwordHash: nil, createdAt: Date())
        try await store.insertUser(alice)
        #expect(await engine.check()[3].status == .missing)
        _ = try await engine.sync()
        #expect(statuses(await engine.check()) == ["OK", "OK", "OK", "OK"])
        let first = try #require(try await store.tokens(userID: alice.id).first)

        let report = try await engine.rotate(["qwen_api_user"], grace: 3600)
        #expect(report.actions.count == 4)
        let tokens = try await store.tokens(userID: alice.id)
        #expect(tokens.count == 2)
        let old = try #require(tokens.first { $0.id == first.id })
        let expiry = try #require(old.expiresAt)
        #expect(abs(expiry.timeIntervalSinceNow - 3600) < 60)
        #expect(old.isUsable(at: Date()))
        let newRaw = try #require(try tree.rawToken())
        #expect(newRaw != SeedSecretsFixture.rawToken && newRaw.count == 43)
        guard case .bcrypt(let newHash) = try #require(tokens.first { $0.id != first.id }).verifier else {
            Issue.record("not a bcrypt token")
            return
        }
        #expect(try await hasher.verify(newRaw, against: BcryptHash(parsing: newHash)))
        #expect(statuses(await engine.check()) == ["OK", "OK", "OK", "OK"])
        _ = try await engine.rotate(["qwen_api_user"], grace: nil)
        #expect(try await store.tokens(userID: alice.id).filter { $0.isUsable(at: Date()) }.count == 1)
    }

    @Test func rotationReplacesTheSourceKeepsBackupsAndRunsTheCommand() async throws {
        let tree = try SeedTree(.afterRepair) { text in
            text.replacingOccurrences(of: "keep = 5", with: "keep = 2")
                .replacingOccurrences(
                    of: "# after_rotate = \"docker compose up -d comfyui-qwen\"",
                    with: "after_rotate = \"echo restarted; exit 3\"")
        }
        defer { tree.remove() }
        let engine = try tree.engine()
        var raws: Set<String> = []
        for _ in 0..<3 {
            _ = try await engine.rotate(["qwen_api_user"], grace: nil)
            raws.insert(try #require(try tree.rawToken()))
        }
        #expect(raws.count == 3)
        #expect(statuses(await engine.check()) == ["OK", "OK", "OK"])
        #expect(tree.backups().count == 6)
        let sourceText = try tree.text(SeedSecretsFixture.sourcePath)
        #expect(sourceText.hasPrefix("# Generated by setup_complete_qwen.py, do not commit\nQWEN_API_USER_TOKEN="))
        #expect(sourceText.hasSuffix("\nCOMFYUI_HOST=localhost\nCOMFYUI_PORT=8188\n"))
        let secret = try #require(engine.manifest.secrets.first)
        let result = try #require(try engine.runAfterRotate(secret))
        #expect(result.status == 3 && result.output == "restarted\n")
        await #expect(throws: SecretsError.self) { try await engine.rotate(["nope"], grace: nil) }
    }

    @Test func dryRunChangesNothingAndPrintsNoSecret() async throws {
        let tree = try SeedTree(.beforeRepair)
        defer { tree.remove() }
        let engine = try tree.engine()
        let files = [
            SeedSecretsFixture.sourcePath, SeedSecretsFixture.serverHashPath, SeedSecretsFixture.dockerEnvPath,
        ]
        let before = try files.map { try tree.bytes($0) }
        let report = try await engine.sync(dryRun: true)
        #expect(report.actions.count == 2)
        #expect(try files.map { try tree.bytes($0) } == before)
        #expect(tree.backups().isEmpty)
        let rotation = try await engine.rotate(["qwen_api_user"], grace: nil, dryRun: true)
        #expect(rotation.actions.count == 3)
        #expect(try files.map { try tree.bytes($0) } == before)
        let printed = (report.actions + rotation.actions).map(\.description).joined() + "\(await engine.check())"
        for secret in [
            SeedSecretsFixture.rawToken, SeedSecretsFixture.oldServerHash, SeedSecretsFixture.oldDockerHash, "$2b$",
        ] {
            #expect(!printed.contains(secret))
        }
    }

    @Test func initAdoptsExistingValuesAndGeneratesMissingOnes() async throws {
        let root = try SeedSecretsFixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let (engine, messages) = try await SecretsEngine.initialize(layout: .comfyUIQwen, root: root)
        #expect(messages[0].hasPrefix("wrote the manifest"))
        #expect(messages[1].hasPrefix("generated qwen_api_user"))
        let source = root.appendingPathComponent(SeedSecretsFixture.sourcePath)
        let value = DotenvDocument(bytes: Array(try Data(contentsOf: source))).entry(forKey: "QWEN_API_USER_TOKEN")?
            .value
        #expect(value?.count == 43)
        #expect((try FileManager.default.attributesOfItem(atPath: source.path)[.posixPermissions] as? Int) == 0o600)
        #expect(statuses(await engine.check()) == ["OK", "MISSING", "MISSING"])
        let (_, again) = try await SecretsEngine.initialize(layout: .comfyUIQwen, root: root)
        #expect(again[0].hasPrefix("kept the existing manifest"))
        #expect(again[1].hasPrefix("adopted qwen_api_user"))
        #expect(
            DotenvDocument(bytes: Array(try Data(contentsOf: source))).entry(forKey: "QWEN_API_USER_TOKEN")?.value
                == value)
    }
}

@Suite("Secrets: formats and line endings")
struct SecretsFormatTests {
    @Test func rawDigestAndMissingKeysKeepEveryOtherByte() async throws {
        let root = try SeedSecretsFixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let manifest = """
            bcrypt_cost = 4
            [secrets.api]
            source = { path = "source.txt", format = "file" }
            [[secrets.api.targets]]
            path = "client.env"
            format = "dotenv"
            key = "API_TOKEN"
            value = "raw"
            [[secrets.api.targets]]
            path = "client.env"
            format = "dotenv"
            key = "API_TOKEN_SHA256"
            value = "sha256"
            [[secrets.api.targets]]
            path = "digest"
            format = "file"
            value = "sha256"
            """
        let files: [(String, String)] = [
            ("comfygate-secrets.toml", manifest),
            ("source.txt", SeedSecretsFixture.rawToken),
            ("client.env", "# client\r\nexport API_TOKEN = old  # rotated by comfygate\r\nOTHER=1"),
            ("digest", "0123"),
        ]
        for (name, text) in files { try Data(text.utf8).write(to: root.appendingPathComponent(name)) }
        let engine = SecretsEngine(
            manifest: try SecretsManifest(contentsOf: root.appendingPathComponent("comfygate-secrets.toml")))
        let before = await engine.check()
        #expect(before.map(\.status) == [.unsafe, .drift, .missing, .malformed])
        #expect(before[3].reason == "not a SHA-256 hex digest (64 hex digits; found 4 characters)")

        let report = try await engine.sync()
        #expect(report.actions.map(\.location) == ["source.txt", "client.env", "digest"])
        #expect(report.actions[0].summary == "chmod 0600 (was 0644)")
        let client = try String(contentsOf: root.appendingPathComponent("client.env"), encoding: .utf8)
        let digest = TokenFormat.digest(SeedSecretsFixture.rawToken)
        #expect(
            client
                == "# client\r\nexport API_TOKEN = '\(SeedSecretsFixture.rawToken)'  # rotated by comfygate\r\nOTHER=1\r\nAPI_TOKEN_SHA256=\(digest)"
        )
        #expect(try String(contentsOf: root.appendingPathComponent("digest"), encoding: .utf8) == digest)
        #expect(
            try String(contentsOf: root.appendingPathComponent("source.txt"), encoding: .utf8)
                == SeedSecretsFixture.rawToken)
        #expect(await engine.check().map(\.status) == [.ok, .ok, .ok, .ok])
    }

    @Test func aMissingSourceStopsSyncBeforeAnyWrite() async throws {
        let tree = try SeedTree(.beforeRepair)
        defer { tree.remove() }
        try FileManager.default.removeItem(at: tree.url(SeedSecretsFixture.sourcePath))
        let engine = try tree.engine()
        let report = await engine.check()
        #expect(report.map(\.status) == [.missing, .error, .malformed])
        #expect(report[1].reason == "cannot be verified: the source is MISSING")
        await #expect {
            try await engine.sync()
        } throws: { error in
            (error as? SecretsError)?.problems.first?.contains("the source of qwen_api_user is MISSING") == true
        }
        #expect(tree.backups().isEmpty)
    }

    @Test func aVerifyingHashThatComposeWouldInterpolateIsMalformed() async throws {
        let tree = try SeedTree(.afterRepair)
        defer { tree.remove() }
        let engine = try tree.engine()
        _ = try await engine.sync()
        let hash = try #require(try tree.dockerHash())
        let env = tree.url(SeedSecretsFixture.dockerEnvPath)
        let quoted = try String(contentsOf: env, encoding: .utf8)
        try Data(quoted.replacingOccurrences(of: "'\(hash)'", with: hash).utf8).write(to: env)
        let report = await engine.check()
        #expect(report[2].status == .malformed)
        #expect(report[2].reason == "the value contains '$' outside single quotes: Docker Compose would interpolate it")
        _ = try await engine.sync()
        #expect(try tree.text(SeedSecretsFixture.dockerEnvPath).contains("COMFYUI_BEARER_TOKEN='$2b$04$"))
        #expect(await engine.check().map(\.status) == [.ok, .ok, .ok])
    }
}

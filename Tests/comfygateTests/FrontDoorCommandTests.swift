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
        _ = await alone.stop()
        #expect(alone.standardError.contains(#"msg="ComfyUI does not answer""#), "\(alone.standardError)")
        #expect(alone.standardError.contains("upstream=http://127.0.0.1:\(closed.port)"))

        try await withComfyUIStandIn { standIn in
            let gate = try await ServeProcess.start(["--data", directory.path, "--upstream", standIn.baseURL])
            _ = try await eventually(within: .seconds(10)) { gate.standardError.contains("ComfyUI answers") }
            _ = await gate.stop()
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

    @Test func aListenAddressThatCannotBeBoundIsOnePlainLine() async throws {
        let directory = try AccountCommandTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try await ServeProcess.running(["--data", directory.appendingPathComponent("first").path]) { held in
            for (listen, reason) in [
                ("127.0.0.1:\(held.port)", "another program already listens there"),
                ("192.0.2.1:8189", "no network interface of this machine has that address"),
            ] {
                let result = try await CommandRunner.run(
                    ["serve", "--listen", listen, "--data", directory.appendingPathComponent("second").path], timeout: 60)
                #expect(result.status == 2, "\(listen): \(result.stderr)")
                let lines = result.stderr.split(separator: "\n").filter { !$0.hasPrefix("time=") }
                #expect(lines.count == 1 && lines[0].hasPrefix("comfygate: cannot listen on \(listen): \(reason)"), "\(result.stderr)")
                #expect(lines[0].contains("--listen, COMFYGATE_LISTEN or `listen`"))
            }
        }
    }

    @Test func anUnreachableOrRefusingPostgreSQLIsOnePlainLine() async throws {
        guard let url = ProcessInfo.processInfo.environment["COMFYGATE_TEST_POSTGRES_URL"], var components = URLComponents(string: url) else {
            Issue.record("COMFYGATE_TEST_POSTGRES_URL is not set: run the tests through scripts/test")
            return
        }
        let closed = try RefusingPort()
        var unreachable = components
        unreachable.port = closed.port
        var wrongPassword = components
        wrongPassword.password = "not-the-password"
        components.path = "/no_such_database"
        let cases: [(String, Int32, String)] = [
            (unreachable.string!, 1, "postgres at 127.0.0.1:\(closed.port)/comfygate: nothing accepts connections there (connection refused)"),
            (wrongPassword.string!, 2, "the server refused the login of user 'comfygate'"),
            (components.string!, 2, "the database 'no_such_database' does not exist"),
        ]
        for (databaseURL, status, message) in cases {
            for command in [["users", "list"], ["serve", "--listen", "127.0.0.1:0"]] {
                let result = try await CommandRunner.run(command + ["--database-url", databaseURL], timeout: 60)
                #expect(result.status == status, "\(command) \(message): \(result.stderr)")
                let lines = result.stderr.split(separator: "\n").filter { !$0.hasPrefix("time=") }
                #expect(lines.count == 1 && lines[0].hasPrefix("comfygate: cannot use the PostgreSQL store: "), "\(result.stderr)")
                #expect(result.stderr.contains(message), "\(result.stderr)")
                #expect(!result.stderr.contains("not-the-password") && !result.stderr.contains("PSQLError"))
            }
        }
    }

    /// Every command's help shows examples and names what each option's value is.
    @Test func everyHelpHasExamplesAndNamedValuePlaceholders() async throws {
        let commands = [
            ["serve"], ["users"], ["users", "add"], ["users", "list"], ["users", "disable"], ["users", "enable"],
            ["users", "passwd"], ["users", "quota"], ["tokens"], ["tokens", "create"], ["tokens", "list"], ["tokens", "revoke"],
            ["tokens", "import"], ["usage"], ["audit"], ["secrets"], ["secrets", "init"], ["secrets", "check"],
            ["secrets", "sync"], ["secrets", "rotate"], ["doctor"], ["models"], ["models", "list"], ["models", "download"],
            ["models", "verify"], ["generate"], ["setup"],
        ]
        for command in commands {
            let help = try await CommandRunner.run(command + ["--help"])
            #expect(help.status == 0)
            #expect(help.stdout.contains("Example"), "\(command) has no example")
            // A placeholder that only repeats its option's name says nothing about the value.
            for named in ["data", "database-url", "config", "listen", "upstream", "public-url", "log-level", "expires", "since",
                "token-file", "token-key", "report", "watch", "timeout", "root", "grace", "bcrypt-hash-file", "manifest", "weight"] {
                #expect(!help.stdout.contains("--\(named) <\(named)>"), "\(command): --\(named) <\(named)>")
            }
        }
    }
}

import Foundation
import Testing

@Suite struct AccountCommandTests {
    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("comfygate-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test func usersAreAddedListedDisabledAndGivenPasswords() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = ["--data", directory.appendingPathComponent("data").path]

        let added = try CommandRunner.run(["users", "add", "alice", "--role", "user"] + data)
        #expect(added.exitCode == 0, "\(added.standardError)")
        let password = added.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(password.count == 20, "a generated password is printed alone on stdout")

        let piped = try CommandRunner.run(["users", "add", "bob", "--role", "viewer", "--password-stdin"] + data, standardInput: "bobs-password-1\n")
        #expect(piped.exitCode == 0, "\(piped.standardError)")
        #expect(piped.standardOutput.isEmpty)

        let duplicate = try CommandRunner.run(["users", "add", "alice", "--role", "admin"] + data)
        #expect(duplicate.exitCode == 1)
        #expect(duplicate.standardError.contains("already exists"))
        #expect(!duplicate.standardError.contains("Fatal"))

        let badRole = try CommandRunner.run(["users", "add", "carol", "--role", "root"] + data)
        #expect(badRole.exitCode == 2, "usage error, got \(badRole.exitCode)")

        let shortPassword = try CommandRunner.run(["users", "add", "dan", "--role", "user", "--password-stdin"] + data, standardInput: "short\n")
        #expect(shortPassword.exitCode == 1)
        #expect(shortPassword.standardError.contains("at least 8 characters"))

        #expect(try CommandRunner.run(["users", "disable", "bob"] + data).exitCode == 0)
        let list = try CommandRunner.run(["users", "list", "--json"] + data)
        #expect(list.exitCode == 0)
        let users = try #require(try JSONSerialization.jsonObject(with: Data(list.standardOutput.utf8)) as? [[String: Any]])
        #expect(users.map { $0["name"] as? String } == ["alice", "bob"])
        #expect(users[1]["disabled"] as? Bool == true)
        #expect(users[1]["role"] as? String == "viewer")
        #expect(!list.standardOutput.contains("$2b$"), "hashes are never listed")

        let table = try CommandRunner.run(["users", "list"] + data)
        #expect(table.standardOutput.hasPrefix("NAME"))

        #expect(try CommandRunner.run(["users", "passwd", "alice", "--password-stdin"] + data, standardInput: "new-password-2\n").exitCode == 0)
        let unknown = try CommandRunner.run(["users", "disable", "nobody"] + data)
        #expect(unknown.exitCode == 1)
        #expect(unknown.standardError.contains("user 'nobody' does not exist"))
    }

    @Test func tokensAreCreatedListedRevokedAndImported() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = ["--data", directory.appendingPathComponent("data").path]
        #expect(try CommandRunner.run(["users", "add", "alice", "--role", "user"] + data).exitCode == 0)

        let created = try CommandRunner.run(["tokens", "create", "--user", "alice", "--name", "laptop", "--expires", "30d"] + data)
        #expect(created.exitCode == 0, "\(created.standardError)")
        let token = created.standardOutput.trimmingCharacters(in: .newlines)
        #expect(token.hasPrefix("cgt_") && token.count == 60 && !token.contains("\n"), "only the token on stdout")

        let badExpiry = try CommandRunner.run(["tokens", "create", "--user", "alice", "--expires", "soon"] + data)
        #expect(badExpiry.exitCode == 2)
        #expect(badExpiry.standardError.contains("--expires"))

        let listed = try CommandRunner.run(["tokens", "list", "--user", "alice", "--json"] + data)
        let tokens = try #require(try JSONSerialization.jsonObject(with: Data(listed.standardOutput.utf8)) as? [[String: Any]])
        #expect(tokens.count == 1)
        #expect(tokens[0]["name"] as? String == "laptop")
        #expect(tokens[0]["state"] as? String == "active")
        #expect(tokens[0]["expires_at"] is String)
        #expect(!listed.standardOutput.contains(token), "secrets are never listed")
        let id = try #require(tokens[0]["id"] as? String)
        #expect(token.contains(id), "the public id is part of the token")

        #expect(try CommandRunner.run(["tokens", "revoke", id] + data).exitCode == 0)
        let again = try CommandRunner.run(["tokens", "revoke", id] + data)
        #expect(again.exitCode == 1)
        let state = try CommandRunner.run(["tokens", "list", "--json"] + data)
        #expect(state.standardOutput.contains("\"revoked\""))

        // The seed's server token file holds a valid hash: it imports. Its Docker hash has 63 characters: refused.
        let hashFile = directory.appendingPathComponent("qwen-api-user.token")
        try "$2b$12$ubd9tM4L2pvqB/peVpwvyuASqddG9WVoNj0NaAPHYyH57LW.vVjr.\n".write(to: hashFile, atomically: true, encoding: .utf8)
        let imported = try CommandRunner.run(["tokens", "import", "--user", "alice", "--bcrypt-hash-file", hashFile.path] + data)
        #expect(imported.exitCode == 0, "\(imported.standardError)")
        try "$2b$12$6kSChnnUFiCUPfyAllJPoHm.9O9LL9KnIlX88zomudAiJDvMRoJ3uOXa\n".write(to: hashFile, atomically: true, encoding: .utf8)
        let malformed = try CommandRunner.run(["tokens", "import", "--user", "alice", "--bcrypt-hash-file", hashFile.path] + data)
        #expect(malformed.exitCode == 1)
        #expect(malformed.standardError.contains("60 characters, this one has 63"))
        let missing = try CommandRunner.run(["tokens", "import", "--user", "alice", "--bcrypt-hash-file", "/nonexistent/file"] + data)
        #expect(missing.exitCode == 1)
        #expect(missing.standardError.contains("cannot read /nonexistent/file"))
    }

    @Test func theDataDirectoryAndDatabaseArePrivate() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = directory.appendingPathComponent("data")
        #expect(try CommandRunner.run(["users", "add", "alice", "--role", "user", "--data", data.path]).exitCode == 0)
        let directoryMode = try FileManager.default.attributesOfItem(atPath: data.path)[.posixPermissions] as? Int
        #expect(directoryMode == 0o700)
        let fileMode = try FileManager.default.attributesOfItem(atPath: data.appendingPathComponent("comfygate.sqlite").path)[.posixPermissions] as? Int
        #expect(fileMode == 0o600)
    }

    @Test func badConfigurationIsOneLinePerProblemAndExitCode2() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = directory.appendingPathComponent("comfygate.toml")
        try "upstream = \"not a url\"\nlisten = \"x\"\n".write(to: config, atomically: true, encoding: .utf8)
        let result = try CommandRunner.run(["serve", "--config", config.path])
        #expect(result.exitCode == 2)
        let lines = result.standardError.split(separator: "\n")
        #expect(lines.count == 2, "\(result.standardError)")
        #expect(result.standardError.contains("upstream (from \(config.path))"))
        let environment = try CommandRunner.run(["serve", "--data", directory.path], environment: ["COMFYGATE_LISTEN": "nowhere"])
        #expect(environment.exitCode == 2)
        #expect(environment.standardError.contains("listen (from COMFYGATE_LISTEN)"))
        let missing = try CommandRunner.run(["serve", "--config", "/nonexistent.toml"])
        #expect(missing.exitCode == 2)
        #expect(missing.standardError.contains("cannot read configuration file /nonexistent.toml"))
    }
}

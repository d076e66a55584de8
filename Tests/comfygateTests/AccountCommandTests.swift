import Foundation
import Testing

@Suite struct AccountCommandTests {
    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("comfygate-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test func usersAreAddedListedDisabledAndGivenPasswords() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = ["--data", directory.appendingPathComponent("data").path]

        let added = try await CommandRunner.run(["users", "add", "alice", "--role", "user"] + data)
        #expect(added.status == 0, "\(added.stderr)")
        let password = added.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(password.count == 20, "a generated password is printed alone on stdout")

        let piped = try await CommandRunner.run(["users", "add", "bob", "--role", "viewer", "--password-stdin"] + data, standardInput: "bobs-password-1\n")
        #expect(piped.status == 0, "\(piped.stderr)")
        #expect(piped.stdout.isEmpty)

        let duplicate = try await CommandRunner.run(["users", "add", "alice", "--role", "admin"] + data)
        #expect(duplicate.status == 1)
        #expect(duplicate.stderr.contains("already exists"))
        #expect(!duplicate.stderr.contains("Fatal"))

        let badRole = try await CommandRunner.run(["users", "add", "carol", "--role", "root"] + data)
        #expect(badRole.status == 2, "usage error, got \(badRole.status)")

        let shortPassword = try await CommandRunner.run(["users", "add", "dan", "--role", "user", "--password-stdin"] + data, standardInput: "short\n")
        #expect(shortPassword.status == 2, "bad input")
        #expect(shortPassword.stderr == "comfygate: passwords need at least 8 characters\n")
        let badName = try await CommandRunner.run(["users", "add", "eve smith", "--role", "user"] + data)
        #expect(badName.status == 2, "bad input")
        #expect(badName.stderr == "comfygate: invalid user name 'eve smith': use 1 to 64 letters, digits, '.', '_', '-' or '@'\n")

        #expect(try await CommandRunner.run(["users", "disable", "bob"] + data).status == 0)
        let list = try await CommandRunner.run(["users", "list", "--json"] + data)
        #expect(list.status == 0)
        let listing = try #require(try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [String: Any])
        #expect(listing["version"] as? Int == 1)
        let users = try #require(listing["users"] as? [[String: Any]])
        #expect(users.map { $0["name"] as? String } == ["alice", "bob"])
        #expect(users[1]["disabled"] as? Bool == true)
        #expect(users[1]["role"] as? String == "viewer")
        #expect(!list.stdout.contains("$2b$"), "hashes are never listed")

        let table = try await CommandRunner.run(["users", "list"] + data)
        #expect(table.stdout.hasPrefix("NAME"))

        #expect(try await CommandRunner.run(["users", "passwd", "alice", "--password-stdin"] + data, standardInput: "new-password-2\n").status == 0)
        let unknown = try await CommandRunner.run(["users", "disable", "nobody"] + data)
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("user 'nobody' does not exist"))
    }

    @Test func tokensAreCreatedListedRevokedAndImported() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = ["--data", directory.appendingPathComponent("data").path]
        #expect(try await CommandRunner.run(["users", "add", "alice", "--role", "user"] + data).status == 0)

        let created = try await CommandRunner.run(["tokens", "create", "--user", "alice", "--name", "laptop", "--expires", "30d"] + data)
        #expect(created.status == 0, "\(created.stderr)")
        let token = created.stdout.trimmingCharacters(in: .newlines)
        #expect(token.hasPrefix("cgt_") && token.count == 60 && !token.contains("\n"), "only the token on stdout")

        let badExpiry = try await CommandRunner.run(["tokens", "create", "--user", "alice", "--expires", "soon"] + data)
        #expect(badExpiry.status == 2)
        #expect(badExpiry.stderr.contains("--expires"))

        let listed = try await CommandRunner.run(["tokens", "list", "--user", "alice", "--json"] + data)
        let tokenListing = try #require(try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [String: Any])
        #expect(tokenListing["version"] as? Int == 1)
        let tokens = try #require(tokenListing["tokens"] as? [[String: Any]])
        #expect(tokens.count == 1)
        #expect(tokens[0]["name"] as? String == "laptop")
        #expect(tokens[0]["state"] as? String == "active")
        #expect(tokens[0]["expires_at"] is String)
        #expect(!listed.stdout.contains(token), "secrets are never listed")
        let id = try #require(tokens[0]["id"] as? String)
        #expect(token.contains(id), "the public id is part of the token")

        #expect(try await CommandRunner.run(["tokens", "revoke", id] + data).status == 0)
        let again = try await CommandRunner.run(["tokens", "revoke", id] + data)
        #expect(again.status == 1)
        let state = try await CommandRunner.run(["tokens", "list", "--json"] + data)
        #expect(state.stdout.contains("\"revoked\""))

        // The seed's server token file holds a valid hash: it imports. Its Docker hash has 63 characters: refused.
        let hashFile = directory.appendingPathComponent("qwen-api-user.token")
        try "$2b$12$ubd9tM4L2pvqB/peVpwvyuASqddG9WVoNj0NaAPHYyH57LW.vVjr.\n".write(to: hashFile, atomically: true, encoding: .utf8)
        let imported = try await CommandRunner.run(["tokens", "import", "--user", "alice", "--bcrypt-hash-file", hashFile.path] + data)
        #expect(imported.status == 0, "\(imported.stderr)")
        try "$2b$12$6kSChnnUFiCUPfyAllJPoHm.9O9LL9KnIlX88zomudAiJDvMRoJ3uOXa\n".write(to: hashFile, atomically: true, encoding: .utf8)
        let malformed = try await CommandRunner.run(["tokens", "import", "--user", "alice", "--bcrypt-hash-file", hashFile.path] + data)
        #expect(malformed.status == 1)
        #expect(malformed.stderr.contains("60 characters, this one has 63"))
        let missing = try await CommandRunner.run(["tokens", "import", "--user", "alice", "--bcrypt-hash-file", "/nonexistent/file"] + data)
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("cannot read /nonexistent/file"))
    }

    @Test func theDataDirectoryAndDatabaseArePrivate() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = directory.appendingPathComponent("data")
        #expect(try await CommandRunner.run(["users", "add", "alice", "--role", "user", "--data", data.path]).status == 0)
        let directoryMode = try FileManager.default.attributesOfItem(atPath: data.path)[.posixPermissions] as? Int
        #expect(directoryMode == 0o700)
        let fileMode = try FileManager.default.attributesOfItem(atPath: data.appendingPathComponent("comfygate.sqlite").path)[.posixPermissions] as? Int
        #expect(fileMode == 0o600)
    }

    @Test func badConfigurationIsOneLinePerProblemAndExitCode2() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = directory.appendingPathComponent("comfygate.toml")
        try "upstream = \"not a url\"\nlisten = \"x\"\n".write(to: config, atomically: true, encoding: .utf8)
        let result = try await CommandRunner.run(["serve", "--config", config.path])
        #expect(result.status == 2)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 2, "\(result.stderr)")
        #expect(result.stderr.contains("upstream (from \(config.path))"))
        let environment = try await CommandRunner.run(["serve", "--data", directory.path], environment: ["COMFYGATE_LISTEN": "nowhere"])
        #expect(environment.status == 2)
        #expect(environment.stderr.contains("listen (from COMFYGATE_LISTEN)"))
        let missing = try await CommandRunner.run(["serve", "--config", "/nonexistent.toml"])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("cannot read configuration file /nonexistent.toml"))
    }
}

@Suite struct SharedStoreCommandTests {
    /// The same commands against PostgreSQL (the shared store for several replicas), from
    /// `COMFYGATE_TEST_POSTGRES_URL` as `scripts/test` sets it.
    @Test func usersAndTokensWorkAgainstPostgreSQL() async throws {
        guard let url = ProcessInfo.processInfo.environment["COMFYGATE_TEST_POSTGRES_URL"] else {
            Issue.record("COMFYGATE_TEST_POSTGRES_URL is not set: run the tests through scripts/test")
            return
        }
        let name = "pg-\(UUID().uuidString.prefix(8).lowercased())"
        let store = ["--database-url", url]
        let added = try await CommandRunner.run(["users", "add", name, "--role", "viewer"] + store)
        #expect(added.status == 0, "\(added.stderr)")
        let token = try await CommandRunner.run(["tokens", "create", "--user", name] + store)
        #expect(token.status == 0, "\(token.stderr)")
        #expect(token.stdout.hasPrefix("cgt_"))
        let listed = try await CommandRunner.run(["tokens", "list", "--user", name, "--json"] + store)
        #expect(listed.status == 0)
        #expect(listed.stdout.contains("\"active\""))
        let bad = try await CommandRunner.run(["users", "list"], environment: ["COMFYGATE_DATABASE_URL": "mysql://nope"])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("database_url (from COMFYGATE_DATABASE_URL)"))
    }
}

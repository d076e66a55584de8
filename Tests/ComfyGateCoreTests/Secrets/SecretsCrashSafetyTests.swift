import ComfyGateTestSupport
import Foundation
import Synchronization
import Testing

@testable import ComfyGateCore

/// Interrupts `sync` and `rotate` before every write step of every file (backup write, backup fsync, backup
/// rename, backup directory fsync, temporary write, temporary fsync, rename, directory fsync) and checks that
/// each file then holds its old content or its complete new content, that backups hold exactly the old
/// content, and that a plain `sync` afterwards repairs everything.
@Suite("Secrets: crash safety")
struct SecretsCrashSafetyTests {
    struct Interrupted: Error {}

    /// Throws before the `occurrence`-th time `step` is reached.
    static func interrupting(_ step: WriteStep, occurrence: Int) -> AtomicFileWriter {
        let seen = Mutex(0)
        return AtomicFileWriter { current, _ in
            guard current == step else { return }
            let count = seen.withLock { value in
                value += 1
                return value
            }
            if count == occurrence { throw Interrupted() }
        }
    }

    static let files = [
        SeedSecretsFixture.sourcePath, SeedSecretsFixture.serverHashPath, SeedSecretsFixture.dockerEnvPath,
    ]

    /// Checks one interrupted tree; returns false when the step was never reached (the run completed).
    func verify(_ tree: SeedTree, old: [String: [UInt8]], oldRaw: String) async throws {
        let raw = try #require(try tree.rawToken())
        let hasher = PasswordHasher(maxCost: 31)
        // The source: old bytes, or the same file with only the token line changed.
        let source = try tree.bytes(SeedSecretsFixture.sourcePath)
        if source != old[SeedSecretsFixture.sourcePath] {
            #expect(raw != oldRaw && raw.count == 43)
            var expected = DotenvDocument(bytes: old[SeedSecretsFixture.sourcePath]!)
            try expected.set(raw, forKey: "QWEN_API_USER_TOKEN")
            #expect(source == expected.bytes)
        }
        // The server hash file: old bytes, or one new hash that verifies against the current source.
        let server = try tree.bytes(SeedSecretsFixture.serverHashPath)
        if server != old[SeedSecretsFixture.serverHashPath] {
            let hash = try BcryptHash(parsing: try tree.serverHash())
            #expect(try await hasher.verify(raw, against: hash))
            #expect(server == Array((hash.string + "\n").utf8))
        }
        // The Docker .env: old bytes, or the same file with only line 66 changed to a verifying hash.
        let env = try tree.bytes(SeedSecretsFixture.dockerEnvPath)
        if env != old[SeedSecretsFixture.dockerEnvPath] {
            let hash = try BcryptHash(parsing: try #require(try tree.dockerHash()))
            #expect(try await hasher.verify(raw, against: hash))
            var expected = DotenvDocument(bytes: old[SeedSecretsFixture.dockerEnvPath]!)
            try expected.set(hash.string, forKey: "COMFYUI_BEARER_TOKEN")
            #expect(env == expected.bytes)
        }
        // Backups: each one holds exactly the old content of its file, mode 0600.
        for backup in tree.backups() {
            let name = backup.lastPathComponent
            let original = try #require(
                Self.files.first { name.hasPrefix($0.replacingOccurrences(of: "/", with: "__") + ".") })
            #expect(Array(try Data(contentsOf: backup)) == old[original], "\(name)")
            #expect((try FileManager.default.attributesOfItem(atPath: backup.path)[.posixPermissions] as? Int) == 0o600)
        }
        #expect(tree.leftovers().isEmpty)
        // Recovery: a plain sync brings everything back in line.
        let engine = try tree.engine()
        _ = try await engine.sync()
        #expect(await engine.check().map(\.status) == [.ok, .ok, .ok])
    }

    /// Interrupts every step of every file of a sync (both targets need writing) and of a rotation (the source
    /// and both targets); returns the number of interruption points exercised.
    @Test func everyWriteStepOfEveryFile() async throws {
        var points = 0
        let runs: [(SeedSecretsFixture.State, Bool, Int)] = [
            (.beforeRepair, false, 2), (.afterRepair, false, 2), (.afterRepair, true, 3),
        ]
        for (state, rotating, fileCount) in runs {
            for step in WriteStep.allCases {
                for occurrence in 1...fileCount {
                    let tree = try SeedTree(state)
                    defer { tree.remove() }
                    let old = try Dictionary(uniqueKeysWithValues: Self.files.map { ($0, try tree.bytes($0)) })
                    let engine = try tree.engine(writer: Self.interrupting(step, occurrence: occurrence))
                    await #expect("\(state) \(rotating ? "rotate" : "sync") \(step) #\(occurrence)") {
                        if rotating {
                            _ = try await engine.rotate(["qwen_api_user"], grace: nil)
                        } else {
                            _ = try await engine.sync()
                        }
                    } throws: { error in
                        (error as? SecretsError)?.problems.first?.contains("interrupted before \(step.rawValue)")
                            == true
                    }
                    try await verify(tree, old: old, oldRaw: SeedSecretsFixture.rawToken)
                    points += 1
                }
            }
        }
        // 8 steps × (2 files + 2 files + 3 files).
        #expect(points == 56)
    }
}

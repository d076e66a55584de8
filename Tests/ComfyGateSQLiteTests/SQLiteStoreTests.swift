import ComfyGateCore
import ComfyGateSQLite
import ComfyGateTestSupport
import Foundation
import Testing

/// A directory under the system's temporary directory, removed when `body` returns.
func withTemporaryDirectory<T>(_ body: (String) async throws -> T) async throws -> T {
    let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("comfygate-sqlite-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    return try await body(directory)
}

@Suite struct SQLiteStoreConformanceTests {
    @Test(arguments: GatewayStoreConformance.Check.allCases)
    func inMemory(_ check: GatewayStoreConformance.Check) async throws {
        try await check.run(on: SQLiteStore.inMemory())
    }

    @Test(arguments: GatewayStoreConformance.Check.allCases)
    func file(_ check: GatewayStoreConformance.Check) async throws {
        try await withTemporaryDirectory { directory in
            try await check.run(on: SQLiteStore(path: "\(directory)/comfygate.sqlite"))
        }
    }
}

@Suite struct SQLiteStoreFileTests {
    private func mode(_ path: String) throws -> Int {
        try #require(FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
    }

    @Test func databaseAndCompanionFilesAreOwnerOnly() async throws {
        try await withTemporaryDirectory { directory in
            let path = "\(directory)/comfygate.sqlite"
            let store = try SQLiteStore(path: path)
            try await store.insertUser(User(name: "alice", role: .admin, passwordHash: nil, createdAt: Date()))
            for file in [path, "\(path)-wal", "\(path)-shm"] {
                let mode = try mode(file)
                #expect(mode == 0o600, "\(file) has mode \(String(mode, radix: 8))")
            }
        }
    }

    @Test func twoStoresOnOneFileSeeEachOthersWrites() async throws {
        try await withTemporaryDirectory { directory in
            let path = "\(directory)/comfygate.sqlite"
            let server = try SQLiteStore(path: path)
            let cli = try SQLiteStore(path: path)
            try await cli.insertUser(User(id: "u1", name: "alice", role: .admin, passwordHash: nil, createdAt: Date()))
            #expect(try await server.user(named: "alice")?.id == "u1")
            try await server.appendAudit(AuditEvent(time: Date(), action: "login.succeeded", userName: "alice"))
            #expect(try await cli.auditEvents(limit: 1).first?.action == "login.succeeded")
            await #expect(throws: StoreError.duplicate("user 'ALICE'")) {
                try await server.insertUser(
                    User(id: "u2", name: "ALICE", role: .user, passwordHash: nil, createdAt: Date()))
            }

            // Both write at once; the busy timeout makes each wait for the other's lock.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<40 {
                    let store = index.isMultiple(of: 2) ? server : cli
                    group.addTask {
                        try await store.appendAudit(AuditEvent(time: Date(), action: "event\(index)"))
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await server.auditEvents(limit: 100).count == 41)
        }
    }

    /// Runs `body` with two stores on one new file: two processes sharing it.
    private func withTwoStoresOnOneFile(_ body: (SQLiteStore, SQLiteStore) async throws -> Void) async throws {
        try await withTemporaryDirectory { directory in
            let path = "\(directory)/comfygate.sqlite"
            try await body(SQLiteStore(path: path), SQLiteStore(path: path))
        }
    }

    @Test func claimsThroughTwoStoresOnOneFileNeverOverfillABackend() async throws {
        try await withTwoStoresOnOneFile { try await GatewayStoreConformance.concurrentClaimsNeverOverfillABackend($0, $1) }
    }

    @Test func loginFailuresThroughTwoStoresOnOneFileAreAllCounted() async throws {
        try await withTwoStoresOnOneFile { try await GatewayStoreConformance.concurrentLoginFailuresAreAllCounted($0, $1) }
    }

    @Test func loginThrottlesOverTwoStoresOnOneFileShareLockouts() async throws {
        try await withTwoStoresOnOneFile { try await ReplicaScenarios.loginThrottlesShareLockouts($0, $1) }
    }

    @Test func revocationsThroughOneStoreOnAFileReachAnother() async throws {
        try await withTwoStoresOnOneFile { try await ReplicaScenarios.revocationsReachTheOtherReplica($0, $1) }
    }

    @Test func reopeningKeepsDataAndDoesNotMigrateAgain() async throws {
        try await withTemporaryDirectory { directory in
            let path = "\(directory)/comfygate.sqlite"
            try await SQLiteStore(path: path).insertUser(
                User(id: "u1", name: "alice", role: .admin, passwordHash: nil, createdAt: Date())
            )
            let reopened = try SQLiteStore(path: path)
            #expect(try await reopened.userCount() == 1)
        }
    }

    @Test func storesOpenedAtOnceMigrateOnce() async throws {
        try await withTemporaryDirectory { directory in
            let path = "\(directory)/comfygate.sqlite"
            let stores = try await withThrowingTaskGroup(of: SQLiteStore.self) { group in
                for _ in 0..<6 { group.addTask { try SQLiteStore(path: path) } }
                return try await group.reduce(into: [SQLiteStore]()) { $0.append($1) }
            }
            #expect(stores.count == 6)
            #expect(try await stores[0].userCount() == 0)
        }
    }

    @Test func missingDirectoryIsUnavailableAndNamesThePath() async throws {
        let path = "/nonexistent-\(UUID().uuidString)/comfygate.sqlite"
        do {
            _ = try SQLiteStore(path: path)
            Issue.record("opening \(path) should fail")
        } catch let StoreError.unavailable(message) {
            #expect(message.hasPrefix("cannot open \(path): "), "message: \(message)")
        }
    }

    @Test func fileThatIsNotADatabaseIsUnavailable() async throws {
        try await withTemporaryDirectory { directory in
            let path = "\(directory)/notes.txt"
            try Data(String(repeating: "not a database\n", count: 100).utf8).write(to: URL(fileURLWithPath: path))
            do {
                _ = try SQLiteStore(path: path)
                Issue.record("opening \(path) should fail")
            } catch let StoreError.unavailable(message) {
                #expect(message.hasPrefix("cannot open \(path): "), "message: \(message)")
            }
        }
    }
}

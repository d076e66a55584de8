import ComfyGateCore
import ComfyGateTestSupport
import Foundation
import PostgresNIO
import Testing

@testable import ComfyGatePostgres

@Suite struct PostgresStoreConformanceTests {
    @Test(arguments: GatewayStoreConformance.Check.allCases)
    func conformance(_ check: GatewayStoreConformance.Check) async throws {
        try await PostgresTestDatabase.withFreshStore { store in
            try await check.run(on: store)
        }
    }
}

@Suite struct PostgresStoreMigrationTests {
    @Test func replicasMigratingAtOnceApplyEachVersionOnce() async throws {
        try await PostgresTestDatabase.withFreshDatabase { url in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        try await PostgresTestDatabase.withStore(url: url, migrate: false) { store in
                            try await store.migrate()
                            try await store.migrate()
                        }
                    }
                }
                try await group.waitForAll()
            }
            try await PostgresTestDatabase.withClient(url: url) { client in
                var versions: [Int] = []
                for try await version in try await client.query(
                    "SELECT version FROM comfygate_migrations ORDER BY version"
                ).decode(Int.self) {
                    versions.append(version)
                }
                #expect(versions == PostgresSchema.migrations.map(\.version))
            }
        }
    }

    @Test func uniqueViolationsBecomeDuplicateErrors() async throws {
        try await PostgresTestDatabase.withFreshStore { store in
            let alice = User(id: "u1", name: "alice", role: .admin, passwordHash: nil, createdAt: Date())
            try await store.insertUser(alice)
            await #expect(throws: StoreError.duplicate("user 'Alice'")) {
                try await store.insertUser(
                    User(id: "u2", name: "Alice", role: .user, passwordHash: nil, createdAt: Date()))
            }
        }
    }
}

/// Two stores on one database, each with its own connection pool: two gateway replicas.
@Suite struct PostgresStoreReplicaTests {
    /// Runs `body` with two migrated stores on one fresh database.
    private func withTwoReplicas(_ body: (PostgresStore, PostgresStore) async throws -> Void) async throws {
        try await PostgresTestDatabase.withFreshDatabase { url in
            try await PostgresTestDatabase.withStore(url: url) { first in
                try await PostgresTestDatabase.withStore(url: url, migrate: false) { second in
                    try await body(first, second)
                }
            }
        }
    }

    @Test func claimsThroughTwoReplicasNeverOverfillABackend() async throws {
        try await withTwoReplicas { try await GatewayStoreConformance.concurrentClaimsNeverOverfillABackend($0, $1) }
    }

    @Test func loginFailuresThroughTwoReplicasAreAllCounted() async throws {
        try await withTwoReplicas { try await GatewayStoreConformance.concurrentLoginFailuresAreAllCounted($0, $1) }
    }

    @Test func loginThrottlesOfTwoReplicasShareLockouts() async throws {
        try await withTwoReplicas { try await ReplicaScenarios.loginThrottlesShareLockouts($0, $1) }
    }

    @Test func revocationsThroughOneReplicaReachTheOther() async throws {
        try await withTwoReplicas { try await ReplicaScenarios.revocationsReachTheOtherReplica($0, $1) }
    }
}

@Suite struct PostgresURLTests {
    @Test func parsesEveryPart() throws {
        let url = try PostgresURL("postgres://gate%40way:p%3Ass%2Fword@db.example.net:6543/comfy?sslmode=require")
        #expect(url.username == "gate@way")
        #expect(url.password == "p:ss/word")
        #expect(url.host == "db.example.net")
        #expect(url.port == 6543)
        #expect(url.database == "comfy")
        #expect(url.sslMode == "require")
        #expect(url.location == "postgres at db.example.net:6543/comfy")
    }

    @Test(arguments: [
        ("postgres://u:p@127.0.0.1/db", "disable"),
        ("postgresql://u:p@localhost:5432/db", "disable"),
        ("postgres://u:p@[::1]:5432/db", "disable"),
        ("postgres://u:p@db.internal/db", "verify-full"),
        ("postgres://u:p@db.internal/db?sslmode=disable", "disable"),
        ("postgres://u:p@127.0.0.1/db?sslmode=verify-ca", "verify-ca"),
    ])
    func defaultsToTLSExceptOnLoopback(url: String, mode: String) throws {
        #expect(try PostgresURL(url).sslMode == mode)
        #expect(try PostgresURL(url).port == 5432)
    }

    @Test(arguments: [
        "mysql://u:secret-pw@host/db",
        "postgres://u:secret-pw@/db",
        "postgres://:secret-pw@host/db",
        "postgres://u:secret-pw@host",
        "postgres://u:secret-pw@host/db/extra",
        "postgres://u:secret-pw@host/db?sslmode=sometimes",
        "postgres://u:secret-pw@host/db?sslcert=/tmp/cert.pem",
        "not a url secret-pw",
    ])
    func rejectsMalformedURLsWithoutShowingThePassword(url: String) {
        do {
            _ = try PostgresStore(url: url, logger: PostgresTestDatabase.logger)
            Issue.record("\(url) should be rejected")
        } catch let StoreError.unavailable(message) {
            #expect(message.hasPrefix("invalid PostgreSQL URL: "))
            #expect(!message.contains("secret-pw"), "message shows the password: \(message)")
        } catch {
            Issue.record("expected StoreError.unavailable, got \(error)")
        }
    }
}

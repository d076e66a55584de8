import Foundation
import Logging
import PostgresNIO
import Testing

@testable import ComfyGatePostgres

/// Gives each test its own database on the server named by `COMFYGATE_TEST_POSTGRES_URL`.
///
/// The URL's role must be allowed to create databases (`scripts/start-test-postgres.sh` sets one up). A
/// missing variable fails the test: these tests never skip silently.
enum PostgresTestDatabase {
    static let variable = "COMFYGATE_TEST_POSTGRES_URL"

    static let logger = Logger(label: "comfygate.postgres.tests")

    /// The server URL from the environment; records a failure explaining how to set it when it is missing.
    static func serverURL(sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let url = ProcessInfo.processInfo.environment[variable].flatMap { $0.isEmpty ? nil : $0 }
        return try #require(
            url,
            """
            \(variable) is not set. The PostgreSQL store tests need a server whose role may create databases, \
            e.g. export \(variable)="$(scripts/start-test-postgres.sh)"
            """,
            sourceLocation: sourceLocation
        )
    }

    /// Creates an empty, uniquely named database, passes its URL to `body`, then drops it.
    static func withFreshDatabase(
        sourceLocation: SourceLocation = #_sourceLocation,
        _ body: (String) async throws -> Void
    ) async throws {
        let serverURL = try serverURL(sourceLocation: sourceLocation)
        let name = "comfygate_test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        var components = try #require(URLComponents(string: serverURL))
        components.path = "/\(name)"
        let databaseURL = try #require(components.string)

        try await withClient(url: serverURL) { admin in
            try await execute("CREATE DATABASE \(name)", on: admin)
            let outcome: Result<Void, any Error>
            do {
                try await body(databaseURL)
                outcome = .success(())
            } catch {
                outcome = .failure(error)
            }
            try await drop(name, on: admin)
            try outcome.get()
        }
    }

    /// Drops a test database once the store's connections are gone.
    ///
    /// Not `WITH (FORCE)`: that fails when it meets an autovacuum worker it may not signal, while a plain drop
    /// stops autovacuum itself. A plain drop waits five seconds for other sessions; a connection the pool was
    /// still opening when the store stopped can outlive that on a loaded machine, so sessions of this
    /// database's own role are ended and the drop tried again.
    private static func drop(_ name: String, on client: PostgresClient) async throws {
        for _ in 1..<4 {
            do {
                try await client.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(name)"))
                return
            } catch let error as PSQLError where error.serverInfo?[.sqlState] == "55006" {
                try await client.query(
                    """
                    SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                    WHERE datname = \(name) AND usename = current_user AND pid <> pg_backend_pid()
                    """)
            }
        }
        try await execute("DROP DATABASE IF EXISTS \(name)", on: client)
    }

    /// Runs one setup statement, reporting the server's full error (test databases hold no secrets).
    private static func execute(_ sql: String, on client: PostgresClient) async throws {
        do {
            try await client.query(PostgresQuery(unsafeSQL: sql))
        } catch let error as PSQLError {
            Issue.record("\(sql): \(String(reflecting: error))")
            throw error
        }
    }

    /// Runs a store for `url` while `body` uses it, then shuts it down.
    static func withStore(url: String, migrate: Bool = true, _ body: (PostgresStore) async throws -> Void) async throws
    {
        let store = try PostgresStore(url: url, logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await store.run() }
            defer { group.cancelAll() }
            if migrate { try await store.migrate() }
            try await body(store)
        }
    }

    /// A migrated store on a fresh database.
    static func withFreshStore(
        sourceLocation: SourceLocation = #_sourceLocation,
        _ body: (PostgresStore) async throws -> Void
    ) async throws {
        try await withFreshDatabase(sourceLocation: sourceLocation) { url in
            try await withStore(url: url, body)
        }
    }

    /// Runs a plain client for `url` (for setup and for inspecting what a store wrote).
    static func withClient(url: String, _ body: (PostgresClient) async throws -> Void) async throws {
        let client = PostgresClient(configuration: try PostgresURL(url).clientConfiguration, backgroundLogger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            try await body(client)
        }
    }
}

import ComfyGateCore
import ComfyGatePostgres
import ComfyGateSQLite
import Foundation
import Logging

/// Opens the configured store for the length of a command.
enum StoreAccess {
    /// The SQLite file inside the data directory.
    static let sqliteFileName = "comfygate.sqlite"

    /// Runs `body` with the store: SQLite in the data directory (created with mode 0700), or PostgreSQL when a
    /// database URL is configured (its client runs beside `body` and stops after it).
    static func withStore<T: Sendable>(
        _ configuration: GatewayConfiguration,
        logger: Logger,
        _ body: @Sendable (any GatewayStore) async throws -> T
    ) async throws -> T {
        if let url = configuration.databaseURL {
            let store: PostgresStore
            do {
                store = try PostgresStore(url: url, logger: logger)
            } catch {
                throw CommandFailure.usage("database_url: \(CommandFailure.reason(error))")
            }
            return try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await store.run() }
                defer { group.cancelAll() }
                do {
                    try await store.migrate()
                } catch {
                    throw CommandFailure.failed("cannot use the PostgreSQL store: \(CommandFailure.reason(error))")
                }
                return try await body(store)
            }
        }
        let directory = configuration.dataDirectory
        try prepareDataDirectory(directory, logger: logger)
        let store: SQLiteStore
        do {
            store = try SQLiteStore(path: (directory as NSString).appendingPathComponent(sqliteFileName))
        } catch {
            throw CommandFailure.failed(CommandFailure.reason(error))
        }
        return try await body(store)
    }

    /// Creates the data directory with mode 0700, or warns when an existing one is readable by others.
    static func prepareDataDirectory(_ path: String, logger: Logger) throws {
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        if manager.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw CommandFailure.failed("data directory \(path) exists but is not a directory") }
            if let mode = (try? manager.attributesOfItem(atPath: path))?[.posixPermissions] as? Int, mode & 0o077 != 0 {
                logger.warning("data directory is accessible to other users; consider chmod 700", metadata: ["path": "\(path)"])
            }
            return
        }
        do {
            try manager.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw CommandFailure.failed("cannot create data directory \(path): \(CommandFailure.reason(error))")
        }
    }
}

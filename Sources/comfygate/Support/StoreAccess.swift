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
    /// - Parameter missingStoreSource: for commands that must not create an embedded store: where the data
    ///   directory's path came from, named in the usage error (exit 2) when no store is there.
    static func withStore<T: Sendable>(
        _ configuration: GatewayConfiguration,
        logger: Logger,
        missingStoreSource: String? = nil,
        _ body: @Sendable (any GatewayStore) async throws -> T
    ) async throws -> T {
        if let url = configuration.databaseURL {
            let store: PostgresStore
            do {
                store = try PostgresStore(url: url, logger: logger)
            } catch {
                throw CommandFailure.usage("database_url: \(CommandFailure.reason(error))")
            }
            do {
                try await store.checkConnection()
            } catch {
                // A wrong URL is a configuration error (2); a server that is down is a failure (1).
                let message = "cannot use the PostgreSQL store: \(error.description)"
                throw error.kind == .loginRefused || error.kind == .noDatabase ? CommandFailure.usage(message) : CommandFailure.failed(message)
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
        let file = (directory as NSString).appendingPathComponent(sqliteFileName)
        if let source = missingStoreSource, !FileManager.default.fileExists(atPath: file) {
            throw CommandFailure.usage(
                "no ComfyGate store at \(file) (data directory from \(source)); point --data, COMFYGATE_DATA or `data` in the "
                    + "config file at the gateway's data directory, or create a store with `comfygate users add NAME --role admin`")
        }
        try prepareDataDirectory(directory, logger: logger)
        let store: SQLiteStore
        do {
            store = try SQLiteStore(path: file)
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

/// Opens the embedded store of a data directory for `secrets` targets of format `comfygate-store`.
struct SQLiteStoreOpener: GatewayStoreOpener {
    func openStore(dataDirectory: URL) async throws -> any GatewayStore {
        var logger = Logger(label: "comfygate")
        logger.logLevel = .warning
        try StoreAccess.prepareDataDirectory(dataDirectory.path, logger: logger)
        return try SQLiteStore(path: dataDirectory.appendingPathComponent(StoreAccess.sqliteFileName).path)
    }
}

import ArgumentParser
import ComfyGateCore
import Foundation

/// Where the gateway's state lives, shared by `serve`, `users` and `tokens`.
struct StoreOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Directory of the embedded SQLite store (default ./comfygate-data; env COMFYGATE_DATA).", valueName: "dir"))
    var data: String?

    @Option(name: .customLong("database-url"), help: ArgumentHelp("postgres:// URL of a shared store instead of SQLite (env COMFYGATE_DATABASE_URL).", valueName: "url"))
    var databaseURL: String?

    @Option(help: ArgumentHelp("A comfygate.toml configuration file (env COMFYGATE_CONFIG).", valueName: "file"))
    var config: String?

    /// Where the data directory's path comes from, as a user would look for it: `--data DIR`, `COMFYGATE_DATA`, the
    /// configuration file, or the default.
    func whereTheDataDirectoryCameFrom() -> String {
        let environment = ProcessInfo.processInfo.environment
        if data != nil { return "--data" }
        if environment["COMFYGATE_DATA"]?.isEmpty == false { return "COMFYGATE_DATA" }
        if let path = config ?? environment["COMFYGATE_CONFIG"] { return "the configuration file \(path), or the default" }
        return "the default ./comfygate-data, relative to \(FileManager.default.currentDirectoryPath)"
    }

    /// Flag values keyed by setting name, for ``ConfigurationLayers``.
    var flagValues: [String: String] {
        var flags: [String: String] = [:]
        flags["data"] = data
        flags["database_url"] = databaseURL
        return flags
    }

    /// Reads the configuration file (if any), the environment and the given flags, and validates them.
    func resolve(extraFlags: [String: String] = [:]) throws -> GatewayConfiguration {
        let environment = ProcessInfo.processInfo.environment
        let path = config ?? environment["COMFYGATE_CONFIG"]
        var fileText: String?
        if let path {
            do {
                fileText = try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw CommandFailure.usage("cannot read configuration file \(path): \(CommandFailure.reason(error))")
            }
        }
        do {
            let layers = try ConfigurationLayers(
                flags: flagValues.merging(extraFlags) { _, new in new },
                environment: environment,
                fileText: fileText,
                filePath: path
            )
            return try GatewayConfiguration(layers: layers)
        } catch {
            throw CommandFailure.usage(error.description)
        }
    }
}

import ArgumentParser
import ComfyGateCore
import Foundation
import Logging

/// `comfygate backends`: the ComfyUI backends as the running gateways see them; drain and enable.
struct BackendsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backends",
        abstract: "Show the ComfyUI backends as the gateways see them; drain or enable one.",
        discussion: """
            The gateways sharing the store record what they see of each backend every few seconds; a drain is kept in
            the store and followed by every gateway within a second.

            Examples:
              comfygate backends --config /etc/comfygate/comfygate.toml
              comfygate backends --json          # {"version": 1, "backends": [...]}
              comfygate backends drain gpu1      # finish running work, take none new
              comfygate backends enable gpu1
            """,
        subcommands: [BackendsListCommand.self, BackendsDrainCommand.self, BackendsEnableCommand.self],
        defaultSubcommand: BackendsListCommand.self
    )
}

struct BackendsListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List each backend: state, drain, jobs out there, its own queue, devices and VRAM.",
        discussion: """
            Examples:
              comfygate backends list
              comfygate backends list --json
            """
    )

    @Flag(help: "Print JSON (version 1).") var json = false
    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await BackendsCommand.withAdministration(store) { administration, configuration in
            let snapshots = try await administration.snapshots(configured: configuration.backends)
            if json {
                let encoder = BackendSnapshot.encoder()
                encoder.outputFormatting.insert(.prettyPrinted)
                print(String(decoding: try encoder.encode(Listing(backends: snapshots)), as: UTF8.self))
                return
            }
            Output.printTable(
                header: ["NAME", "STATE", "JOBS", "QUEUE", "DEVICES", "LAST SEEN", "URL"],
                rows: snapshots.map { backend in
                    [
                        backend.name, backend.drained ? backend.state + ", drained" : backend.state,
                        "\(backend.inFlight)/\(backend.slots)", "\(backend.queueRunning) running, \(backend.queuePending) waiting",
                        backend.devices.isEmpty ? "-" : backend.devices.map(Self.describe).joined(separator: "; "),
                        backend.lastSeen.map(Output.timestamp) ?? "-", backend.url,
                    ]
                })
            for backend in snapshots where backend.cause != nil && backend.state != "up" {
                CommandFailure.printNote("\(backend.name): \(backend.cause ?? "")")
            }
        }
    }

    /// The `--json` output.
    private struct Listing: Encodable {
        var version = 1
        let backends: [BackendSnapshot]
    }

    /// `NVIDIA RTX 4090 (18.2/24.0 GiB free)`.
    static func describe(_ device: BackendSnapshot.Device) -> String {
        guard let total = device.vramTotal, total > 0 else { return device.name }
        let gibibytes = { (bytes: Int) in String(format: "%.1f", Double(bytes) / 1_073_741_824) }
        return "\(device.name) (\(gibibytes(device.vramFree ?? 0))/\(gibibytes(total)) GiB free)"
    }
}

struct BackendsDrainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drain",
        abstract: "Let a backend finish its running work and take no new jobs, on every gateway.",
        discussion: """
            Examples:
              comfygate backends drain gpu1
            """
    )

    @Argument(help: ArgumentHelp("The backend's name.", valueName: "name")) var name: String
    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await BackendsCommand.setDrained(true, name: name, store: store)
    }
}

struct BackendsEnableCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enable",
        abstract: "Let a drained backend take jobs again, on every gateway.",
        discussion: """
            Examples:
              comfygate backends enable gpu1
            """
    )

    @Argument(help: ArgumentHelp("The backend's name.", valueName: "name")) var name: String
    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await BackendsCommand.setDrained(false, name: name, store: store)
    }
}

extension BackendsCommand {
    static func withAdministration(
        _ options: StoreOptions, _ body: @escaping @Sendable (BackendAdministration, GatewayConfiguration) async throws -> Void
    ) async throws {
        try await CommandFailure.report {
            let configuration = try options.resolve()
            var logger = Logger(label: "comfygate")
            logger.logLevel = .warning
            try await StoreAccess.withStore(configuration, logger: logger, missingStoreSource: options.whereTheDataDirectoryCameFrom()) { store in
                try await body(BackendAdministration(store: store), configuration)
            }
        }
    }

    static func setDrained(_ drained: Bool, name: String, store options: StoreOptions) async throws {
        try await withAdministration(options) { administration, configuration in
            let reported = try await administration.snapshots(configured: configuration.backends).map(\.name)
            do {
                try await administration.setDrained(
                    drained, backend: name, known: reported, by: ProcessInfo.processInfo.environment["USER"].map { "cli:" + $0 } ?? "cli")
            } catch let error as BackendAdministrationError {
                if case .unknownBackend = error { throw CommandFailure.usage(error.description) }
                throw CommandFailure.failed(error.description)
            }
            CommandFailure.printNote(drained
                ? "drained \(name): it finishes its running jobs and takes no new ones (`comfygate backends enable \(name)` undoes it)"
                : "enabled \(name): it takes jobs again")
        }
    }
}

import ArgumentParser
import ComfyGateCore
import ComfyGateServer
import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import UnixSignals

/// `comfygate serve`: the authenticating reverse proxy in front of ComfyUI.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the authenticating gateway in front of ComfyUI.",
        discussion: """
            Precedence: flags, then COMFYGATE_* environment variables, then the --config file, then defaults.
            On an empty store, user 'admin' is created and its password and an API token are printed once.

            Examples:
              comfygate serve
              comfygate serve --listen 0.0.0.0:8189 --upstream http://127.0.0.1:8188 \\
                  --data /var/lib/comfygate
              comfygate serve --config /etc/comfygate/comfygate.toml
              comfygate serve --database-url \\
                  postgres://comfygate:secret@db.internal/comfygate
            """
    )

    @Option(help: ArgumentHelp("Where to listen (default 127.0.0.1:8189).", valueName: "host:port"))
    var listen: String?

    @Option(help: ArgumentHelp("ComfyUI's base URL (default http://127.0.0.1:8188).", valueName: "url"))
    var upstream: String?

    @Option(name: .customLong("public-url"), help: ArgumentHelp("The URL browsers use; https makes session cookies Secure.", valueName: "url"))
    var publicURL: String?

    @Option(name: .customLong("log-level"), help: ArgumentHelp("trace, debug, info, notice, warning or error (default info).", valueName: "level"))
    var logLevel: String?

    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await CommandFailure.report {
            var flags: [String: String] = [:]
            flags["listen"] = listen
            flags["upstream"] = upstream
            flags["public_url"] = publicURL
            flags["log_level"] = logLevel
            let configuration = try store.resolve(extraFlags: flags)
            let logger = Self.makeLogger(level: configuration.logLevel, format: configuration.logFormat)
            try await StoreAccess.withStore(configuration, logger: logger) { store in
                try await Self.serve(configuration: configuration, store: store, logger: logger)
            }
        }
    }

    private static func serve(configuration: GatewayConfiguration, store: any GatewayStore, logger: Logger) async throws {
        let descriptors = FileDescriptorLimit.raiseToHardLimit()
        if descriptors.after > descriptors.before {
            logger.notice("raised the open-file limit", metadata: ["from": "\(descriptors.before)", "to": "\(descriptors.after)"])
        } else {
            logger.info("open-file limit", metadata: ["limit": "\(descriptors.after)"])
        }
        do {
            try await store.checkWritable()
        } catch {
            throw CommandFailure.failed("the store cannot be written: \(CommandFailure.reason(error))")
        }
        if let admin = try await AccountService(store: store).bootstrapIfEmpty() {
            Self.announce(admin)
        }
        let components = Gateway.Components(configuration: configuration, store: store)
        let listen = "\(configuration.listenHost):\(configuration.listenPort)"
        let upstream = configuration.upstream.absoluteString
        let application = try await Gateway.buildApplication(
            components: components,
            logger: logger,
            onServerRunning: { channel in
                let address = channel.localAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? listen
                logger.notice("ComfyGate listening", metadata: ["address": "\(address)", "upstream": "\(upstream)"])
            }
        )
        var groupConfiguration = ServiceGroupConfiguration(
            services: [application], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        // A request or a backend that never ends cannot hold the process: what has not finished is cancelled, and a
        // task that ignores its cancellation ends the process with an error.
        groupConfiguration.maximumGracefulShutdownDuration = Self.gracefulShutdownLimit
        groupConfiguration.maximumCancellationDuration = .seconds(10)
        let group = ServiceGroup(configuration: groupConfiguration)
        do {
            try await group.run()
        } catch let error as IOError where error.errnoCode == EADDRINUSE || error.errnoCode == EADDRNOTAVAIL || error.errnoCode == EACCES {
            throw CommandFailure.usage(Self.bindProblem(listen, port: configuration.listenPort, errno: error.errnoCode))
        } catch {
            throw CommandFailure.failed("the gateway stopped: \(CommandFailure.reason(error))")
        }
    }

    /// How long open requests may take to finish once the gateway was told to stop (SIGTERM, SIGINT).
    static let gracefulShutdownLimit: Duration = .seconds(30)

    /// Why the listen address cannot be bound, and what to do, in one line.
    static func bindProblem(_ address: String, port: Int, errno: Int32) -> String {
        let change = "choose another address with --listen, COMFYGATE_LISTEN or `listen` in the config file"
        return switch errno {
        case EADDRINUSE:
            "cannot listen on \(address): another program already listens there (see which: ss -ltnp 'sport = :\(port)'); \(change)"
        case EADDRNOTAVAIL:
            "cannot listen on \(address): no network interface of this machine has that address (127.0.0.1 and 0.0.0.0 always work); \(change)"
        default:
            "cannot listen on \(address): ports below 1024 need privileges (use a higher port behind a proxy, or grant CAP_NET_BIND_SERVICE); \(change)"
        }
    }

    /// Prints the first-start credentials once, on standard output, clearly marked.
    private static func announce(_ admin: AccountService.InitialAdmin) {
        let text = """
            ==================== ComfyGate: first start ====================
            Created user '\(admin.userName)' (role admin).
              password:  \(admin.password)
              API token: \(admin.token)
            Both are shown this once and never again: store them now.
            Browsers sign in at /login; scripts send 'Authorization: Bearer <token>'.
            ================================================================

            """
        FileHandle.standardOutput.write(Data(text.utf8))
    }

    /// Logs one line per event, logfmt or JSON, on standard error, every logged value escaped (see
    /// ``StructuredLogHandler``).
    static func makeLogger(level: String, format: LogFormat) -> Logger {
        LoggingSystem.bootstrap { label in
            var handler = StructuredLogHandler(label: label, format: format)
            handler.logLevel = Logger.Level(rawValue: level) ?? .info
            return handler
        }
        return Logger(label: "comfygate")
    }
}

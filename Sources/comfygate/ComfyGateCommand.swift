import ArgumentParser
import ComfyGateCore
import Foundation
import Logging
import NIOCore
import NIOPosix

/// `comfygate`: the authenticating gateway for ComfyUI and the tools around it.
@main
struct ComfyGateCommand: AsyncParsableCommand {
    /// This release's version, also the tag of its container image.
    static let version = ComfyGateVersion.current

    static let configuration = CommandConfiguration(
        commandName: "comfygate",
        abstract: "An authenticating gateway for ComfyUI, with user, token and secret management.",
        discussion: """
            Exit codes: 0 success, 1 the operation failed or a check found problems, 2 usage or configuration error.
            """,
        version: version,
        subcommands: [ServeCommand.self, UsersCommand.self, TokensCommand.self, UsageCommand.self, AuditCommand.self, SecretsCommand.self, DoctorCommand.self,
            ModelsCommand.self, GenerateCommand.self, SetupCommand.self, BackendsCommand.self]
    )

    /// Parses and runs the command, giving usage errors exit code 2 like every other usage problem.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if command is ServeCommand {
                // The gateway's tasks then run on the event loops that do its I/O, without a thread hop per step.
                NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
            } else {
                // `serve` sets up its own, at its configured level; every other command logs the same safe way.
                LoggingSystem.bootstrap { StructuredLogHandler(label: $0) }
            }
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            if exitCode(for: error) == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }
}

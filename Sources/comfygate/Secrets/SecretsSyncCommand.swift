import ArgumentParser
import ComfyGateCore
import Foundation

/// `comfygate secrets sync [--dry-run]`.
struct SecretsSyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Make every target agree with its source; write only what differs, atomically, with backups.",
        discussion: """
            Examples:
              comfygate secrets sync --dry-run
              comfygate secrets sync --manifest /srv/comfyui-qwen/comfygate-secrets.toml
            """
    )

    @OptionGroup var options: ManifestOption

    @Flag(name: .long, help: "Print the plan (without secrets) and change nothing.")
    var dryRun = false

    func run() async throws {
        let engine = options.engine()
        do {
            let report = try await engine.sync(dryRun: dryRun) { SecretsOutput.waiting(engine.manifest.file) }
            SecretsRunOutput.print(report, dryRun: dryRun, idle: "nothing to do: every target agrees with its source")
        } catch {
            SecretsOutput.fail(error)
        }
    }
}

/// Prints what `sync` or `rotate` did.
enum SecretsRunOutput {
    static func print(_ report: SecretsRunReport, dryRun: Bool, idle: String) {
        if dryRun { Swift.print("dry run: nothing is written") }
        if report.actions.isEmpty { Swift.print(idle) }
        for action in report.actions { Swift.print((dryRun ? "would: " : "") + action.description) }
        for warning in report.warnings { SecretsOutput.printError("warning: " + warning) }
    }
}

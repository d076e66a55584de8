import ArgumentParser
import ComfyGateCore
import Foundation

/// `comfygate secrets rotate [NAME] [--grace DURATION]`.
struct SecretsRotateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate",
        abstract: "Give a secret a new value and update every target; then run its after_rotate command.",
        discussion: """
            In the gateway store the old token stays usable for --grace (e.g. 30m, 12h, 7d); without it, it is revoked.

            Examples:
              comfygate secrets rotate --dry-run
              comfygate secrets rotate qwen_api_user --grace 1h
            """
    )

    @OptionGroup var options: ManifestOption

    @Argument(help: ArgumentHelp("The secret to rotate (may be omitted when the manifest declares only one).", valueName: "secret"))
    var name: String?

    @Option(name: .long, help: ArgumentHelp("How long the gateway store keeps accepting the old token.", valueName: "duration"))
    var grace: String?

    @Flag(name: .long, help: "Print the plan (without secrets) and change nothing.")
    var dryRun = false

    func run() async throws {
        var graceSeconds: TimeInterval?
        if let grace {
            guard let seconds = DurationParser.seconds(grace) else {
                SecretsOutput.fail(["--grace '\(grace)' is not a duration such as 30m, 12h or 7d"], code: 2)
            }
            graceSeconds = seconds
        }
        let engine = options.engine()
        let secrets = engine.manifest.secrets
        let chosen: String
        if let name {
            chosen = name
        } else if secrets.count == 1 {
            chosen = secrets[0].name
        } else {
            SecretsOutput.fail(["name the secret to rotate: \(secrets.map(\.name).joined(separator: ", "))"], code: 2)
        }
        guard let secret = secrets.first(where: { $0.name == chosen }) else {
            SecretsOutput.fail(["\(engine.manifest.file.path): no secret named '\(chosen)'"], code: 2)
        }
        do {
            let report = try await engine.rotate([chosen], grace: graceSeconds, dryRun: dryRun) {
                SecretsOutput.waiting(engine.manifest.file)
            }
            SecretsRunOutput.print(report, dryRun: dryRun, idle: "nothing to rotate")
            if dryRun {
                if let command = secret.afterRotate { print("would run: \(command)") }
                return
            }
            if let result = try engine.runAfterRotate(secret) {
                let output = result.output
                guard result.status == 0 else {
                    FileHandle.standardError.write(Data(output.utf8))
                    SecretsOutput.fail(
                        [
                            "after_rotate `\(secret.afterRotate ?? "")` failed with exit status \(result.status) (the rotation itself is complete)"
                        ],
                        code: 1)
                }
                print("ran: \(secret.afterRotate ?? "")")
                if !output.isEmpty { print(output, terminator: output.hasSuffix("\n") ? "" : "\n") }
            }
        } catch {
            SecretsOutput.fail(error)
        }
    }
}

import ArgumentParser
import ComfyGateCore
import Foundation

/// `comfygate secrets init --layout comfyui-qwen [--root DIR]`.
struct SecretsInitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Write the manifest for a known layout; adopt existing secrets, generate missing ones.",
        discussion: """
            An existing manifest and existing values are never overwritten.

            Example: comfygate secrets init --layout comfyui-qwen --root /srv/comfyui-qwen
            """
    )

    @Option(name: .long, help: ArgumentHelp("The layout: \(SecretsLayout.allCases.map(\.rawValue).joined(separator: ", ")).", valueName: "layout"))
    var layout: String

    @Option(name: .long, help: ArgumentHelp("The deployment's root directory (default: the current directory).", valueName: "dir"))
    var root: String = "."

    func run() async throws {
        guard let layout = SecretsLayout(rawValue: layout) else {
            SecretsOutput.fail(
                [
                    "unknown layout '\(layout)' (known: \(SecretsLayout.allCases.map(\.rawValue).joined(separator: ", ")))"
                ],
                code: 2)
        }
        let rootURL = URL(fileURLWithPath: root).standardizedFileURL
        do {
            let (_, messages) = try await SecretsEngine.initialize(
                layout: layout, root: rootURL, writer: SecretsOutput.writer(), storeOpener: SecretsCommand.storeOpener)
            for message in messages { print(message) }
            print("next: comfygate secrets check")
        } catch {
            SecretsOutput.fail(error)
        }
    }
}

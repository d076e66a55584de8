import ArgumentParser
import ComfyGateCore
import Foundation

/// `comfygate secrets check [--json]`.
struct SecretsCheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Report every source and target: OK, DRIFT, MALFORMED, MISSING, UNSAFE or ERROR.",
        discussion: """
            Exits 0 only when every row is OK. Secrets are never printed, only fingerprints.

            Examples:
              comfygate secrets check
              comfygate secrets check --manifest \\
                  /srv/comfyui-qwen/comfygate-secrets.toml --json
            """
    )

    @OptionGroup var options: ManifestOption

    @Flag(name: .long, help: "Print the report as JSON (version 1).")
    var json = false

    private struct JSONReport: Encodable {
        var version = 1
        var ok: Bool
        var manifest: String
        var locations: [LocationReport]
    }

    func run() async throws {
        let engine = options.engine()
        let reports = await engine.check()
        let ok = reports.allSatisfy { $0.status == .ok }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            let data = try encoder.encode(JSONReport(ok: ok, manifest: engine.manifest.file.path, locations: reports))
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(SecretsOutput.table(reports))
            let bad = reports.filter { $0.status != .ok }.count
            print(ok ? "all \(reports.count) OK" : "\(bad) of \(reports.count) not OK")
        }
        if !ok { throw ExitCode(1) }
    }
}

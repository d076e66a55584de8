import ArgumentParser
import ComfyGateCore
import ComfyGateDoctor
import Foundation

/// `comfygate doctor`: end-to-end checks of a ComfyUI deployment (ComfyGate, ComfyUI-Login or bare ComfyUI).
struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check a ComfyUI deployment end to end and explain every failure.",
        discussion: """
            Checks, in order: name resolution and TCP connect, TLS, an HTTP answer, what answers (ComfyGate, \
            ComfyUI-Login or bare ComfyUI), authentication enforced, the token accepted, a wrong token refused, the \
            login page, the websocket, ComfyUI's versions and devices, required model files (--config), and with \
            --generate a real model-free generation. Exit status: 0 every required check passed, 1 a check failed, \
            2 usage error. See docs/doctor.md.

            Examples:
              comfygate doctor --url http://127.0.0.1:8189 --token-file \\
                  .secrets/.env.generated --token-key QWEN_API_USER_TOKEN
              comfygate doctor --url https://comfy.example.org --token "$T" \\
                  --generate --report doctor.md
              comfygate doctor --url http://127.0.0.1:8188 --json
              comfygate doctor --url http://127.0.0.1:8189 --token "$T" --watch 60
            """)

    @Option(help: ArgumentHelp("Root URL of ComfyGate or ComfyUI, e.g. http://127.0.0.1:8188.", valueName: "url"))
    var url: String

    @Option(help: ArgumentHelp("API token (a ComfyGate token, or ComfyUI-Login's hash line).", valueName: "token"))
    var token: String?

    @Option(help: ArgumentHelp("Read the token from a file: the whole file, or one variable of a dotenv file with --token-key.", valueName: "file"))
    var tokenFile: String?

    @Option(help: ArgumentHelp("Variable holding the token in --token-file, e.g. QWEN_API_USER_TOKEN.", valueName: "name"))
    var tokenKey: String?

    @Option(help: ArgumentHelp("Doctor settings (TOML): `workflow` and `[models]` to check for model files.", valueName: "file"))
    var config: String?

    @Flag(help: "Also run a real model-free generation (EmptyImage → SaveImage) and fetch the PNG.")
    var generate = false

    @Flag(help: "Print the report as JSON (schema comfygate.doctor/1).")
    var json = false

    @Option(help: ArgumentHelp("Write a Markdown report to this file.", valueName: "file"))
    var report: String?

    @Option(help: ArgumentHelp("Repeat every SECONDS, print only changes of state, stop on SIGINT or SIGTERM.", valueName: "seconds"))
    var watch: Double?

    @Option(help: ArgumentHelp("Seconds allowed for each network step.", valueName: "seconds"))
    var timeout: Double = 10

    mutating func validate() throws {
        if let problem = Doctor.validate(url: url) { throw ValidationError(problem) }
        if token != nil && tokenFile != nil { throw ValidationError("use --token or --token-file, not both") }
        if tokenKey != nil && tokenFile == nil { throw ValidationError("--token-key needs --token-file") }
        guard timeout > 0, timeout <= 3600 else { throw ValidationError("--timeout must be between 0 and 3600 seconds") }
        if let watch, !(watch >= 1 && watch <= 86_400) { throw ValidationError("--watch must be between 1 and 86400 seconds") }
        _ = try resolvedToken()
        _ = try configurationFile()
    }

    func run() async throws {
        let file = try configurationFile()
        let doctor = Doctor(
            configuration: DoctorConfiguration(
                url: url, token: try resolvedToken(), timeout: .milliseconds(Int64(timeout * 1000)), generate: generate,
                models: file?.models, secretsCheck: file?.secretsManifest.map(Self.secretsCheck)))
        let finalReport: DoctorReport?
        if let watch {
            let watcher = DoctorWatch(doctor: doctor, interval: .milliseconds(Int64(watch * 1000)))
            finalReport = await watcher.run(until: DoctorWatch.untilInterrupted()) { line in print(line) }
        } else {
            finalReport = await doctor.run()
        }
        guard let finalReport else { return }
        if json {
            print(JSONRenderer().render(finalReport), terminator: "")
        } else if watch == nil {
            let colour = isatty(STDOUT_FILENO) == 1 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
            print(TerminalRenderer(colour: colour).render(finalReport), terminator: "")
        }
        if let report {
            do {
                try MarkdownRenderer().render(finalReport).write(toFile: report, atomically: true, encoding: .utf8)
                FileHandle.standardError.write(Data("report written to \(report)\n".utf8))
            } catch {
                throw ValidationError("cannot write --report \(report): \(error.localizedDescription)")
            }
        }
        if finalReport.exitCode != 0 { throw ExitCode(finalReport.exitCode) }
    }

    /// `comfygate secrets check` of a manifest: one problem per location that is not OK, naming no secret value.
    static func secretsCheck(manifest path: String) -> SecretsCheck {
        SecretsCheck(manifest: path) {
            let manifest = try SecretsManifest(contentsOf: URL(fileURLWithPath: path))
            let engine = SecretsEngine(manifest: manifest, writer: SecretsOutput.writer(), storeOpener: SecretsCommand.storeOpener)
            return await engine.check().filter { $0.status != .ok }.map { report in
                "\(report.secret) \(report.location): \(report.status.rawValue)" + (report.reason.map { " (\($0))" } ?? "")
            }
        }
    }

    private func resolvedToken() throws -> String? {
        if let token { return token }
        guard let tokenFile else { return nil }
        do {
            return try TokenSource.read(file: tokenFile, key: tokenKey)
        } catch {
            throw ValidationError(error.description)
        }
    }

    private func configurationFile() throws -> DoctorConfigurationFile? {
        guard let config else { return nil }
        do {
            let text = try String(contentsOfFile: config, encoding: .utf8)
            return try DoctorConfigurationFile(text: text, path: config)
        } catch let problem as ConfigurationProblem {
            throw ValidationError(problem.description)
        } catch {
            throw ValidationError("cannot read --config \(config): \(error.localizedDescription)")
        }
    }
}

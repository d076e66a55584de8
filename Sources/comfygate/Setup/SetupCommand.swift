import ArgumentParser
import ComfyGateCore
import ComfyGateModels
import ComfyGateSetup
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// `comfygate setup`: a ComfyUI-Qwen deployment behind ComfyGate in one command.
struct SetupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "setup",
        abstract: "Bring up ComfyUI with the Qwen models behind ComfyGate, test it, and write a report.",
        discussion: """
            Steps: prerequisites (each failure with its fix), the deployment directory, accounts (admin and the \
            scripts' user qwen-api), secrets (one raw token in .secrets/.env.generated, its hash in the gateway's \
            store), models, start, readiness (/readyz), a test generation (`comfygate doctor --generate`) and \
            DIR/setup-report.md, which lists what ran, what was skipped (never counted as done) and how long each step \
            took. Running it again keeps every file, user and secret that exists.

            Without --upstream: a Docker Compose project where ComfyUI has the GPU and no published port, and \
            ComfyGate is the only way in. With --upstream URL: ComfyGate on this host in front of a ComfyUI that \
            already runs, with a systemd unit. With --skip-docker: the Compose project is written but Docker is not \
            used; the test runs a gateway on this host in front of --upstream (default http://127.0.0.1:8188).

            Exit status: 0 no step failed (skipped steps are reported as not verified), 1 a step failed, 2 usage error.

            Examples:
              comfygate setup --dir /srv/comfyui-qwen
              comfygate setup --dir ./qwen --dry-run
              comfygate setup --dir ./gate --upstream http://127.0.0.1:8188 \\
                  --models-dir /srv/ComfyUI/models
              comfygate setup --dir ./qwen --skip-docker --skip-models
            """)

    @Option(help: ArgumentHelp("The deployment directory (created when missing).", valueName: "dir"))
    var dir = "comfyui-qwen"

    @Option(help: ArgumentHelp("An existing ComfyUI to put ComfyGate in front of, without Docker.", valueName: "url"))
    var upstream: String?

    @Option(help: ArgumentHelp("Where the gateway listens on this host (the published port with Docker).", valueName: "host:port"))
    var listen = "127.0.0.1:8189"

    @Option(name: .customLong("models"), help: ArgumentHelp("Model files or sets to download (see `comfygate models list`).", valueName: "name"))
    var models: [String] = []

    @Option(name: .customLong("models-dir"), help: ArgumentHelp("The existing ComfyUI's models directory (with --upstream; default COMFYUI_MODELS_DIR).", valueName: "dir"))
    var modelsDirectory: String?

    @Option(help: ArgumentHelp("The ComfyGate container image the Compose project runs.", valueName: "image"))
    var image = "comfygate:\(ComfyGateCommand.version)"

    @Option(help: ArgumentHelp("Seconds to wait for /readyz (default 600 with Docker, 60 otherwise).", valueName: "seconds"))
    var wait: Int?

    @Flag(help: "Write the Compose project but do not check or start Docker.") var skipDocker = false
    @Flag(help: "Do not download models.") var skipModels = false
    @Flag(help: "Do not run the test generation.") var skipTest = false
    @Flag(help: "Check the prerequisites and say what would be done; change nothing.") var dryRun = false

    func validate() throws {
        guard parsedListen != nil else { throw ValidationError("--listen: '\(listen)' is not host:port with a port from 1 to 65535") }
        if let upstream, parsedUpstream(upstream) == nil {
            throw ValidationError("--upstream: '\(upstream)' is not an http:// or https:// URL")
        }
        if let wait, !(1...86_400).contains(wait) { throw ValidationError("--wait must be 1 to 86400 seconds") }
        if modelsDirectory != nil && (upstream == nil || skipDocker) {
            throw ValidationError("--models-dir goes with --upstream; the Compose project keeps its models in DIR/models")
        }
        if !skipModels {
            do { _ = try ModelManifest.select(models.isEmpty ? ["qwen-image-edit"] : models) } catch {
                throw ValidationError(error.description)
            }
        }
    }

    func run() async throws {
        guard let (host, port) = parsedListen else { throw ExitCode(2) }
        guard let source = ModelSource(environment: ProcessInfo.processInfo.environment) else {
            CommandFailure.printError("HF_ENDPOINT is not an http(s) URL")
            throw ExitCode(2)
        }
        let directory = URL(fileURLWithPath: dir).standardizedFileURL
        let mode: SetupPlan.Mode = upstream != nil && !skipDocker ? .existingComfyUI : .compose
        let modelsURL: URL? =
            switch mode {
            case .compose: directory.appendingPathComponent("models")
            case .existingComfyUI:
                (modelsDirectory ?? ProcessInfo.processInfo.environment["COMFYUI_MODELS_DIR"]).flatMap {
                    $0.isEmpty ? nil : URL(fileURLWithPath: $0).standardizedFileURL
                }
            }
        var skipReason: String?
        if skipModels {
            skipReason = "--skip-models"
        } else if modelsURL == nil {
            skipReason = "no --models-dir: say where the existing ComfyUI keeps its models to download them"
        }
        let plan = SetupPlan(
            directory: directory, mode: mode, runsDocker: !skipDocker, upstream: parsedUpstream(upstream ?? "http://127.0.0.1:8188")!,
            listenHost: host, listenPort: port, models: skipReason == nil ? (models.isEmpty ? ["qwen-image-edit"] : models) : [],
            modelsSkipReason: skipReason, modelsDirectory: modelsURL, runsTest: !skipTest, dryRun: dryRun,
            readinessTimeout: .seconds(wait ?? (mode == .compose && !skipDocker ? 600 : 60)),
            gatewayExecutable: URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path,
            commandLine: (["comfygate"] + CommandLine.arguments.dropFirst()).joined(separator: " "), gatewayImage: image)
        let setup = Setup(
            plan: plan, storeOpener: SQLiteStoreOpener(), modelSource: source, isTerminal: isatty(STDOUT_FILENO) == 1
        ) { line in
            FileHandle.standardOutput.write(Data((line.hasSuffix("\n") || line.hasSuffix("\r") ? line : line + "\n").utf8))
        }
        let report = await setup.run()
        print("\n" + report.verdict)
        if report.exitCode != 0 { throw ExitCode(report.exitCode) }
    }

    private var parsedListen: (String, Int)? {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]), (1...65535).contains(port)
        else { return nil }
        var host = String(listen[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return host.isEmpty ? nil : (host, port)
    }

    private func parsedUpstream(_ text: String) -> URL? {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme), url.host != nil
        else { return nil }
        return url
    }
}

public import Foundation

/// What one `comfygate setup` run is asked to do.
public struct SetupPlan: Sendable {
    /// How ComfyUI runs in the deployment.
    public enum Mode: Sendable, Equatable {
        /// A Compose project: ComfyUI on an internal network with a GPU, ComfyGate the only published service.
        case compose
        /// ComfyGate in front of a ComfyUI that already runs (no Docker); a systemd unit runs the gateway.
        case existingComfyUI
    }

    /// The deployment directory: every file setup writes is in it.
    public var directory: URL
    public var mode: Mode
    /// False with `--skip-docker`: the Compose project is written but Docker is neither checked nor started; the
    /// readiness and test steps then run a gateway on this host in front of ``upstream``.
    public var runsDocker: Bool
    /// ComfyUI's URL for runs on this host (``Mode/existingComfyUI`` or `--skip-docker`).
    public var upstream: URL
    /// Where the gateway listens on this host (the published port in Compose).
    public var listenHost: String
    public var listenPort: Int
    /// Model files or sets to download (``ComfyGateModels/ModelManifest``); empty skips the step.
    public var models: [String]
    /// Why the models step is skipped, when it is.
    public var modelsSkipReason: String?
    /// ComfyUI's models directory: the Compose project's `models` folder, or the existing ComfyUI's.
    public var modelsDirectory: URL?
    public var runsTest: Bool
    /// Prints what would be done, changes nothing.
    public var dryRun: Bool
    /// How long to wait for `/readyz`.
    public var readinessTimeout: Duration
    /// The `comfygate` executable: runs the gateway on this host and is named by the systemd unit.
    public var gatewayExecutable: String
    /// The command line as typed, for the report.
    public var commandLine: String
    /// The ComfyGate image the Compose project runs.
    public var gatewayImage: String

    public init(
        directory: URL, mode: Mode, runsDocker: Bool, upstream: URL, listenHost: String, listenPort: Int, models: [String],
        modelsSkipReason: String?, modelsDirectory: URL?, runsTest: Bool, dryRun: Bool, readinessTimeout: Duration,
        gatewayExecutable: String, commandLine: String, gatewayImage: String
    ) {
        self.directory = directory
        self.mode = mode
        self.runsDocker = runsDocker
        self.upstream = upstream
        self.listenHost = listenHost
        self.listenPort = listenPort
        self.models = models
        self.modelsSkipReason = modelsSkipReason
        self.modelsDirectory = modelsDirectory
        self.runsTest = runsTest
        self.dryRun = dryRun
        self.readinessTimeout = readinessTimeout
        self.gatewayExecutable = gatewayExecutable
        self.commandLine = commandLine
        self.gatewayImage = gatewayImage
    }

    /// Whether the Compose project's containers are started by this run.
    var startsCompose: Bool { mode == .compose && runsDocker }

    /// The gateway's store.
    var dataDirectory: URL { directory.appendingPathComponent("data") }
    var secretsDirectory: URL { directory.appendingPathComponent(".secrets") }
    /// The raw API token of user qwen-api, as a dotenv file (the secrets manifest's source).
    var tokenFile: URL { secretsDirectory.appendingPathComponent(".env.generated") }
    static let tokenKey = "QWEN_API_USER_TOKEN"
    /// The admin's first password, kept for the operator.
    var adminPasswordFile: URL { secretsDirectory.appendingPathComponent("comfygate-admin.env") }
    var reportFile: URL { directory.appendingPathComponent("setup-report.md") }
    var doctorReportFile: URL { directory.appendingPathComponent("doctor-report.md") }
    var gatewayLogFile: URL { directory.appendingPathComponent("setup-gateway.log") }
    /// The URL the gateway answers at on this host.
    var gatewayURL: String {
        let host = listenHost == "0.0.0.0" || listenHost == "::" ? "127.0.0.1" : listenHost
        return "http://\(host.contains(":") ? "[\(host)]" : host):\(listenPort)"
    }
}

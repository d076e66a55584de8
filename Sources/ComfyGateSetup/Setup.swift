import AsyncHTTPClient
public import ComfyGateCore
import ComfyGateDoctor
public import ComfyGateModels
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// `comfygate setup`: brings a ComfyUI deployment up behind ComfyGate, step by step, and reports what ran, what was
/// skipped and how long each step took. Every step is safe to run again: existing files, users and secrets are kept.
public struct Setup: Sendable {
    public let plan: SetupPlan
    /// Opens the gateway's store in a data directory (the executable's SQLite store).
    let storeOpener: any GatewayStoreOpener
    let modelSource: ModelSource
    /// Receives one line as each step ends, and the model downloads' progress.
    let output: @Sendable (String) -> Void
    let isTerminal: Bool

    public init(
        plan: SetupPlan, storeOpener: any GatewayStoreOpener, modelSource: ModelSource, isTerminal: Bool,
        output: @escaping @Sendable (String) -> Void
    ) {
        self.plan = plan
        self.storeOpener = storeOpener
        self.modelSource = modelSource
        self.isTerminal = isTerminal
        self.output = output
    }

    /// The steps, in the order they run; their raw values are the titles the report shows.
    enum Step: String, CaseIterable {
        case prerequisites = "Prerequisites"
        case files = "Deployment files"
        case accounts = "Accounts"
        case secrets = "Secrets"
        case models = "Models"
        case start = "Start"
        case readiness = "Readiness"
        case test = "Test generation"
    }

    /// Runs every step (stopping at the first failure), writes the report unless this is a dry run, and returns it.
    public func run() async -> SetupReport {
        var report = SetupReport(plan: plan, startedAt: Date())
        let clock = ContinuousClock()
        let started = clock.now
        var context = RunContext()
        for kind in Step.allCases {
            // A dry run goes on past a failed check, so that it shows the whole plan.
            if !plan.dryRun, report.steps.contains(where: { $0.status == .failed }) {
                record(SetupStep(title: kind.rawValue, status: .notRun), in: &report)
                continue
            }
            let stepStart = clock.now
            var step = await perform(kind, context: &context)
            step.duration = clock.now - stepStart
            record(step, in: &report)
        }
        if let gateway = context.hostGateway {
            await gateway.stop()
        }
        report.duration = clock.now - started
        report.nextSteps = nextSteps(report)
        if !plan.dryRun {
            do {
                // A run that stopped before the files step still leaves its report where the deployment goes.
                try? FileManager.default.createDirectory(at: plan.directory, withIntermediateDirectories: true)
                try AtomicFileWriter().write(Array(report.markdown().utf8), to: plan.reportFile)
                output("report: \(plan.reportFile.path)")
            } catch {
                output("cannot write the report \(plan.reportFile.path): \(error.description)")
            }
        }
        return report
    }

    /// What the steps hand each other.
    struct RunContext {
        var compose: [String]?
        var hostGateway: HostGateway?
    }

    private func record(_ step: SetupStep, in report: inout SetupReport) {
        report.steps.append(step)
        let label = step.status == .ok ? "ok" : step.status.rawValue.uppercased()
        var line = "[\(label)] \(step.title)"
        if step.status != .notRun { line += " (\(SetupReport.seconds(step.duration)))" }
        output(([line] + step.details.map { "    " + $0 } + step.fixes.map { "    fix: " + $0 }).joined(separator: "\n"))
    }

    private func perform(_ kind: Step, context: inout RunContext) async -> SetupStep {
        switch kind {
        case .prerequisites:
            let (step, compose) = await Prerequisites(plan: plan, modelSpace: modelSpace).check()
            context.compose = compose
            return step
        case .files: return writeFiles()
        case .accounts: return await accounts()
        case .secrets: return await secrets()
        case .models: return await models()
        case .start: return await start(&context)
        case .readiness: return await readiness(context)
        case .test: return await testGeneration()
        }
    }

    private var user: (uid: UInt32, gid: UInt32, name: String) {
        let uid = getuid()
        let name = getpwuid(uid).flatMap { $0.pointee.pw_name.map { String(cString: $0) } } ?? String(uid)
        return (uid, getgid(), name)
    }

    // MARK: Files

    private func writeFiles() -> SetupStep {
        var step = SetupStep(title: Step.files.rawValue, status: plan.dryRun ? .planned : .ok)
        let manager = FileManager.default
        for directory in [""] + DeploymentFiles.directories(for: plan) {
            let url = directory.isEmpty ? plan.directory : plan.directory.appendingPathComponent(directory)
            if manager.fileExists(atPath: url.path) { continue }
            if plan.dryRun {
                step.details.append("would create \(url.path)/")
                continue
            }
            let isPrivate = directory == "data" || directory == ".secrets"
            do {
                try manager.createDirectory(
                    at: url, withIntermediateDirectories: true, attributes: [.posixPermissions: isPrivate ? 0o700 : 0o755])
            } catch {
                return failed(step, "cannot create \(url.path): \(error.localizedDescription)",
                    fix: "Choose a directory you may write (--dir), or create it with the right owner.")
            }
        }
        for file in DeploymentFiles.files(for: plan, user: user) {
            let url = plan.directory.appendingPathComponent(file.path)
            if let existing = try? String(contentsOf: url, encoding: .utf8) {
                step.details.append(
                    existing == file.contents
                        ? "\(file.path): unchanged"
                        : "\(file.path): kept as it is (it differs from what setup writes; delete it to have it written again)")
                continue
            }
            if plan.dryRun {
                step.details.append("would write \(file.path)")
                continue
            }
            do {
                try AtomicFileWriter().write(Array(file.contents.utf8), to: url)
                step.details.append("wrote \(file.path)")
            } catch {
                return failed(step, error.description, fix: "Check the permissions of \(plan.directory.path).")
            }
        }
        return step
    }

    // MARK: Accounts and secrets

    private func accounts() async -> SetupStep {
        var step = SetupStep(title: Step.accounts.rawValue, status: plan.dryRun ? .planned : .ok)
        if plan.dryRun {
            step.details = [
                "would create the store in \(plan.dataDirectory.path), user admin (password in \(plan.adminPasswordFile.path)) and user qwen-api"
            ]
            return step
        }
        do {
            let store = try await storeOpener.openStore(dataDirectory: plan.dataDirectory)
            let accounts = AccountService(store: store)
            if try await store.user(named: "admin") == nil {
                let password = TokenFormat.randomBase62(count: 24)
                _ = try await accounts.addUser(name: "admin", role: .admin, password: password)
                let text = "# The first password of ComfyGate's admin (sign in at /login, then change it).\nCOMFYGATE_ADMIN_USER=admin\nCOMFYGATE_ADMIN_PASSWORD=\(password)\n"
                try AtomicFileWriter().write(Array(text.utf8), to: plan.adminPasswordFile)
                step.details.append("created user admin (role admin); its password is in \(plan.adminPasswordFile.path) (mode 0600)")
            } else {
                step.details.append("kept user admin")
            }
            if try await store.user(named: "qwen-api") == nil {
                _ = try await accounts.addUser(name: "qwen-api", role: .user, password: nil)
                step.details.append("created user qwen-api (role user, API token only)")
            } else {
                step.details.append("kept user qwen-api")
            }
        } catch {
            return failed(step, "the store in \(plan.dataDirectory.path): \(error)", fix: "Check that \(plan.dataDirectory.path) is writable by you.")
        }
        return step
    }

    private func secrets() async -> SetupStep {
        var step = SetupStep(title: Step.secrets.rawValue, status: plan.dryRun ? .planned : .ok)
        if plan.dryRun {
            step.details = [
                "would write the manifest comfygate-secrets.toml (layout comfygate), keep or generate the API token in \(plan.tokenFile.path), import its bcrypt hash for user qwen-api"
            ]
            return step
        }
        do {
            let (engine, messages) = try await SecretsEngine.initialize(layout: .comfyGate, root: plan.directory, storeOpener: storeOpener)
            step.details += messages
            let sync = try await engine.sync()
            step.details += sync.actions.isEmpty ? ["every target already agrees with its source"] : sync.actions.map { "synced: \($0.secret) \($0.location): \($0.summary)" }
            let problems = await engine.check().filter { $0.status != .ok }
            guard problems.isEmpty else {
                return failed(step, problems.map { "\($0.secret) \($0.location): \($0.status.rawValue)" }.joined(separator: "; "),
                    fix: "Run `comfygate secrets check --manifest \(plan.directory.appendingPathComponent("comfygate-secrets.toml").path)` for details.")
            }
        } catch {
            return failed(step, "\(error)", fix: "Run `comfygate secrets check` in \(plan.directory.path) for details; see docs/secrets.md.")
        }
        return step
    }

    // MARK: Models

    private var installer: @Sendable (HTTPClient) -> ModelInstaller {
        { [plan, modelSource] client in
            ModelInstaller(downloader: ModelDownloader(client: client, source: modelSource),
                modelsDirectory: plan.modelsDirectory ?? plan.directory.appendingPathComponent("models"))
        }
    }

    private var modelSpace: @Sendable () async throws(ModelError) -> (needed: Int64, free: Int64?) {
        { [plan, installer] () async throws(ModelError) in
            let files = try ModelManifest.select(plan.models)
            do {
                return try await ModelDownloader.withClient { client in
                    try await installer(client).space(for: files)
                }
            } catch let error as ModelError {
                throw error
            } catch {
                throw .unreachable(file: "-", url: modelSource.endpoint.absoluteString, reason: "\(error)")
            }
        }
    }

    private func models() async -> SetupStep {
        var step = SetupStep(title: Step.models.rawValue, status: plan.dryRun ? .planned : .ok)
        guard !plan.models.isEmpty, let directory = plan.modelsDirectory else {
            step.status = .skipped
            step.details = [plan.modelsSkipReason ?? "no models chosen"]
            return step
        }
        if plan.dryRun {
            step.details = ["would download \(plan.models.joined(separator: ", ")) into \(directory.path), verified with SHA-256"]
            return step
        }
        do {
            let files = try ModelManifest.select(plan.models)
            let progress = DownloadProgress(isTerminal: isTerminal) { [output] text in output(text) }
            let outcomes = try await ModelDownloader.withClient { client in
                try await installer(client).install(files, progress: progress)
            }
            for outcome in outcomes {
                switch outcome {
                case .verified(let verified):
                    step.details.append("\(verified.file.relativePath): \(verified.wasPresent ? "already there" : "downloaded"), sha256 \(verified.entry.sha256.prefix(12))…")
                case .failed(_, let error):
                    step.details.append("FAILED — \(error.description)")
                    step.status = .failed
                }
            }
            if step.status == .failed {
                step.fixes.append("Run setup again: downloads resume where they stopped (or `comfygate models download --models-dir \(directory.path)`).")
            }
        } catch {
            return failed(step, "\(error)", fix: "Run `comfygate models download --models-dir \(directory.path)` to see the download's own messages.")
        }
        return step
    }

    // MARK: Start, readiness, test

    private func start(_ context: inout RunContext) async -> SetupStep {
        var step = SetupStep(title: Step.start.rawValue, status: plan.dryRun ? .planned : .ok)
        if plan.startsCompose {
            let command = (context.compose ?? ["docker", "compose"]) + ["up", "-d", "--build"]
            if plan.dryRun {
                step.details = ["would run `\(command.joined(separator: " "))` in \(plan.directory.path)"]
                return step
            }
            guard let result = await Probes.run(command, directory: plan.directory.path, timeout: .seconds(3600)) else {
                return failed(step, "cannot run \(command[0])", fix: "Check the Docker installation.")
            }
            guard result.status == 0 else {
                return failed(step, "`\(command.joined(separator: " "))` exited with \(result.status): \(Probes.lastLine(result.output))",
                    fix: "Read the whole message with: cd \(plan.directory.path) && \(command.joined(separator: " "))")
            }
            step.details = ["`\(command.joined(separator: " "))`: the project's containers run"]
            return step
        }
        // Docker skipped: the deployment itself is not started, whatever runs for the test.
        if plan.mode == .compose {
            step.status = .skipped
            step.details = ["Docker skipped (--skip-docker): the Compose project was not started"]
        }
        guard plan.runsTest else {
            step.status = .skipped
            step.details.append("no gateway started on this host (--skip-test); run it as the report's next steps say")
            return step
        }
        let arguments = gatewayArguments()
        if plan.dryRun {
            step.details.append("would run `comfygate \(arguments.joined(separator: " "))` on this host for the test, and stop it after")
            return step
        }
        do {
            context.hostGateway = try HostGateway(executable: plan.gatewayExecutable, arguments: arguments, log: plan.gatewayLogFile)
            step.details.append(
                "started `comfygate \(arguments.joined(separator: " "))` on this host for the readiness check and the test "
                    + "(log: \(plan.gatewayLogFile.path)); it stops when setup ends")
        } catch {
            return failed(step, "cannot start \(plan.gatewayExecutable): \(error)", fix: "Check that the comfygate executable is intact.")
        }
        return step
    }

    /// `serve` on this host: with the deployment's own file in front of an existing ComfyUI, or with flags over the
    /// Compose project's store when Docker is skipped.
    private func gatewayArguments() -> [String] {
        switch plan.mode {
        case .existingComfyUI:
            return ["serve", "--config", plan.directory.appendingPathComponent("comfygate.toml").path]
        case .compose:
            return [
                "serve", "--data", plan.dataDirectory.path, "--upstream", plan.upstream.absoluteString,
                "--listen", "\(plan.listenHost):\(plan.listenPort)",
            ]
        }
    }

    private func readiness(_ context: RunContext) async -> SetupStep {
        var step = SetupStep(title: Step.readiness.rawValue, status: plan.dryRun ? .planned : .ok)
        if !plan.startsCompose && context.hostGateway == nil && !plan.dryRun {
            step.status = .skipped
            step.details = ["no gateway was started by this run (--skip-test)"]
            return step
        }
        let url = plan.gatewayURL + "/readyz"
        if plan.dryRun {
            step.details = ["would wait up to \(SetupReport.seconds(plan.readinessTimeout)) for \(url) to answer 200"]
            return step
        }
        let deadline = ContinuousClock.now + plan.readinessTimeout
        var last = "no answer yet"
        while ContinuousClock.now < deadline {
            if let gateway = context.hostGateway, !gateway.isRunning {
                return failed(step, "the gateway exited: \(gateway.logTail())", fix: "Read \(plan.gatewayLogFile.path).")
            }
            switch await Probes.get(url, timeout: .seconds(5)) {
            case .success(let answer) where answer.status == 200:
                step.details = ["\(url) answered 200: \(answer.body.trimmingCharacters(in: .whitespacesAndNewlines))"]
                return step
            case .success(let answer):
                last = "\(answer.status) \(answer.body.trimmingCharacters(in: .whitespacesAndNewlines))"
            case .failure(let failure):
                last = failure.description
            }
            try? await Task.sleep(for: .milliseconds(500))
        }
        let fix = plan.startsCompose
            ? "See why with: cd \(plan.directory.path) && docker compose ps && docker compose logs comfyui comfygate"
            : "Check that ComfyUI answers at \(plan.upstream.absoluteString), and read \(plan.gatewayLogFile.path)."
        return failed(step, "\(url) was not ready after \(SetupReport.seconds(plan.readinessTimeout)): last answer \(last)", fix: fix)
    }

    private func testGeneration() async -> SetupStep {
        var step = SetupStep(title: Step.test.rawValue, status: plan.dryRun ? .planned : .ok)
        guard plan.runsTest else {
            step.status = .skipped
            step.details = ["--skip-test: no request went through the gateway, so the deployment is not verified"]
            return step
        }
        if plan.dryRun {
            step.details = ["would run `comfygate doctor --url \(plan.gatewayURL) --token-file \(plan.tokenFile.path) --token-key \(SetupPlan.tokenKey) --generate`"]
            return step
        }
        let token: String
        do {
            token = try TokenSource.read(file: plan.tokenFile.path, key: SetupPlan.tokenKey)
        } catch {
            return failed(step, error.description, fix: "Run `comfygate secrets check` in \(plan.directory.path).")
        }
        let report = await Doctor(configuration: DoctorConfiguration(url: plan.gatewayURL, token: token, timeout: .seconds(60), generate: true)).run()
        try? AtomicFileWriter().write(Array(MarkdownRenderer().render(report).utf8), to: plan.doctorReportFile)
        let failedChecks = report.checks.filter { $0.status == .fail }
        step.details = [
            "`comfygate doctor --generate` as qwen-api: \(report.count(.pass)) checks passed, \(failedChecks.count) failed, \(report.count(.skip)) skipped; full report \(plan.doctorReportFile.path)"
        ]
        if let generation = report[.generation] { step.details.append("generation: \(generation.evidence)") }
        guard failedChecks.isEmpty else {
            step.status = .failed
            for check in failedChecks {
                step.details.append("FAILED — \(check.id.rawValue): \(check.evidence)")
                if let diagnosis = check.diagnosis { step.fixes.append(diagnosis.fix) }
            }
            return step
        }
        return step
    }

    private func failed(_ step: SetupStep, _ detail: String, fix: String) -> SetupStep {
        var step = step
        step.status = .failed
        step.details.append("FAILED — \(detail)")
        step.fixes.append(fix)
        return step
    }

    // MARK: Next steps

    private func nextSteps(_ report: SetupReport) -> [String] {
        guard !plan.dryRun else { return ["Run the same command without --dry-run to do it."] }
        var lines: [String] = []
        let directory = plan.directory.path
        switch plan.mode {
        case .compose where plan.runsDocker:
            lines.append("The deployment runs: \(plan.gatewayURL)/ (sign in as admin). Stop: cd \(directory) && docker compose down")
        case .compose:
            lines.append("Start it when Docker is ready: docker build -t \(plan.gatewayImage) -f deploy/Dockerfile <ComfyGate's source> && cd \(directory) && docker compose up -d --build")
        case .existingComfyUI:
            lines.append("Run the gateway: \(plan.gatewayExecutable) serve --config \(directory)/comfygate.toml, or install \(directory)/comfygate.service (its first lines say how)")
        }
        lines.append("Admin password: \(plan.adminPasswordFile.path) (sign in at /login and change it)")
        lines.append("Scripts: `Authorization: Bearer $\(SetupPlan.tokenKey)` from \(plan.tokenFile.path); check anytime with `comfygate doctor --url \(plan.gatewayURL) --token-file \(plan.tokenFile.path) --token-key \(SetupPlan.tokenKey) --generate`")
        lines.append("Rotate the token: comfygate secrets rotate qwen_api_user --manifest \(directory)/comfygate-secrets.toml")
        if report.steps.contains(where: { $0.status == .skipped }) {
            lines.append("Skipped steps are not verified: run setup again without the --skip options to complete them (it keeps what exists).")
        }
        return lines
    }
}

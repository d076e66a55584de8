import ComfyGateCore
import ComfyUIClient
import Foundation
import Synchronization

extension DoctorRun {
    /// Whether calls can carry what this target needs (a token, except for bare ComfyUI).
    var canCallComfyUI: Bool { target == .comfyUI || (token != nil && results.first { $0.id == .tokenAccepted }?.status == .pass) }

    /// `websocket`: `/ws?clientId=…` with the token upgrades and ComfyUI's first message is `status`.
    func checkWebSocket() async {
        guard canCallComfyUI else {
            record(.webSocket, .skip, evidence: token == nil ? "no token given" : "the token is not accepted")
            return
        }
        await measure(.webSocket) {
            let clientID = UUID().uuidString.lowercased()
            let start = clock.now
            let upgraded = Flag()
            do {
                let client = try comfyUIClient()
                let first = try await Self.withTimeout(configuration.timeout) {
                    try await client.withEvents(clientID: clientID) { session in
                        upgraded.set()
                        var events = session.events.makeAsyncIterator()
                        return try await events.next()
                    }
                }
                let elapsed = start.duration(to: clock.now).shortText
                guard case .status(let queue, let sid)? = first else {
                    return (.fail, "first message: \(first.map { "\($0)" } ?? "none")", Causes.webSocketNoStatus)
                }
                return (.pass, "upgraded; first message `status` (queue \(queue), sid \(sid == clientID ? "= clientId" : sid ?? "none")) after \(elapsed)", nil)
            } catch is DoctorTimeout where !upgraded.isSet {
                return (.fail, "no answer to the upgrade request within \(configuration.timeout.shortText)", Causes.webSocketUpgradeTimeout)
            } catch is DoctorTimeout {
                return (.fail, "upgraded, but no first message within \(configuration.timeout.shortText)", Causes.webSocketNoStatus)
            } catch let error as ComfyUIClientError where error.isKind(of: .webSocketUpgradeFailed) {
                return await diagnoseWebSocketRefusal()
            } catch {
                let (text, diagnosis) = describe(error)
                return (.fail, "websocket: \(text)", diagnosis)
            }
        }
    }

    /// Learns why the upgrade failed from a plain GET of `/ws` with the same credential.
    private func diagnoseWebSocketRefusal() async -> (CheckStatus, String, Diagnosis?) {
        let auth: Auth = target == .comfyUI ? .none : token.map { .bearer($0) } ?? .none
        guard let plain = try? await fetch("/ws", auth: auth) else {
            return (.fail, "upgrade refused", Causes.webSocketUpgradeStripped)
        }
        let evidence = "upgrade refused; GET /ws: \(plain.summary)"
        switch plain.status {
        case 401: return (.fail, evidence, Causes.webSocketAuthRefused)
        case 403: return (.fail, evidence, Causes.webSocketOriginRefused)
        case 404: return (.fail, evidence, Diagnosis(code: "websocket_path_missing", cause: "/ws does not exist at this URL: wrong URL path prefix, or a proxy that does not route it.", fix: "Route /ws (and /api/ws) to ComfyUI."))
        default: return (.fail, evidence, Causes.webSocketUpgradeStripped)
        }
    }

    /// `comfyui_facts`: versions and devices from `/system_stats`; behind ComfyGate, whether ComfyUI's `argv` has
    /// `--multi-user` (else every gateway user shares one ComfyUI user's saved workflows and settings).
    func checkFacts() {
        guard let stats else {
            record(.comfyUIFacts, .skip, evidence: "needs /system_stats with an accepted token")
            return
        }
        let devices = stats.devices.map { device -> String in
            let vram = device.vramTotal > 0 ? " (VRAM \(Self.gibibytes(device.vramFree)) free of \(Self.gibibytes(device.vramTotal)))" : ""
            return "\(device.name)\(vram)"
        }
        let python = stats.pythonVersion.split(separator: " ").first.map(String.init) ?? stats.pythonVersion
        let evidence = "ComfyUI \(stats.comfyUIVersion), Python \(python), PyTorch \(stats.pytorchVersion); devices: "
            + (devices.isEmpty ? "none" : devices.joined(separator: ", "))
        let hasGPU = stats.devices.contains { $0.type != "cpu" }
        let sharesUserData = target == .comfyGate && !stats.argv.contains("--multi-user")
        let userData = target != .comfyGate ? "" : sharesUserData ? "; user data shared (no --multi-user)" : "; user data per user (--multi-user)"
        let diagnosis = !hasGPU ? Causes.noGPU : sharesUserData ? Causes.sharedUserData : nil
        record(.comfyUIFacts, diagnosis == nil ? .pass : .warn, evidence: evidence + userData, diagnosis: diagnosis)
    }

    /// `models`: the configured workflow's files appear in `/models/<folder>` (or the loader's `object_info`).
    func checkModels() async {
        guard let requirements = configuration.models else {
            record(.models, .skip, evidence: "no workflow named (set `workflow` or `[models]` in --config)")
            return
        }
        guard canCallComfyUI else {
            record(.models, .skip, evidence: "needs an accepted token")
            return
        }
        await measure(.models) {
            do {
                let client = try comfyUIClient()
                var listings: [String: Set<String>] = [:]
                for folder in Set(requirements.files.map(\.folder)) {
                    if let files = try await client.models(folder: folder) {
                        listings[folder] = Set(files)
                    } else if let loader = Self.loaders[folder], let info = try await client.objectInfo(nodeClass: loader.node) {
                        listings[folder] = Set(info.choices(of: loader.input))
                    } else {
                        listings[folder] = []
                    }
                }
                let missing = requirements.files.filter { !(listings[$0.folder]?.contains($0.name) ?? false) }
                let present = requirements.files.count - missing.count
                let evidence = "\(requirements.workflow): \(present) of \(requirements.files.count) files present"
                    + (missing.isEmpty ? "" : "; missing " + missing.map { "\($0.folder)/\($0.name)" }.joined(separator: ", "))
                return missing.isEmpty ? (.pass, evidence, nil) : (.fail, evidence, Causes.modelsMissing(missing))
            } catch {
                let (text, diagnosis) = describe(error)
                return (.fail, "listing models: \(text)", diagnosis)
            }
        }
    }

    /// Loader nodes whose `object_info` lists a model folder's files (for servers without `/models/<folder>`).
    static let loaders: [String: (node: String, input: String)] = [
        "diffusion_models": ("UNETLoader", "unet_name"),
        "text_encoders": ("CLIPLoader", "clip_name"),
        "clip": ("CLIPLoader", "clip_name"),
        "vae": ("VAELoader", "vae_name"),
        "checkpoints": ("CheckpointLoaderSimple", "ckpt_name"),
        "loras": ("LoraLoader", "lora_name"),
    ]

    /// `secrets`: the configured manifest's consistency check.
    func checkSecrets() async {
        guard let check = configuration.secretsCheck else {
            record(.secrets, .skip, evidence: "no secrets manifest configured")
            return
        }
        await measure(.secrets) {
            do {
                let problems = try await check.run()
                if problems.isEmpty { return (.pass, "\(check.manifest): every secret consistent", nil) }
                return (.fail, "\(check.manifest): \(problems.count) problem(s)", Causes.secretsInconsistent(problems))
            } catch {
                return (.fail, "\(check.manifest): \(redact(String(describing: error)))",
                    Diagnosis(code: "secrets_check_failed", cause: "The manifest could not be checked.", fix: "Run `comfygate secrets check` to see why."))
            }
        }
    }

    static func gibibytes(_ bytes: Int) -> String {
        String(format: "%.1f GiB", Double(bytes) / 1_073_741_824)
    }

    /// Runs `body`, throwing ``DoctorTimeout`` when it takes longer than `limit` (see ``withDeadline(_:_:)``).
    static func withTimeout<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        do {
            return try await withDeadline(limit, body)
        } catch is DeadlineExceeded {
            throw DoctorTimeout()
        }
    }
}

/// Set once, read from anywhere.
private final class Flag: Sendable {
    private let value = Mutex(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}

/// A doctor step took longer than its limit.
struct DoctorTimeout: Error {}

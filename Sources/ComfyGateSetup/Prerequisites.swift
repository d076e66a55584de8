import ComfyGateCore
import ComfyGateModels
import Foundation

/// The prerequisite checks: each one found OK, failed with a fix, or not checked (and why).
struct Prerequisites {
    let plan: SetupPlan
    /// The disk space the chosen models still need and the free space where they go (asks the hub).
    let modelSpace: @Sendable () async throws(ModelError) -> (needed: Int64, free: Int64?)

    /// The checks' outcome and the Compose command found (`docker compose` or `docker-compose`).
    func check() async -> (step: SetupStep, compose: [String]?) {
        var step = SetupStep(title: Setup.Step.prerequisites.rawValue, status: .ok)
        var compose: [String]?
        func ok(_ text: String) { step.details.append("ok — \(text)") }
        func notChecked(_ text: String) { step.details.append("not checked — \(text)") }
        func failed(_ text: String, fix: String) {
            step.details.append("FAILED — \(text)")
            step.fixes.append(fix)
            step.status = .failed
        }

        if plan.startsCompose {
            compose = await checkDocker(ok: ok, failed: failed)
        } else if plan.mode == .compose {
            notChecked("Docker engine, Compose, NVIDIA runtime and the ComfyGate image (--skip-docker)")
        }

        if plan.models.isEmpty {
            notChecked("free disk for models (\(plan.modelsSkipReason ?? "no models chosen"))")
        } else if let directory = plan.modelsDirectory {
            do {
                let (needed, free) = try await modelSpace()
                if let free, free < needed {
                    failed(
                        "free disk: the models need \(ByteCount.text(needed)), \(ByteCount.text(free)) free at \(directory.path)",
                        fix: "Free \(ByteCount.text(needed - free)) on that disk, put the deployment elsewhere (--dir), or --skip-models.")
                } else {
                    ok("free disk: the models need \(ByteCount.text(needed)), \(free.map(ByteCount.text) ?? "an unknown amount") free at \(directory.path)")
                }
            } catch {
                failed(
                    "free disk: cannot ask the model hub for the files' sizes: \(error.description)",
                    fix: "Check the network or set HF_ENDPOINT to a reachable mirror (and HF_TOKEN if it needs one), or --skip-models.")
            }
        }

        await checkPort(ok: ok, failed: failed)

        if !plan.startsCompose {
            // ComfyUI answers slowly while it loads models or runs a job: give it time.
            switch await Probes.get(plan.upstream.appendingPathComponent("system_stats").absoluteString, timeout: .seconds(20)) {
            case .success(let answer) where answer.status == 200 && answer.body.contains("\"system\""):
                ok("ComfyUI answers at \(plan.upstream.absoluteString)")
            case .success(let answer):
                failed(
                    "ComfyUI at \(plan.upstream.absoluteString): /system_stats answered \(answer.status), not ComfyUI's system stats",
                    fix: "Point --upstream at ComfyUI itself (not at a proxy that wants a login), e.g. http://127.0.0.1:8188.")
            case .failure(let failure):
                failed(
                    "ComfyUI at \(plan.upstream.absoluteString) does not answer: \(failure.description)",
                    fix: "Start ComfyUI (python main.py --listen 127.0.0.1 --port 8188), or pass --upstream with its URL.")
            }
        }
        return (step, compose)
    }

    private func checkDocker(ok: (String) -> Void, failed: (String, String) -> Void) async -> [String]? {
        guard let engine = await Probes.run(["docker", "version", "--format", "{{.Server.Version}}"]) else {
            failed("Docker is not installed (no `docker` on PATH)",
                "Install Docker Engine (Debian: sudo apt-get install docker.io), or use --skip-docker / --upstream URL.")
            return nil
        }
        guard engine.status == 0 else {
            failed("the Docker engine does not answer: \(Probes.lastLine(engine.output))",
                "Start it (sudo systemctl start docker) and let your user use it (sudo usermod -aG docker $USER, then log in again).")
            return nil
        }
        ok("Docker engine \(Probes.lastLine(engine.output))")
        var compose: [String]?
        if let plugin = await Probes.run(["docker", "compose", "version", "--short"]), plugin.status == 0 {
            compose = ["docker", "compose"]
            ok("Docker Compose \(Probes.lastLine(plugin.output))")
        } else if let standalone = await Probes.run(["docker-compose", "version", "--short"]), standalone.status == 0 {
            compose = ["docker-compose"]
            ok("docker-compose \(Probes.lastLine(standalone.output))")
        } else {
            failed("Docker Compose is missing", "Install the Compose plugin (sudo apt-get install docker-compose-plugin, or Debian's docker-compose).")
        }
        if let runtimes = await Probes.run(["docker", "info", "--format", "{{json .Runtimes}}"]), runtimes.status == 0,
            runtimes.output.contains("nvidia")
        {
            ok("NVIDIA container runtime")
        } else {
            failed("the NVIDIA container runtime is not configured in Docker (ComfyUI needs the GPU)",
                "Install the NVIDIA Container Toolkit, then: sudo nvidia-ctk runtime configure --runtime=docker && sudo systemctl restart docker.")
        }
        if let image = await Probes.run(["docker", "image", "inspect", "--format", "{{.Id}}", plan.gatewayImage]), image.status == 0 {
            ok("image \(plan.gatewayImage)")
        } else {
            failed("the image \(plan.gatewayImage) is not built",
                "Build it from ComfyGate's source tree: docker build -t \(plan.gatewayImage) -f deploy/Dockerfile .")
        }
        return compose
    }

    private func checkPort(ok: (String) -> Void, failed: (String, String) -> Void) async {
        let address = "\(plan.listenHost):\(plan.listenPort)"
        if Probes.portIsFree(host: plan.listenHost, port: plan.listenPort) {
            ok("port \(address) is free")
            return
        }
        if plan.startsCompose, case .success(let answer) = await Probes.get(plan.gatewayURL + "/healthz"), answer.status == 200 {
            ok("port \(address) is held by a gateway that answers /healthz (this deployment, started before)")
            return
        }
        failed("port \(address) is in use", "Stop the program listening there (ss -ltnp 'sport = :\(plan.listenPort)'), or choose another port with --listen.")
    }
}

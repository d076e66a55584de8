import Foundation

/// One file of the deployment directory.
public struct DeploymentFile: Sendable, Equatable {
    /// Relative to the deployment directory.
    public var path: String
    public var contents: String
}

/// The files `comfygate setup` writes: their one definition, also the source of the examples in `deploy/`.
public enum DeploymentFiles {
    /// ComfyUI's release the Compose project builds.
    public static let comfyUIVersion = "v0.3.64"
    /// The folders ComfyUI's Qwen workflows load models from.
    static let modelFolders = ["diffusion_models", "text_encoders", "vae", "loras"]

    /// Every file of the plan's mode, and the directories to create (mode 0700 for private ones).
    public static func files(for plan: SetupPlan, user: (uid: UInt32, gid: UInt32, name: String)) -> [DeploymentFile] {
        var files = [DeploymentFile(path: ".gitignore", contents: gitIgnore(plan))]
        switch plan.mode {
        case .compose:
            files.append(DeploymentFile(path: ".env", contents: "# Read by Docker Compose.\nCOMPOSE_PROJECT_NAME=comfyui-qwen\n"))
            files.append(DeploymentFile(path: "compose.yaml", contents: compose(plan, uid: user.uid, gid: user.gid)))
            files.append(DeploymentFile(path: "comfyui/Dockerfile", contents: comfyUIDockerfile))
            files.append(DeploymentFile(path: "comfygate.toml", contents: containerConfiguration))
        case .existingComfyUI:
            files.append(DeploymentFile(path: "comfygate.toml", contents: hostConfiguration(plan)))
            files.append(DeploymentFile(path: "comfygate.service", contents: systemdUnit(plan, userName: user.name)))
        }
        return files
    }

    /// Directories the deployment needs besides those of its files.
    static func directories(for plan: SetupPlan) -> [String] {
        var directories = ["data", ".secrets"]
        if plan.mode == .compose {
            directories += modelFolders.map { "models/" + $0 } + ["comfyui/input", "comfyui/output", "comfyui/user"]
        }
        return directories
    }

    static func gitIgnore(_ plan: SetupPlan) -> String {
        var lines = [
            "# Written by `comfygate setup`: secrets, the gateway's store and large or generated files stay out of git.",
            ".secrets/", "data/", "setup-gateway.log",
        ]
        if plan.mode == .compose { lines += ["models/", "comfyui/input/", "comfyui/output/", "comfyui/user/"] }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The Compose project: ComfyUI has no published port and sits only on an internal network, so ComfyGate is the
    /// one way in. Both run as the user who ran setup, who owns the folders they write (bind mounts in the
    /// deployment directory, unlike deploy/compose.yaml's named volumes).
    static func compose(_ plan: SetupPlan, uid: UInt32, gid: UInt32) -> String {
        let published = plan.listenHost.contains(":") ? "[\(plan.listenHost)]" : plan.listenHost
        return """
            # Written by `comfygate setup`. ComfyUI is reachable only by ComfyGate: it publishes no port and is
            # attached only to the internal network `backend`. Start: docker compose up -d --build
            services:
              comfyui:
                build:
                  context: ./comfyui
                  args:
                    COMFYUI_VERSION: \(comfyUIVersion)
                image: comfygate-comfyui:\(comfyUIVersion)
                restart: unless-stopped
                user: "\(uid):\(gid)"
                environment:
                  HOME: /tmp
                # Everything ComfyUI writes goes to ./comfyui, owned by the user who ran setup.
                command: ["python", "main.py", "--listen", "0.0.0.0", "--port", "8188", "--multi-user",
                          "--input-directory", "/state/input", "--output-directory", "/state/output",
                          "--user-directory", "/state/user", "--temp-directory", "/state"]
                volumes:
                  - ./models:/opt/ComfyUI/models:ro
                  - ./comfyui:/state
                # No `ports:` and no other network, on purpose: whoever reaches ComfyUI's port runs code on this machine.
                networks:
                  - backend
                deploy:
                  resources:
                    reservations:
                      devices:
                        - driver: nvidia
                          count: all
                          capabilities: [gpu]

              comfygate:
                image: \(plan.gatewayImage)
                restart: unless-stopped
                user: "\(uid):\(gid)"
                command: ["serve", "--config", "/etc/comfygate/comfygate.toml"]
                ports:
                  - "\(published):\(plan.listenPort):8189"
                volumes:
                  - ./comfygate.toml:/etc/comfygate/comfygate.toml:ro
                  - ./data:/var/lib/comfygate
                networks:
                  - backend
                  - edge
                depends_on:
                  - comfyui
                stop_grace_period: 30s

            networks:
              backend:
                internal: true
              edge: {}

            """
    }

    /// ComfyUI at a pinned release on PyTorch's CUDA runtime image. The same text is `deploy/comfyui/Dockerfile` (a
    /// test keeps them equal).
    public static let comfyUIDockerfile = """
        # syntax=docker/dockerfile:1
        #
        # ComfyUI on an NVIDIA GPU, for the `comfyui` service of deploy/compose.yaml (build context: deploy/comfyui) and of
        # the Compose project `comfygate setup` writes, which writes this same file (a test keeps the two equal).
        #
        # A pinned ComfyUI release on PyTorch's CUDA runtime image. It runs as the unprivileged user `comfyui`
        # (uid/gid 10002) and listens on all interfaces of the container: compose.yaml keeps it on an internal
        # network with no published port, so only ComfyGate reaches it.
        #
        #     docker build -t comfyui:v0.3.64 deploy/comfyui
        #     docker build --build-arg COMFYUI_VERSION=v0.3.65 ...   # another release tag

        ARG COMFYUI_VERSION=v0.3.64
        ARG BASE_IMAGE=pytorch/pytorch:2.8.0-cuda12.8-cudnn9-runtime

        # ---------------------------------------------------------------------------------------------------------
        # The source at the release tag, without git in the final image.
        FROM debian:bookworm-slim AS source
        ARG COMFYUI_VERSION
        RUN export DEBIAN_FRONTEND=noninteractive \\
            && apt-get update -q \\
            && apt-get install -y -q --no-install-recommends ca-certificates git \\
            && rm -rf /var/lib/apt/lists/*
        RUN git clone --depth 1 --branch "${COMFYUI_VERSION}" https://github.com/comfyanonymous/ComfyUI.git /opt/ComfyUI \\
            && rm -rf /opt/ComfyUI/.git

        # ---------------------------------------------------------------------------------------------------------
        FROM ${BASE_IMAGE}

        ENV PYTHONUNBUFFERED=1 \\
            PIP_NO_CACHE_DIR=1 \\
            PIP_DISABLE_PIP_VERSION_CHECK=1

        COPY --from=source /opt/ComfyUI /opt/ComfyUI
        WORKDIR /opt/ComfyUI

        # ComfyUI's requirements, keeping the CUDA build of PyTorch the base image ships: its installed torch,
        # torchvision and torchaudio versions become constraints, so pip cannot replace them from PyPI.
        RUN python -c "import importlib.metadata as m; have = {(d.metadata['Name'] or '').lower() for d in m.distributions()}; print('\\\\n'.join(f'{n}=={m.version(n)}' for n in ('torch', 'torchvision', 'torchaudio') if n in have))" > /tmp/torch-constraints.txt \\
            && python -m pip install -c /tmp/torch-constraints.txt -r requirements.txt \\
            && rm /tmp/torch-constraints.txt

        # The folders ComfyUI writes, owned by its user; compose.yaml mounts volumes on models, input, output and user
        # (an empty named volume takes the owner from the image).
        RUN groupadd --gid 10002 comfyui \\
            && useradd --uid 10002 --gid comfyui --create-home --shell /usr/sbin/nologin comfyui \\
            && mkdir -p models input output user temp custom_nodes \\
            && chown -R comfyui:comfyui /opt/ComfyUI

        USER comfyui:comfyui
        EXPOSE 8188

        # --multi-user gives each ComfyGate user their own ComfyUI user data (saved workflows, settings); without it
        # they share one, and `comfygate doctor` warns.
        CMD ["python", "main.py", "--listen", "0.0.0.0", "--port", "8188", "--multi-user"]

        """

    /// ComfyGate's settings inside the Compose project.
    static let containerConfiguration = """
        # ComfyGate's settings inside the Compose project (written by `comfygate setup`; keys: README, `comfygate serve`).
        listen = "0.0.0.0:8189"
        upstream = "http://comfyui:8188"
        data = "/var/lib/comfygate"
        # With TLS in front (deploy/Caddyfile or deploy/nginx/comfygate.conf):
        # public_url = "https://comfy.example.org"
        # and trusted_proxies = [the `edge` network's gateway address]; deploy/compose.yaml shows a pinned one.

        """

    /// ComfyGate's settings on this host, in front of an existing ComfyUI.
    static func hostConfiguration(_ plan: SetupPlan) -> String {
        let listen = plan.listenHost.contains(":") ? "[\(plan.listenHost)]:\(plan.listenPort)" : "\(plan.listenHost):\(plan.listenPort)"
        return """
            # ComfyGate's settings (written by `comfygate setup`; keys: README, `comfygate serve`).
            listen = "\(listen)"
            upstream = "\(plan.upstream.absoluteString)"
            data = "\(plan.dataDirectory.path)"
            # With TLS in front (deploy/Caddyfile or deploy/nginx/comfygate.conf):
            # public_url = "https://comfy.example.org"
            # trusted_proxies = ["127.0.0.1"]

            """
    }

    /// A hardened systemd unit running the gateway as the user who ran setup.
    static func systemdUnit(_ plan: SetupPlan, userName: String) -> String {
        """
        # Written by `comfygate setup`. Install: sudo cp comfygate.service /etc/systemd/system/ \\
        #   && sudo systemctl daemon-reload && sudo systemctl enable --now comfygate
        [Unit]
        Description=ComfyGate, the authenticating gateway in front of ComfyUI at \(plan.upstream.absoluteString)
        After=network-online.target
        Wants=network-online.target

        [Service]
        ExecStart=\(plan.gatewayExecutable) serve --config \(plan.directory.appendingPathComponent("comfygate.toml").path)
        User=\(userName)
        WorkingDirectory=\(plan.directory.path)
        Restart=on-failure
        RestartSec=2
        LimitNOFILE=65536
        NoNewPrivileges=yes
        PrivateTmp=yes
        PrivateDevices=yes
        ProtectSystem=strict
        ProtectHome=read-only
        ReadWritePaths=\(plan.dataDirectory.path)
        ProtectKernelTunables=yes
        ProtectKernelModules=yes
        ProtectControlGroups=yes
        RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
        RestrictNamespaces=yes
        LockPersonality=yes
        CapabilityBoundingSet=
        SystemCallFilter=@system-service

        [Install]
        WantedBy=multi-user.target

        """
    }
}

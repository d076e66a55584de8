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
    /// one way in. Both run as the user who ran setup, who owns the folders they write.
    static func compose(_ plan: SetupPlan, uid: UInt32, gid: UInt32) -> String {
        let published = plan.listenHost.contains(":") ? "[\(plan.listenHost)]" : plan.listenHost
        return """
            # Written by `comfygate setup`. ComfyUI is reachable only by ComfyGate: it publishes no port and is
            # attached only to the internal network `comfyui`. Start: docker compose up -d --build
            services:
              comfyui:
                build: ./comfyui
                image: comfygate-comfyui:\(comfyUIVersion)
                restart: unless-stopped
                user: "\(uid):\(gid)"
                volumes:
                  - ./models:/opt/ComfyUI/models:ro
                  - ./comfyui:/state
                networks:
                  - comfyui
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
                  - comfyui
                  - public
                depends_on:
                  - comfyui

            networks:
              comfyui:
                internal: true
              public: {}

            """
    }

    /// ComfyUI at a pinned release on PyTorch's CUDA runtime image; everything it writes goes to `/state`.
    public static let comfyUIDockerfile = """
        # ComfyUI for ComfyGate's Compose project (written by `comfygate setup`; the same file is deploy/comfyui/Dockerfile).
        FROM pytorch/pytorch:2.8.0-cuda12.8-cudnn9-runtime
        ARG COMFYUI_VERSION=\(comfyUIVersion)
        RUN apt-get update \\
            && apt-get install -y --no-install-recommends git \\
            && rm -rf /var/lib/apt/lists/* \\
            && git clone --depth 1 --branch "${COMFYUI_VERSION}" https://github.com/comfyanonymous/ComfyUI.git /opt/ComfyUI \\
            && pip install --no-cache-dir -r /opt/ComfyUI/requirements.txt
        WORKDIR /opt/ComfyUI
        # Compose runs this as the deployment's owner (`user:`); nothing here needs root at run time.
        ENV HOME=/tmp
        EXPOSE 8188
        CMD ["python", "main.py", "--listen", "0.0.0.0", "--port", "8188", \\
             "--input-directory", "/state/input", "--output-directory", "/state/output", \\
             "--user-directory", "/state/user", "--temp-directory", "/state"]

        """

    /// ComfyGate's settings inside the Compose project.
    static let containerConfiguration = """
        # ComfyGate's settings inside the Compose project (written by `comfygate setup`; keys: README, `comfygate serve`).
        listen = "0.0.0.0:8189"
        upstream = "http://comfyui:8188"
        data = "/var/lib/comfygate"
        # With TLS in front (deploy/Caddyfile or deploy/nginx/comfygate.conf):
        # public_url = "https://comfy.example.org"
        # trusted_proxies = ["172.16.0.1"]

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

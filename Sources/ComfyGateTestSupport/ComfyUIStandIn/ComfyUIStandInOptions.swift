public import Logging

extension ComfyUIStandIn {
    /// How the stand-in is configured. Every field has a default that mimics a CPU-only ComfyUI 0.3.64.
    public struct Options: Sendable {
        /// Version strings reported by `GET /system_stats`.
        public var comfyUIVersion: String = "0.3.64"
        public var requiredFrontendVersion: String = "1.27.10"
        public var installedTemplatesVersion: String = "0.1.94"
        public var requiredTemplatesVersion: String = "0.1.94"
        public var pythonVersion: String = "3.12.3 (main, Aug 14 2025, 17:47:21) [GCC 13.3.0]"
        public var pytorchVersion: String = "2.8.0+cpu"
        /// `system.argv` in `/system_stats`.
        public var argv: [String] = ["main.py", "--cpu", "--listen", "127.0.0.1", "--port", "8188"]
        public var ramTotal: Int = 8_323_227_648
        public var ramFree: Int = 6_219_587_584
        /// `devices` in `/system_stats`.
        public var devices: [Device] = [Device(name: "cpu", type: "cpu", index: nil, vramTotal: 8_323_227_648, vramFree: 6_219_587_584)]

        /// Model folders and their files, served by `/models`, `/models/{folder}` and the loader nodes' `object_info`.
        public var models: [String: [String]] = [
            "checkpoints": ["sd_xl_base_1.0.safetensors"],
            "configs": [],
            "loras": [],
            "vae": ["ae.safetensors"],
            "text_encoders": ["t5xxl_fp8_e4m3fn.safetensors", "clip_l.safetensors"],
            "diffusion_models": ["flux1-schnell-fp8.safetensors"],
            "clip_vision": [],
            "style_models": [],
            "embeddings": [],
            "diffusers": [],
            "vae_approx": [],
            "controlnet": [],
            "gligen": [],
            "upscale_models": [],
            "hypernetworks": [],
            "photomaker": [],
            "classifiers": [],
            "model_patches": [],
            "audio_encoders": [],
        ]
        /// Names returned by `GET /embeddings` (without extension).
        public var embeddings: [String] = []
        /// URLs returned by `GET /extensions` when there is no ``webRoot``.
        public var extensions: [String] = [
            "/extensions/core/clipspace.js", "/extensions/core/groupNode.js", "/extensions/core/widgetInputs.js",
        ]
        /// The body of `GET /` when there is no ``webRoot``.
        public var indexHTML: String = """
            <!doctype html>
            <html lang="en">
              <head><meta charset="UTF-8"><title>ComfyUI</title></head>
              <body class="litegraph grid"><div id="vue-app"></div></body>
            </html>

            """

        /// The front end's directory (ComfyUI's web root, e.g. the `static` folder of `comfyui-frontend-package`). When
        /// set, `GET /` answers its `index.html`, every other file under it is served at `/…` as aiohttp's
        /// `web.static('/', web_root)` serves it (which also answers GET and HEAD requests that no route takes), and
        /// `GET /extensions` lists its `extensions/**/*.js`. `nil`: ``indexHTML`` and ``extensions`` instead, no files.
        public var webRoot: String? = nil

        /// Virtual large files in the `output` directory: file name → size in bytes. `/view` streams their
        /// content (see ``StandInVirtualFile``) without ever holding a whole file in memory.
        public var virtualFiles: [String: Int] = [:]

        /// Request body limit in bytes (ComfyUI's `--max-upload-size`, aiohttp `client_max_size`). Larger bodies get 413.
        /// Also advertised as `max_upload_size` in `/features` and the websocket `feature_flags` reply.
        public var maxUploadSize: Int = 100 * 1024 * 1024

        /// `nil` (default): the origin-only middleware (A.4). Otherwise CORS mode (A.3) with this
        /// `Access-Control-Allow-Origin` value (`"*"` = `--enable-cors-header` without a value).
        public var corsOrigin: String? = nil
        /// The [newer] Fetch Metadata guard: `Sec-Fetch-Site: cross-site` → bare 403 (origin-only mode only).
        public var rejectCrossSiteFetch: Bool = true

        /// ComfyUI-Login behaviour (D.3, F.2); `nil` = plain ComfyUI.
        public var login: Login? = nil

        /// `--multi-user` (A.10): `/settings*` and `/userdata*` are kept per `comfy-user` header value, and an id
        /// missing from the users map fails those routes. Off: every request is user `default`, the header is ignored.
        public var multiUser: Bool = false
        /// `users.json` at start (id → name), used with ``multiUser``; `POST /users` adds to it.
        public var users: [String: String] = [:]

        /// The [newer] `is_within_directory` guard of `folder_paths.get_annotated_filepath`: a `LoadImage` value that
        /// leaves its directory (`..`, an absolute path) fails validation. 0.3.64 (false) joins the value on unchecked.
        public var confineAnnotatedFilePaths: Bool = false

        /// The [newer] jobs API: `GET /api/jobs`, `GET /api/jobs/{job_id}`, and `create_time` (ms) in queued `extra_data`.
        public var jobsAPI: Bool = false

        /// Largest websocket frame accepted or sent (hummingbird's default is 16 KiB).
        public var webSocketMaxFrameSize: Int = 16 * 1024 * 1024

        /// The port to listen on (ComfyUI's `--port`); 0 (default): an ephemeral port. A fixed port lets a test stop a
        /// stand-in and start another on the same port, as ComfyUI is restarted.
        public var port: Int = 0

        /// ComfyUI's `--tls-certfile` and `--tls-keyfile` (PEM files): when both are set, the stand-in serves https, and
        /// its websocket wss, on its one port, as ComfyUI does; nil (default): plain http.
        public var tlsCertFile: String? = nil
        public var tlsKeyFile: String? = nil

        /// How long each node takes to execute, standing for a slower GPU (default 0): a node runs at least this long
        /// after its `executing` message (an interrupt still stops it at once).
        public var nodeExecutionDelay: Duration = .zero

        /// Log level of the stand-in's own logger (quiet by default).
        public var logLevel: Logger.Level = .critical

        public init() {}
    }

    /// One entry of `devices` in `/system_stats`.
    public struct Device: Sendable {
        public var name: String
        public var type: String
        public var index: Int?
        public var vramTotal: Int
        public var vramFree: Int

        public init(name: String, type: String, index: Int?, vramTotal: Int, vramFree: Int) {
            self.name = name
            self.type = type
            self.index = index
            self.vramTotal = vramTotal
            self.vramFree = vramFree
        }
    }

    /// ComfyUI-Login settings.
    public struct Login: Sendable {
        /// Line 1 of `login/PASSWORD` — the bcrypt hash string that is also the API token. `nil` = no password yet
        /// (then an empty `?token=` is accepted and the first `POST /login` sets the password).
        public var passwordHash: String?
        /// The stand-in does not run bcrypt: `POST /login` accepts a password when this closure returns true
        /// (default: never). When there is no password yet, the first `POST /login` sets `passwordHash` to
        /// `newHashForFirstPassword(password)`.
        public var verifyPassword: @Sendable (String) -> Bool
        public var newHashForFirstPassword: @Sendable (String) -> String

        public init(
            passwordHash: String?,
            verifyPassword: @escaping @Sendable (String) -> Bool = { _ in false },
            newHashForFirstPassword: @escaping @Sendable (String) -> String = { _ in
                "$2b$12$standinstandinstandinuQ8Vq1mQ0n9Wm6cF9ZQd0bK7xJm3nZbS"
            }
        ) {
            self.passwordHash = passwordHash
            self.verifyPassword = verifyPassword
            self.newHashForFirstPassword = newHashForFirstPassword
        }
    }
}

/// Every cause doctor can name, with its fix. Codes are stable (docs/doctor.md lists them).
enum Causes {
    static func unresolvable(_ host: String) -> Diagnosis {
        Diagnosis(
            code: "name_unresolvable",
            cause: "The name '\(host)' does not resolve: a typo, a DNS record that does not exist (yet), or a Docker service name used outside its network.",
            fix: "Check the spelling, `getent hosts \(host)`, or use the IP address; service names only resolve inside the compose network.")
    }

    static func refused(_ address: String) -> Diagnosis {
        Diagnosis(
            code: "connection_refused",
            cause: "Nothing listens on \(address): the service is stopped or still starting, the port is wrong, or the container port is not published.",
            fix: "Start the service and watch its log until it listens; check the port and `docker compose ps` (the `ports:` mapping).")
    }

    static func connectTimeout(_ address: String) -> Diagnosis {
        Diagnosis(
            code: "connect_timeout",
            cause: "Connecting to \(address) got no answer at all: a firewall drops the packets, or the host is down or unreachable.",
            fix: "Check the firewall / security group for the port, and that the host is up (`ping`, `nc -vz host port`).")
    }

    static let emptyReply = Diagnosis(
        code: "empty_reply",
        cause: "The TCP connection was accepted, then closed without a single byte (curl: `(52) Empty reply from server`). "
            + "Usually Docker's port proxy accepted for a container that does not listen (yet): ComfyUI still starting or crashed "
            + "(e.g. a custom node failed to import), or ComfyUI bound to 127.0.0.1 inside the container instead of 0.0.0.0. "
            + "Also: an https-only port spoken to with http://, or a proxy with no healthy backend.",
        fix: "Read the container log (`docker compose logs -f`) until ComfyUI prints `To see the GUI go to`; start it with "
            + "`--listen 0.0.0.0`; try https:// if the port expects TLS; check the proxy's backend.")

    static let resetReply = Diagnosis(
        code: "connection_reset",
        cause: "The connection was reset before any answer: the process behind the port crashed or refused the request, or a middlebox cut it.",
        fix: "Read the server's log at the time of the request; try from the server itself (`curl -v http://127.0.0.1:PORT/`).")

    static func slowAnswer(timeout: Duration) -> Diagnosis {
        Diagnosis(
            code: "slow_answer",
            cause: "The server accepted the connection but did not answer within \(timeout.shortText): it is overloaded or blocked "
                + "(model loading, a long job on the event loop, bcrypt in ComfyUI-Login), or a proxy waits for a backend that never answers.",
            fix: "Retry with a longer --timeout; look at the server's CPU and log; check the proxy's upstream timeout and target.")
    }

    static let truncatedReply = Diagnosis(
        code: "truncated_reply",
        cause: "The answer stopped in the middle of its headers: the server crashed while answering, or a proxy cut the connection.",
        fix: "Read the server's and the proxy's logs at the time of the request.")

    static let tlsOnPlainPort = Diagnosis(
        code: "tls_expected",
        cause: "The port answered with TLS bytes to a plain HTTP request: it expects https.",
        fix: "Use an https:// URL.")

    static let notHTTP = Diagnosis(
        code: "not_http",
        cause: "Something that does not speak HTTP listens on this port (another service, or the wrong port).",
        fix: "Check which process owns the port (`ss -ltnp`) and the port ComfyUI or ComfyGate was started with.")

    static func tlsFailed(_ detail: String) -> Diagnosis {
        if detail.contains("WRONG_VERSION_NUMBER") || detail.contains("wrong version") {
            return Diagnosis(
                code: "tls_plain_http_port",
                cause: "The TLS handshake got a plain-HTTP answer: this port does not speak TLS.",
                fix: "Use http://, or put a TLS terminator (or ComfyGate with TLS) in front.")
        }
        if detail.contains("CERTIFICATE_VERIFY_FAILED") || detail.contains("certificate") {
            return Diagnosis(
                code: "tls_certificate_untrusted",
                cause: "The server's certificate is not trusted: self-signed, expired, issued for another name, or the chain is incomplete.",
                fix: "Install a certificate for this name from a trusted CA (e.g. Let's Encrypt), with the full chain.")
        }
        return Diagnosis(
            code: "tls_failed",
            cause: "The TLS handshake failed: \(detail).",
            fix: "Check the TLS terminator's certificate and protocol settings.")
    }

    static let plainHTTPOverNetwork = Diagnosis(
        code: "plain_http",
        cause: "Plain http to a host that is not this machine: tokens, passwords and images cross the network unencrypted.",
        fix: "Serve the gateway over https (a TLS terminator in front, or public_url with https).")

    static func notComfyUI(_ summary: String) -> Diagnosis {
        Diagnosis(
            code: "not_comfyui",
            cause: "What answers is neither ComfyUI, ComfyUI-Login nor ComfyGate (/system_stats gave \(summary)): wrong port or URL path, or another service.",
            fix: "Point --url at ComfyGate's or ComfyUI's root (the port ComfyUI printed at startup, 8188 by default).")
    }

    static func bareComfyUI(exposed: Bool) -> Diagnosis {
        Diagnosis(
            code: exposed ? "bare_comfyui_exposed" : "bare_comfyui",
            cause: "ComfyUI answers without any authentication. Anyone who can reach it can run code on the machine "
                + "(any workflow, custom nodes that execute code, ComfyUI-Manager installs), read every image and prompt, and upload files."
                + (exposed ? " It is reachable beyond this machine (non-loopback URL or `--listen` on all interfaces)." : ""),
            fix: "Keep ComfyUI on 127.0.0.1 and put ComfyGate in front (`comfygate serve --upstream http://127.0.0.1:8188`), "
                + "or at least ComfyUI-Login.")
    }

    static let loginWithoutPassword = Diagnosis(
        code: "login_no_password",
        cause: "ComfyUI-Login has no password yet (no login/PASSWORD): it accepts an empty `?token=`, so anyone can use the API, "
            + "and the first visitor of /login sets the password.",
        fix: "Set the password now through /login (or write login/PASSWORD before start) and keep `<ComfyUI>/login/` on a persistent volume.")

    static let authNotEnforced = Diagnosis(
        code: "auth_not_enforced",
        cause: "A request without any credential got 200: nothing in front of ComfyUI checks who is calling.",
        fix: "Put ComfyGate in front and make ComfyUI reachable only through it.")

    static let loginTokenIsRawSecret = Diagnosis(
        code: "login_token_is_raw_secret",
        cause: "ComfyUI-Login compares the token with the first line of its login/PASSWORD file — a bcrypt hash (`$2b$12$…`) — "
            + "by plain string equality. A raw password or token never matches; there is no bcrypt check on the API path.",
        fix: "Use as token the exact first line of `<ComfyUI>/login/PASSWORD` in the running container (`head -n1 login/PASSWORD`), "
            + "or the value after `token=` in the startup log line `For direct API calls, use token=…`. Or put ComfyGate in front and use its tokens.")

    static let loginTokenIsOtherHash = Diagnosis(
        code: "login_token_not_password_hash",
        cause: "The token is a bcrypt hash, but not the one ComfyUI-Login loaded: a hash computed separately has another salt "
            + "(ComfyUI-Login never reads an environment variable such as COMFYUI_BEARER_TOKEN); or login/PASSWORD was replaced after "
            + "ComfyUI started (the token is only read at startup); or ComfyUI runs with `--enable-cors-header <origin>`, which skips the token check.",
        fix: "Copy the first line of `<ComfyUI>/login/PASSWORD` from the running container (or the startup log's `token=` value) "
            + "and restart ComfyUI after changing the file.")

    static func tokenMangled(length: Int) -> Diagnosis {
        Diagnosis(
            code: "token_mangled",
            cause: "The token looks like a bcrypt hash but is \(length) characters long instead of 60: its `$` parts were probably "
                + "eaten by variable interpolation (docker compose `.env`, a shell with double quotes).",
            fix: "Quote the value with single quotes, or write each `$` as `$$` in compose files; read it back to check it is 60 characters.")
    }

    static let loginMalformedHeader = Diagnosis(
        code: "login_malformed_authorization",
        cause: "ComfyUI-Login answers 500 when the Authorization header is not exactly two words (`Bearer <token>`): the token contains a space or a line break.",
        fix: "Strip whitespace and newlines from the token (a trailing newline from a file is the usual culprit).")

    static let gatewayTokenBypassed = Diagnosis(
        code: "gateway_token_sent_to_comfyui",
        cause: "This is a ComfyGate token (`cgt_…`), but the URL reaches ComfyUI-Login directly, not the gateway.",
        fix: "Use the gateway's URL (its listen address or public_url); keep ComfyUI reachable only from the gateway.")

    static let gatewayTokenRefused = Diagnosis(
        code: "gateway_token_refused",
        cause: "ComfyGate does not know this token, or it was revoked or has expired.",
        fix: "Create a token with `comfygate tokens create --user NAME` (list them with `comfygate tokens list`) and use the value it prints once.")

    static let gatewayTokenIsHash = Diagnosis(
        code: "gateway_token_is_hash",
        cause: "The token is a bcrypt hash. ComfyGate wants the raw token; it keeps the hash itself.",
        fix: "Use the raw token (e.g. QWEN_API_USER_TOKEN in the client's .env), not the hash from the server side.")

    static func gatewayUpstream(_ summary: String) -> Diagnosis {
        Diagnosis(
            code: "gateway_upstream_unreachable",
            cause: "ComfyGate accepted the token but cannot reach ComfyUI (\(summary)): ComfyUI is down or starting, or `upstream` points elsewhere.",
            fix: "Check `/readyz` on the gateway, the `upstream` setting, and ComfyUI's log.")
    }

    static func tokenRefused(_ summary: String) -> Diagnosis {
        Diagnosis(
            code: "token_refused",
            cause: "The token was refused (\(summary)).",
            fix: "Check that the token is the one this deployment issued, without surrounding whitespace.")
    }

    static let anyTokenAccepted = Diagnosis(
        code: "any_token_accepted",
        cause: "A made-up token was accepted: authentication is not really enforced.",
        fix: "Check the proxy's authentication configuration; make ComfyUI reachable only through ComfyGate.")

    static let loginPageMissing = Diagnosis(
        code: "login_page_missing",
        cause: "A browser without a session is neither sent to a login page nor shown one: people cannot sign in.",
        fix: "For ComfyGate check `public_url`; for ComfyUI-Login check the extension loaded (its startup log line).")

    static let webSocketAuthRefused = Diagnosis(
        code: "websocket_auth_refused",
        cause: "The websocket handshake was refused with 401 although the token works for HTTP: a proxy in front does not forward "
            + "the Authorization header on the upgrade request.",
        fix: "Forward Authorization on /ws (or pass the token as `?token=`), and keep ComfyGate as the first hop.")

    static let webSocketOriginRefused = Diagnosis(
        code: "websocket_origin_refused",
        cause: "The websocket handshake got 403: ComfyUI's origin check (Host rewritten to a loopback address while Origin keeps the public name), "
            + "or a cross-site guard.",
        fix: "Forward the public Host to ComfyUI (`proxy_set_header Host $host`), or go through ComfyGate, which keeps Host and Origin consistent.")

    static let webSocketUpgradeStripped = Diagnosis(
        code: "websocket_upgrade_stripped",
        cause: "/ws answers plain HTTP but the upgrade fails: a proxy in front drops the Upgrade and Connection headers.",
        fix: "Enable websocket proxying (nginx: `proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection \"upgrade\";`).")

    static let webSocketUpgradeTimeout = Diagnosis(
        code: "websocket_upgrade_timeout",
        cause: "The websocket upgrade request got no answer at all: a proxy holds it (it cannot open /ws on ComfyUI, or waits "
            + "for a body that never comes), or the server is stuck.",
        fix: "Check the proxy's websocket support and its connection to ComfyUI's /ws; try /ws directly on ComfyUI to compare.")

    static let webSocketNoStatus = Diagnosis(
        code: "websocket_no_status",
        cause: "The websocket opened but ComfyUI's first `status` message never came: a proxy buffers or blocks frames, or ComfyUI is stuck.",
        fix: "Disable proxy buffering for /ws and check ComfyUI's log.")

    static let noGPU = Diagnosis(
        code: "no_gpu",
        cause: "PyTorch sees no GPU: generation runs on the CPU (minutes per image for Qwen-Image).",
        fix: "Give the container the GPU (`gpus: all` / NVIDIA container toolkit), and do not start ComfyUI with `--cpu`.")

    static let sharedUserData = Diagnosis(
        code: "shared_user_data",
        cause: "ComfyUI runs without `--multi-user`: every gateway user sees, and can overwrite, the same saved workflows and settings.",
        fix: "Start ComfyUI with `--multi-user`: the gateway then gives each of its users a ComfyUI user of their own.")

    static func modelsMissing(_ files: [ModelRequirements.File]) -> Diagnosis {
        let list = files.map { "models/\($0.folder)/\($0.name)" }.joined(separator: ", ")
        let sources = files.compactMap(\.source)
        return Diagnosis(
            code: "models_missing",
            cause: "ComfyUI does not list \(list): not downloaded, in another folder, or the models volume is not mounted.",
            fix: "Download the files into those folders (ComfyUI sees new files without a restart)"
                + (sources.isEmpty ? "." : ": " + sources.joined(separator: " ")) + "; check the volume mount and extra_model_paths.yaml.")
    }

    static func secretsInconsistent(_ problems: [String]) -> Diagnosis {
        Diagnosis(
            code: "secrets_inconsistent",
            cause: "The secrets manifest does not match the deployed files: " + problems.joined(separator: "; ") + ".",
            fix: "Run `comfygate secrets check` for details, then `comfygate secrets` to render the files again and restart what reads them.")
    }

    static func promptRejected(_ detail: String) -> Diagnosis {
        Diagnosis(
            code: "prompt_rejected",
            cause: "ComfyUI refused the model-free test workflow (EmptyImage → SaveImage): \(detail).",
            fix: "Check that ComfyUI's core nodes load (startup log) and that the caller's role may submit prompts.")
    }

    static func executionFailed(_ detail: String) -> Diagnosis {
        Diagnosis(
            code: "execution_error",
            cause: "The test workflow failed while running: \(detail).",
            fix: "Read ComfyUI's log for the traceback; check the output directory is writable.")
    }

    static let generationTimeout = Diagnosis(
        code: "generation_timeout",
        cause: "The test workflow did not finish in time: the queue is busy with other jobs, or execution events do not reach this websocket.",
        fix: "Look at /queue; retry when it is empty, or with a longer --timeout.")

    static func imageInvalid(_ detail: String) -> Diagnosis {
        Diagnosis(
            code: "image_invalid",
            cause: "The image fetched through /view is not the expected PNG: \(detail).",
            fix: "Check what answers /view (a proxy error page?), and ComfyUI's output directory.")
    }
}

/// Ready-made manifests for known deployments, written by `comfygate secrets init --layout NAME`.
public enum SecretsLayout: String, Sendable, CaseIterable {
    /// The ComfyUI + Qwen deployment of the seed report: a raw token in `.secrets/.env.generated`, its bcrypt hash
    /// in `.secrets/qwen-api-user.token` and in the Docker `.env` as `COMFYUI_BEARER_TOKEN`.
    case comfyUIQwen = "comfyui-qwen"
    /// A deployment made by `comfygate setup`: the same raw token in `.secrets/.env.generated`, its bcrypt hash
    /// imported into the gateway's store (directory `data`) for user `qwen-api`.
    case comfyGate = "comfygate"

    /// The manifest text, with comments explaining each entry.
    public var manifestText: String {
        switch self {
        case .comfyUIQwen:
            """
            # comfygate secrets manifest, written by `comfygate secrets init --layout comfyui-qwen`.
            # One source of truth per secret. `comfygate secrets check` compares every target with it,
            # `comfygate secrets sync` rewrites only what disagrees. Paths are relative to this file.
            # Reference: docs/secrets.md
            version = 1
            bcrypt_cost = 12

            [backups]
            # Every replaced file is first copied here (mode 0600), named after the file and the UTC time.
            keep = 5
            directory = ".secrets/backups"

            [secrets.qwen_api_user]
            kind = "token"
            # Used only when a new value is generated (init without a source, rotate).
            length = 43
            alphabet = "base62"
            # The raw token clients send: the source of truth. An existing value is kept as it is.
            source = { path = ".secrets/.env.generated", format = "dotenv", key = "QWEN_API_USER_TOKEN" }
            # Run after a successful `comfygate secrets rotate`, e.g. to restart the container:
            # after_rotate = "docker compose up -d comfyui-qwen"
            # after_rotate_directory = "docker-configurations/services/comfyui-qwen"

            # The server-side hash: the whole file.
            [[secrets.qwen_api_user.targets]]
            path = ".secrets/qwen-api-user.token"
            format = "file"
            value = "bcrypt"

            # The hash given to the container. Written single-quoted so that Compose does not interpolate its '$'.
            [[secrets.qwen_api_user.targets]]
            path = "docker-configurations/services/comfyui-qwen/.env"
            format = "dotenv"
            key = "COMFYUI_BEARER_TOKEN"
            value = "bcrypt"

            # ComfyUI-Login reads only <ComfyUI root>/login/PASSWORD (hash on line 1, optional username on
            # line 2), and its API token is that hash string itself. If that folder is on a host volume:
            # [[secrets.qwen_api_user.targets]]
            # path = "docker-configurations/services/comfyui-qwen/workspace/ComfyUI/login/PASSWORD"
            # format = "comfyui-login"
            # value = "bcrypt"
            # username = "admin"

            # With ComfyGate in front, the same token can be imported for a gateway user:
            # [[secrets.qwen_api_user.targets]]
            # path = "comfygate-data"
            # format = "comfygate-store"
            # value = "bcrypt"
            # user = "qwen-api"

            """
        case .comfyGate:
            """
            # comfygate secrets manifest, written by `comfygate setup` (layout comfygate).
            # One source of truth per secret. `comfygate secrets check` compares every target with it,
            # `comfygate secrets sync` rewrites only what disagrees. Paths are relative to this file.
            # Reference: docs/secrets.md
            version = 1
            bcrypt_cost = 12

            [backups]
            keep = 5
            directory = ".secrets/backups"

            [secrets.qwen_api_user]
            kind = "token"
            length = 43
            alphabet = "base62"
            # The raw token scripts send (`Authorization: Bearer …`): the source of truth, kept when it exists.
            source = { path = ".secrets/.env.generated", format = "dotenv", key = "QWEN_API_USER_TOKEN" }

            # Its bcrypt hash, imported into the gateway's store for user qwen-api (the gateway keeps no raw token).
            [[secrets.qwen_api_user.targets]]
            path = "data"
            format = "comfygate-store"
            value = "bcrypt"
            user = "qwen-api"
            token_name = "qwen-api-user"

            """
        }
    }
}

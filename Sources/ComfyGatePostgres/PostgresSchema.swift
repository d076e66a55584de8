/// The PostgreSQL schema, as an ordered list of migrations: the same tables as the SQLite store.
///
/// A migration never changes once it has shipped: add a new version instead. Each statement runs on its
/// own (the extended query protocol takes one statement at a time). Dates are `timestamptz` (microsecond
/// precision). A job's outputs and failure are JSON text, as in SQLite. User names are unique regardless of
/// case through a unique index on `lower(name)`.
enum PostgresSchema {
    /// `(version, statements)` pairs, applied in order.
    static let migrations: [(version: Int, statements: [String])] = [
        (
            1,
            [
                """
                CREATE TABLE users (
                    id text PRIMARY KEY,
                    name text NOT NULL,
                    role text NOT NULL,
                    password_hash text,
                    is_disabled boolean NOT NULL DEFAULT false,
                    created_at timestamptz NOT NULL
                )
                """,
                "CREATE UNIQUE INDEX users_lower_name_key ON users (lower(name))",
                """
                CREATE TABLE api_tokens (
                    id text PRIMARY KEY,
                    user_id text NOT NULL,
                    name text NOT NULL,
                    verifier_kind text NOT NULL CHECK (verifier_kind IN ('sha256', 'bcrypt')),
                    verifier text NOT NULL,
                    created_at timestamptz NOT NULL,
                    expires_at timestamptz,
                    last_used_at timestamptz,
                    revoked_at timestamptz
                )
                """,
                "CREATE INDEX api_tokens_user_id ON api_tokens (user_id, created_at)",
                """
                CREATE TABLE sessions (
                    id_digest text PRIMARY KEY,
                    user_id text NOT NULL,
                    created_at timestamptz NOT NULL,
                    last_seen_at timestamptz NOT NULL,
                    expires_at timestamptz NOT NULL
                )
                """,
                "CREATE INDEX sessions_user_id ON sessions (user_id)",
                "CREATE INDEX sessions_expires_at ON sessions (expires_at)",
                """
                CREATE TABLE audit_events (
                    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    time timestamptz NOT NULL,
                    action text NOT NULL,
                    user_name text,
                    client_address text,
                    detail text NOT NULL
                )
                """,
                "CREATE INDEX audit_events_time ON audit_events (time)",
            ]
        ),
        (
            2,
            [
                """
                CREATE TABLE prompts (
                    prompt_id text PRIMARY KEY,
                    user_id text NOT NULL,
                    created_at timestamptz NOT NULL,
                    status text NOT NULL,
                    updated_at timestamptz NOT NULL
                )
                """,
                "CREATE INDEX prompts_user_id ON prompts (user_id, created_at)",
                "CREATE INDEX prompts_created_at ON prompts (created_at)",
                """
                CREATE TABLE comfy_users (
                    user_id text PRIMARY KEY,
                    comfy_user_id text NOT NULL
                )
                """,
            ]
        ),
        (
            3,
            [
                """
                CREATE TABLE jobs (
                    id text PRIMARY KEY,
                    user_id text NOT NULL,
                    source text NOT NULL,
                    state text NOT NULL,
                    workflow text NOT NULL,
                    extra_data text NOT NULL,
                    client_id text,
                    idempotency_key text,
                    request_digest text,
                    metadata text,
                    created_at timestamptz NOT NULL,
                    dispatched_at timestamptz,
                    started_at timestamptz,
                    completed_at timestamptz,
                    expires_at timestamptz,
                    backend text,
                    outputs text NOT NULL,
                    failure text,
                    gpu_seconds double precision NOT NULL,
                    history_entry text
                )
                """,
                "CREATE INDEX jobs_state ON jobs (state, created_at)",
                "CREATE INDEX jobs_user_id ON jobs (user_id, created_at)",
                """
                CREATE UNIQUE INDEX jobs_idempotency_key ON jobs (user_id, idempotency_key)
                WHERE idempotency_key IS NOT NULL
                """,
                "CREATE INDEX jobs_completed_at ON jobs (completed_at)",
                """
                CREATE TABLE assets (
                    id text PRIMARY KEY,
                    user_id text NOT NULL,
                    hash text,
                    size_bytes bigint NOT NULL,
                    content_type text NOT NULL,
                    name text NOT NULL,
                    created_at timestamptz NOT NULL,
                    job_id text,
                    expires_at timestamptz
                )
                """,
                "CREATE INDEX assets_user_id_hash ON assets (user_id, hash)",
                "CREATE INDEX assets_hash ON assets (hash)",
                "CREATE INDEX assets_job_id ON assets (job_id)",
                """
                CREATE TABLE user_quotas (
                    user_id text PRIMARY KEY,
                    max_waiting_jobs bigint,
                    jobs_per_day bigint,
                    gpu_seconds_per_day double precision,
                    max_image_area bigint,
                    weight double precision NOT NULL
                )
                """,
            ]
        ),
        (
            4,
            [
                "ALTER TABLE sessions ADD COLUMN client_address text",
                "ALTER TABLE sessions ADD COLUMN user_agent text",
            ]
        ),
        (
            5,
            [
                "ALTER TABLE jobs ADD COLUMN retryable boolean NOT NULL DEFAULT false",
                "ALTER TABLE jobs ADD COLUMN attempts bigint NOT NULL DEFAULT 0",
            ]
        ),
        (
            6,
            [
                """
                CREATE TABLE backend_controls (
                    name text PRIMARY KEY,
                    drained boolean NOT NULL,
                    changed_at timestamptz NOT NULL,
                    changed_by text
                )
                """,
                """
                CREATE TABLE backend_statuses (
                    name text NOT NULL,
                    replica text NOT NULL,
                    status text NOT NULL,
                    observed_at timestamptz NOT NULL,
                    PRIMARY KEY (name, replica)
                )
                """,
            ]
        ),
        (
            7,
            [
                """
                CREATE TABLE login_failures (
                    key text PRIMARY KEY,
                    failures bigint NOT NULL,
                    last_failure_at timestamptz NOT NULL,
                    locked_until timestamptz NOT NULL
                )
                """,
                "CREATE INDEX login_failures_locked_until ON login_failures (locked_until)",
            ]
        ),
    ]

    /// The `pg_advisory_xact_lock` key that serialises migrations between replicas (ASCII "comfygat").
    static let migrationLockKey: Int64 = 0x636F_6D66_7967_6174

    /// The first half of the two-part `pg_advisory_xact_lock` key that serialises claims on one backend between
    /// replicas (ASCII "jobs"); the second half is `hashtext` of the backend's name. Two-part keys never collide
    /// with one-part keys such as ``migrationLockKey``.
    static let claimLockClass: Int32 = 0x6A6F_6273
}

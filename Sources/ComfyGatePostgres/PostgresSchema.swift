/// The PostgreSQL schema, as an ordered list of migrations: the same tables as the SQLite store.
///
/// A migration never changes once it has shipped: add a new version instead. Each statement runs on its
/// own (the extended query protocol takes one statement at a time). Dates are `timestamptz` (microsecond
/// precision). User names are unique regardless of case through a unique index on `lower(name)`.
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
    ]

    /// The `pg_advisory_xact_lock` key that serialises migrations between replicas (ASCII "comfygat").
    static let migrationLockKey: Int64 = 0x636F_6D66_7967_6174
}

import Foundation
import GRDB

/// The SQLite schema, as an ordered list of migrations.
///
/// A migration never changes once it has shipped: add a new version instead. Dates are stored as `REAL`
/// seconds since 1970 so they sort and compare as numbers. A job's outputs and failure are JSON text
/// (`StoredJSON`): they are always read and written with the job. User names are unique regardless of
/// ASCII case (`COLLATE NOCASE`), matching the PostgreSQL schema's unique index on `lower(name)`.
enum SQLiteSchema {
    /// `(version, SQL)` pairs, applied in order; each SQL string may hold several statements.
    static let migrations: [(version: Int, sql: String)] = [
        (
            1,
            """
            CREATE TABLE users (
                id TEXT NOT NULL PRIMARY KEY,
                name TEXT NOT NULL UNIQUE COLLATE NOCASE,
                role TEXT NOT NULL,
                password_hash TEXT,
                is_disabled INTEGER NOT NULL DEFAULT 0,
                created_at REAL NOT NULL
            );
            CREATE TABLE api_tokens (
                id TEXT NOT NULL PRIMARY KEY,
                user_id TEXT NOT NULL,
                name TEXT NOT NULL,
                verifier_kind TEXT NOT NULL CHECK (verifier_kind IN ('sha256', 'bcrypt')),
                verifier TEXT NOT NULL,
                created_at REAL NOT NULL,
                expires_at REAL,
                last_used_at REAL,
                revoked_at REAL
            );
            CREATE INDEX api_tokens_user_id ON api_tokens (user_id, created_at);
            CREATE TABLE sessions (
                id_digest TEXT NOT NULL PRIMARY KEY,
                user_id TEXT NOT NULL,
                created_at REAL NOT NULL,
                last_seen_at REAL NOT NULL,
                expires_at REAL NOT NULL
            );
            CREATE INDEX sessions_user_id ON sessions (user_id);
            CREATE INDEX sessions_expires_at ON sessions (expires_at);
            CREATE TABLE audit_events (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                time REAL NOT NULL,
                action TEXT NOT NULL,
                user_name TEXT,
                client_address TEXT,
                detail TEXT NOT NULL
            );
            CREATE INDEX audit_events_time ON audit_events (time);
            """
        ),
        (
            2,
            """
            CREATE TABLE prompts (
                prompt_id TEXT NOT NULL PRIMARY KEY,
                user_id TEXT NOT NULL,
                created_at REAL NOT NULL,
                status TEXT NOT NULL,
                updated_at REAL NOT NULL
            );
            CREATE INDEX prompts_user_id ON prompts (user_id, created_at);
            CREATE INDEX prompts_created_at ON prompts (created_at);
            CREATE TABLE comfy_users (
                user_id TEXT NOT NULL PRIMARY KEY,
                comfy_user_id TEXT NOT NULL
            );
            """
        ),
        (
            3,
            """
            CREATE TABLE jobs (
                id TEXT NOT NULL PRIMARY KEY,
                user_id TEXT NOT NULL,
                source TEXT NOT NULL,
                state TEXT NOT NULL,
                workflow TEXT NOT NULL,
                extra_data TEXT NOT NULL,
                client_id TEXT,
                idempotency_key TEXT,
                request_digest TEXT,
                metadata TEXT,
                created_at REAL NOT NULL,
                dispatched_at REAL,
                started_at REAL,
                completed_at REAL,
                expires_at REAL,
                backend TEXT,
                outputs TEXT NOT NULL,
                failure TEXT,
                gpu_seconds REAL NOT NULL,
                history_entry TEXT
            );
            CREATE INDEX jobs_state ON jobs (state, created_at);
            CREATE INDEX jobs_user_id ON jobs (user_id, created_at);
            CREATE UNIQUE INDEX jobs_idempotency_key ON jobs (user_id, idempotency_key)
                WHERE idempotency_key IS NOT NULL;
            CREATE INDEX jobs_completed_at ON jobs (completed_at);
            CREATE TABLE assets (
                id TEXT NOT NULL PRIMARY KEY,
                user_id TEXT NOT NULL,
                hash TEXT,
                size_bytes INTEGER NOT NULL,
                content_type TEXT NOT NULL,
                name TEXT NOT NULL,
                created_at REAL NOT NULL,
                job_id TEXT,
                expires_at REAL
            );
            CREATE INDEX assets_user_id_hash ON assets (user_id, hash);
            CREATE INDEX assets_hash ON assets (hash);
            CREATE INDEX assets_job_id ON assets (job_id);
            CREATE TABLE user_quotas (
                user_id TEXT NOT NULL PRIMARY KEY,
                max_waiting_jobs INTEGER,
                jobs_per_day INTEGER,
                gpu_seconds_per_day REAL,
                max_image_area INTEGER,
                weight REAL NOT NULL
            );
            """
        ),
        (
            4,
            """
            ALTER TABLE sessions ADD COLUMN client_address TEXT;
            ALTER TABLE sessions ADD COLUMN user_agent TEXT;
            """
        ),
        (
            5,
            """
            ALTER TABLE jobs ADD COLUMN retryable INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE jobs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
            """
        ),
        (
            6,
            """
            CREATE TABLE backend_controls (
                name TEXT NOT NULL PRIMARY KEY,
                drained INTEGER NOT NULL,
                changed_at REAL NOT NULL,
                changed_by TEXT
            );
            CREATE TABLE backend_statuses (
                name TEXT NOT NULL,
                replica TEXT NOT NULL,
                status TEXT NOT NULL,
                observed_at REAL NOT NULL,
                PRIMARY KEY (name, replica)
            );
            """
        ),
        (
            7,
            """
            CREATE TABLE login_failures (
                key TEXT NOT NULL PRIMARY KEY,
                failures INTEGER NOT NULL,
                last_failure_at REAL NOT NULL,
                locked_until REAL NOT NULL
            );
            CREATE INDEX login_failures_locked_until ON login_failures (locked_until);
            """
        ),
    ]

    /// Applies the missing migrations.
    ///
    /// Everything happens in one `IMMEDIATE` transaction, which takes SQLite's write lock before reading
    /// which versions are applied: two processes opening a new file at once migrate it exactly once.
    static func migrate(_ writer: any DatabaseWriter) throws {
        try writer.writeWithoutTransaction { db in
            try db.inTransaction(.immediate) {
                try db.execute(
                    sql: """
                        CREATE TABLE IF NOT EXISTS comfygate_migrations (
                            version INTEGER NOT NULL PRIMARY KEY,
                            applied_at REAL NOT NULL
                        )
                        """
                )
                let applied = Set(try Int.fetchAll(db, sql: "SELECT version FROM comfygate_migrations"))
                for migration in migrations where !applied.contains(migration.version) {
                    try db.execute(sql: migration.sql)
                    try db.execute(
                        sql: "INSERT INTO comfygate_migrations (version, applied_at) VALUES (?, ?)",
                        arguments: [migration.version, Date().timeIntervalSince1970]
                    )
                }
                return .commit
            }
        }
    }
}

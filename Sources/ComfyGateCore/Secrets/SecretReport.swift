/// The state of one place a secret lives, as `check` reports it.
public enum SecretStatus: String, Sendable, Codable, CaseIterable {
    /// Present, agrees with the source, mode 0600 at most, not exposed to git.
    case ok = "OK"
    /// Present and well-formed, but does not agree with the source (a hash that does not verify, a different value).
    case drift = "DRIFT"
    /// Not a valid value of its kind (a hash with the wrong length, a `$` Compose would interpolate…).
    case malformed = "MALFORMED"
    /// The file, the key, the user or the token is not there.
    case missing = "MISSING"
    /// Correct, but readable by others (mode wider than 0600) or inside a git work tree without being ignored.
    case unsafe = "UNSAFE"
    /// Cannot be read or is not a regular file (a directory, a symbolic link, a permission error).
    case error = "ERROR"
}

/// One row of `check`: a source or a target, its status and why. Never contains a secret.
public struct LocationReport: Sendable, Codable, Equatable {
    /// `source` or `target`.
    public enum Role: String, Sendable, Codable {
        case source
        case target
    }

    public var secret: String
    public var role: Role
    /// `path`, `path:KEY` or `path (user NAME)`.
    public var location: String
    /// `dotenv`, `file`, `comfyui-login` or `comfygate-store`.
    public var format: String
    /// `raw`, `bcrypt` or `sha256`.
    public var value: String
    public var status: SecretStatus
    /// Why the status is not OK.
    public var reason: String?
    /// First 8 hex digits of the SHA-256 of what is there now.
    public var fingerprint: String?
    /// Further problems (e.g. UNSAFE findings on a target that is also DRIFT).
    public var notes: [String]
}

/// Something `sync` or `rotate` did, or would do with `--dry-run`.
public struct SecretAction: Sendable, Codable, Equatable, CustomStringConvertible {
    public var secret: String
    public var location: String
    /// What happens, e.g. `write bcrypt (was DRIFT)`, `chmod 0600`, `import token`.
    public var summary: String

    public var description: String { "\(secret)  \(location)  \(summary)" }
}

/// The outcome of `sync` or `rotate`.
public struct SecretsRunReport: Sendable, Equatable {
    /// What was done (or planned), in order.
    public var actions: [SecretAction]
    /// Problems that cannot be fixed by writing, e.g. a file inside a git work tree that git does not ignore.
    public var warnings: [String]
}

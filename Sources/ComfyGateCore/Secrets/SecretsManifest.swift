import ComfyGateTOML
public import Foundation

/// The single source of truth for a deployment's secrets: where each raw value lives and every place that needs
/// it, in what form. Written in TOML (see `docs/secrets.md`); relative paths are relative to the manifest's
/// directory.
public struct SecretsManifest: Sendable, Equatable {
    /// The file name `check`, `sync` and `rotate` look for in the current directory.
    public static let defaultFileName = "comfygate-secrets.toml"

    /// The manifest file.
    public var file: URL
    /// The directory relative paths are resolved against.
    public var directory: URL { file.deletingLastPathComponent() }
    /// bcrypt cost of new hashes (default 12).
    public var bcryptCost: Int
    /// How replaced files are kept.
    public var backups: BackupPolicy
    public var secrets: [SecretDefinition]

    /// How many copies of a replaced file are kept, and where.
    public struct BackupPolicy: Sendable, Equatable {
        /// Backups kept per file, newest first; older ones are deleted (default 5).
        public var keep: Int
        /// A folder for every backup, or `nil` to put each one beside its file.
        public var directory: URL?
    }
}

/// Whether a secret is a machine token or a password people type.
public enum SecretKind: String, Sendable, CaseIterable {
    case token
    case password
}

/// One secret: its source of truth and the files that must agree with it.
public struct SecretDefinition: Sendable, Equatable {
    /// The manifest's name for the secret, e.g. `qwen_api_user`.
    public var name: String
    public var kind: SecretKind
    /// Length of generated values (1 to 72).
    public var length: Int
    public var alphabet: SecretAlphabet
    /// Where the raw value lives (a dotenv key or a whole file).
    public var source: SecretLocation
    public var targets: [SecretTarget]
    /// A shell command run after a successful rotation, e.g. `docker compose up -d comfyui-qwen`.
    public var afterRotate: String?
    /// The directory the command runs in (default: the manifest's directory).
    public var afterRotateDirectory: URL?
}

/// A place a secret is written to.
public struct SecretLocation: Sendable, Equatable {
    /// The path as written in the manifest (shown in reports).
    public var path: String
    /// The resolved file, or the data directory of the gateway store.
    public var url: URL
    public var format: SecretFormat

    /// How the location is shown: `path`, `path:KEY` or `store:user`.
    public var label: String {
        switch format {
        case .dotenv(let key): "\(path):\(key)"
        case .file, .comfyUILogin: path
        case .gatewayStore(let user, _): "\(path) (user \(user))"
        }
    }
}

/// How a value sits in its file.
public enum SecretFormat: Sendable, Equatable {
    /// One `KEY=value` line of a Compose-style dotenv file.
    case dotenv(key: String)
    /// The whole file is the value (one line).
    case file
    /// ComfyUI-Login's `login/PASSWORD`: the bcrypt hash on line 1, optionally a username on line 2.
    case comfyUILogin(username: String?)
    /// An imported API token of `user` in the gateway's own store, named `tokenName`.
    case gatewayStore(user: String, tokenName: String)

    /// The manifest spelling.
    public var name: String {
        switch self {
        case .dotenv: "dotenv"
        case .file: "file"
        case .comfyUILogin: "comfyui-login"
        case .gatewayStore: "comfygate-store"
        }
    }
}

/// What a target holds: the secret itself or something derived from it.
public enum SecretEncoding: String, Sendable, CaseIterable {
    /// The raw value.
    case raw
    /// A bcrypt hash (`$2b$`, manifest cost) that verifies against the raw value.
    case bcrypt
    /// The hex SHA-256 digest of the raw value.
    case sha256
}

/// A location and what goes there.
public struct SecretTarget: Sendable, Equatable {
    public var location: SecretLocation
    public var encoding: SecretEncoding
}

extension SecretsManifest {
    /// Reads and validates a manifest file.
    /// - Throws: ``ManifestError`` listing every problem found.
    public init(contentsOf file: URL) throws(ManifestError) {
        let text: String
        do {
            text = try String(contentsOf: file, encoding: .utf8)
        } catch {
            throw ManifestError(problems: ["\(file.path): cannot read the manifest: \(Self.reason(error))"])
        }
        try self.init(text: text, file: file)
    }

    /// Parses and validates manifest text; `file` names it in messages and anchors relative paths.
    /// - Throws: ``ManifestError`` listing every problem found.
    public init(text: String, file: URL) throws(ManifestError) {
        let table: TOMLTable
        do {
            table = try TOML.parse(text)
        } catch {
            throw ManifestError(problems: [error.message(file: file.path)])
        }
        var parser = ManifestParser(file: file)
        let manifest = parser.manifest(from: table)
        guard parser.problems.isEmpty, let manifest else { throw ManifestError(problems: parser.problems) }
        self = manifest
    }

    /// The operating system's words for a Foundation file error (e.g. "Permission denied").
    static func reason(_ error: any Error) -> String {
        let error = error as NSError
        if let underlying = error.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return SecretFile.describe(Int32(underlying.code))
        }
        return error.localizedDescription
    }
}

/// Turns a TOML table into a manifest, collecting every problem instead of stopping at the first.
private struct ManifestParser {
    let file: URL
    var problems: [String] = []

    init(file: URL) { self.file = file }

    var directory: URL { file.deletingLastPathComponent() }

    mutating func problem(_ place: String, _ message: String) {
        problems.append("\(file.path): \(place.isEmpty ? "" : place + ": ")\(message)")
    }

    mutating func unknownKeys(in table: TOMLTable, at place: String, known: Set<String>) {
        for key in table.keys.sorted() where !known.contains(key) {
            problem(place, "unknown key '\(key)' (expected one of: \(known.sorted().joined(separator: ", ")))")
        }
    }

    mutating func string(_ table: TOMLTable, _ key: String, at place: String) -> String? {
        guard let node = table[key] else { return nil }
        guard let value = node.string else {
            problem(place, "'\(key)' must be a string")
            return nil
        }
        return value
    }

    mutating func int(_ table: TOMLTable, _ key: String, at place: String) -> Int? {
        guard let node = table[key] else { return nil }
        guard let value = node.integer.flatMap({ Int(exactly: $0) }) else {
            problem(place, "'\(key)' must be an integer")
            return nil
        }
        return value
    }

    func resolve(_ path: String) -> URL {
        path.hasPrefix("/")
            ? URL(fileURLWithPath: path).standardizedFileURL
            : directory.appendingPathComponent(path).standardizedFileURL
    }

    mutating func manifest(from table: TOMLTable) -> SecretsManifest? {
        unknownKeys(in: table, at: "", known: ["version", "bcrypt_cost", "backups", "secrets"])
        if let version = int(table, "version", at: ""), version != 1 {
            problem("", "unsupported version \(version) (this comfygate reads version 1)")
        }
        let cost = int(table, "bcrypt_cost", at: "") ?? PasswordHasher.defaultCost
        if !(4...31).contains(cost) { problem("", "bcrypt_cost \(cost) is out of range (4 to 31)") }

        var backups = SecretsManifest.BackupPolicy(keep: 5, directory: nil)
        if let node = table["backups"] {
            if let backupTable = node.table {
                unknownKeys(in: backupTable, at: "backups", known: ["keep", "directory"])
                if let keep = int(backupTable, "keep", at: "backups") {
                    if keep < 1 { problem("backups", "keep must be at least 1 (got \(keep))") }
                    backups.keep = keep
                }
                if let path = string(backupTable, "directory", at: "backups") { backups.directory = resolve(path) }
            } else {
                problem("", "'backups' must be a table")
            }
        }

        var secrets: [SecretDefinition] = []
        if let node = table["secrets"], let secretsTable = node.table {
            for name in secretsTable.keys.sorted() {
                guard let secretTable = secretsTable[name]?.table else {
                    problem("secrets.\(name)", "must be a table")
                    continue
                }
                if let secret = secret(named: name, from: secretTable) { secrets.append(secret) }
            }
        } else if table["secrets"] != nil {
            problem("", "'secrets' must be a table of secrets")
        }
        if secrets.isEmpty && problems.isEmpty { problem("", "declares no secrets (add a [secrets.NAME] table)") }
        checkOverlaps(secrets)
        return problems.isEmpty
            ? SecretsManifest(file: file, bcryptCost: cost, backups: backups, secrets: secrets) : nil
    }

    mutating func secret(named name: String, from table: TOMLTable) -> SecretDefinition? {
        let place = "secrets.\(name)"
        let before = problems.count
        if name.isEmpty || !name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }) {
            problem(place, "secret names use letters, digits, '_' and '-'")
        }
        unknownKeys(
            in: table, at: place,
            known: ["kind", "length", "alphabet", "source", "targets", "after_rotate", "after_rotate_directory"])
        var kind = SecretKind.token
        if let text = string(table, "kind", at: place) {
            if let parsed = SecretKind(rawValue: text) {
                kind = parsed
            } else {
                problem(place, "kind '\(text)' is not one of: token, password")
            }
        }
        let length = int(table, "length", at: place) ?? (kind == .token ? 43 : 24)
        if !(16...SecretGenerator.maxLength).contains(length) {
            problem(
                place, "length \(length) is out of range (16 to \(SecretGenerator.maxLength); bcrypt reads 72 bytes)")
        }
        var alphabet = SecretAlphabet.base62
        if let text = string(table, "alphabet", at: place) {
            if let parsed = SecretAlphabet(rawValue: text) {
                alphabet = parsed
            } else {
                problem(
                    place,
                    "alphabet '\(text)' is not one of: \(SecretAlphabet.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            }
        }
        var source: SecretLocation?
        if let node = table["source"] {
            if let sourceTable = node.table {
                source = target(from: sourceTable, at: "\(place).source", isSource: true)?.0
            } else {
                problem(
                    place,
                    "'source' must be a table such as { path = \".secrets/.env\", format = \"dotenv\", key = \"TOKEN\" }"
                )
            }
        } else {
            problem(place, "has no 'source' (where the raw value lives)")
        }
        var targets: [SecretTarget] = []
        if let node = table["targets"] {
            if let array = node.array {
                for (index, element) in array.enumerated() {
                    let targetPlace = "\(place).targets[\(index + 1)]"
                    guard let targetTable = element.table else {
                        problem(targetPlace, "must be a table")
                        continue
                    }
                    if let (location, encoding) = target(from: targetTable, at: targetPlace, isSource: false) {
                        targets.append(SecretTarget(location: location, encoding: encoding))
                    }
                }
            } else {
                problem(place, "'targets' must be an array of tables ([[\(place).targets]])")
            }
        }
        if kind == .password,
            targets.contains(where: { if case .gatewayStore = $0.location.format { true } else { false } })
        {
            problem(place, "a comfygate-store target holds an API token; use kind = \"token\"")
        }
        let afterRotate = string(table, "after_rotate", at: place)
        let afterRotateDirectory = string(table, "after_rotate_directory", at: place).map { resolve($0) }
        guard problems.count == before, let source else { return nil }
        return SecretDefinition(
            name: name, kind: kind, length: length, alphabet: alphabet, source: source, targets: targets,
            afterRotate: afterRotate, afterRotateDirectory: afterRotateDirectory)
    }

    mutating func target(from table: TOMLTable, at place: String, isSource: Bool) -> (SecretLocation, SecretEncoding)? {
        let before = problems.count
        let known: Set<String> =
            isSource
            ? ["path", "format", "key"] : ["path", "format", "key", "value", "username", "user", "token_name"]
        unknownKeys(in: table, at: place, known: known)
        let path = string(table, "path", at: place)
        if path == nil || path?.isEmpty == true { problem(place, "has no 'path'") }
        let formatName = string(table, "format", at: place)
        let key = string(table, "key", at: place)
        var encoding = SecretEncoding.raw
        if !isSource {
            if let text = string(table, "value", at: place) {
                if let parsed = SecretEncoding(rawValue: text) {
                    encoding = parsed
                } else {
                    problem(place, "value '\(text)' is not one of: raw, bcrypt, sha256")
                }
            } else {
                problem(place, "has no 'value' (raw, bcrypt or sha256)")
            }
        }
        var format: SecretFormat?
        switch formatName {
        case "dotenv":
            if let key, !key.isEmpty, key.utf8.allSatisfy({ Self.keyBytes.contains($0) }) {
                format = .dotenv(key: key)
            } else {
                problem(place, "a dotenv target needs 'key', made of letters, digits, '_', '.' and '-'")
            }
        case "file":
            format = .file
        case "comfyui-login" where !isSource:
            if encoding != .bcrypt {
                problem(place, "ComfyUI-Login's PASSWORD file holds a bcrypt hash: use value = \"bcrypt\"")
            }
            let username = string(table, "username", at: place)
            if let username, username.contains(where: \.isNewline) {
                problem(place, "username cannot contain a line break")
            }
            format = .comfyUILogin(username: username)
        case "comfygate-store" where !isSource:
            if encoding != .bcrypt {
                problem(place, "the gateway store keeps imported tokens as bcrypt hashes: use value = \"bcrypt\"")
            }
            let user = string(table, "user", at: place)
            if user == nil { problem(place, "a comfygate-store target needs 'user'") }
            let tokenName = string(table, "token_name", at: place) ?? "secrets"
            do { try APIToken.validate(name: tokenName) } catch { problem(place, "\(error)") }
            format = .gatewayStore(user: user ?? "", tokenName: tokenName)
        case nil:
            problem(place, "has no 'format'")
        case let other?:
            let allowed = isSource ? "dotenv, file" : "dotenv, file, comfyui-login, comfygate-store"
            problem(place, "format '\(other)' is not one of: \(allowed)")
        }
        if key != nil, let format, format.name != "dotenv" { problem(place, "'key' is only for dotenv targets") }
        guard problems.count == before, let path, let format else { return nil }
        return (SecretLocation(path: path, url: resolve(path), format: format), encoding)
    }

    static let keyBytes = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-".utf8)

    /// Two entries writing the same key or whole file would fight over it on every sync.
    mutating func checkOverlaps(_ secrets: [SecretDefinition]) {
        var owners: [String: String] = [:]
        var fileKinds: [String: Set<Bool>] = [:]
        for secret in secrets {
            for location in [secret.source] + secret.targets.map(\.location) {
                let identity: String
                switch location.format {
                case .dotenv(let key): identity = location.url.path + "\u{0}" + key
                case .file, .comfyUILogin: identity = location.url.path
                case .gatewayStore(let user, let name): identity = location.url.path + "\u{0}" + user + "\u{0}" + name
                }
                if let owner = owners[identity] {
                    problem("secrets.\(secret.name)", "\(location.label) is also written by secrets.\(owner)")
                } else {
                    owners[identity] = secret.name
                }
                if case .gatewayStore = location.format { continue }
                let isDotenv = location.format.name == "dotenv"
                if fileKinds[location.url.path, default: []].insert(isDotenv).inserted,
                    fileKinds[location.url.path]!.count == 2
                {
                    problem(
                        "secrets.\(secret.name)", "\(location.path) is used both as a dotenv file and as a whole file")
                }
            }
        }
    }
}

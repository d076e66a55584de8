import Foundation

/// The state of one engine run: the git answers and opened stores it has already paid for.
struct RunContext {
    let engine: SecretsEngine
    let git = GitIgnoreChecker()
    var stores: [String: any GatewayStore] = [:]

    init(engine: SecretsEngine) { self.engine = engine }

    // MARK: Evaluating

    /// Reads a secret's source. The value is returned when the source could be read, even if unsafe.
    func evaluateSource(_ secret: SecretDefinition) -> Evaluation {
        var evaluation = Evaluation(
            report: LocationReport(
                secret: secret.name, role: .source, location: secret.source.label, format: secret.source.format.name,
                value: "raw", status: .ok, reason: nil, fingerprint: nil, notes: []),
            location: secret.source, encoding: .raw)
        let url = secret.source.url
        let found = read(secret.source, into: &evaluation)
        switch found {
        case .value(let value, _):
            evaluation.report.fingerprint = SecretGenerator.fingerprint(value)
            if secret.targets.contains(where: { $0.encoding == .bcrypt }) {
                do { try PasswordHasher.checkSecret(value) } catch {
                    evaluation.report.status = .error
                    evaluation.report.reason = "\(error)"
                    evaluation.blocker = "\(url.path): \(error)"
                    return evaluation
                }
            }
            evaluation.value = value
            addSafetyNotes(to: &evaluation)
        case .missing(let why):
            evaluation.report.status = .missing
            evaluation.report.reason = why
            if case .missing(directoryExists: false)? = evaluation.file { evaluation.blocker = "\(url.path): \(why)" }
        case .malformed(let why):
            evaluation.report.status = .malformed
            evaluation.report.reason = why
        case .failed:
            break
        }
        return evaluation
    }

    /// Compares a target with the raw value (`nil`: only look at the file, as `rotate` does before writing).
    mutating func evaluate(_ target: SecretTarget, of secret: SecretDefinition, raw: String?) async -> Evaluation {
        var evaluation = Evaluation(
            report: LocationReport(
                secret: secret.name, role: .target, location: target.location.label,
                format: target.location.format.name,
                value: target.encoding.rawValue, status: .ok, reason: nil, fingerprint: nil, notes: []),
            location: target.location, encoding: target.encoding)
        if case .gatewayStore(let user, let tokenName) = target.location.format {
            await evaluateStore(user: user, tokenName: tokenName, raw: raw, into: &evaluation)
            return evaluation
        }
        switch read(target.location, into: &evaluation) {
        case .failed:
            return evaluation
        case .missing(let why):
            evaluation.report.status = .missing
            evaluation.report.reason = why
            if case .missing(directoryExists: false)? = evaluation.file {
                evaluation.blocker = "\(target.location.url.path): \(why)"
            }
            return evaluation
        case .malformed(let why):
            evaluation.report.status = .malformed
            evaluation.report.reason = why
        case .value(let value, let quotingProblem):
            evaluation.report.fingerprint = SecretGenerator.fingerprint(value)
            if let raw {
                await compare(value, with: raw, encoding: target.encoding, source: secret.source, into: &evaluation)
            }
            if evaluation.report.status == .ok, let quotingProblem {
                evaluation.report.status = .malformed
                evaluation.report.reason = quotingProblem
            }
            if evaluation.report.status == .ok, case .comfyUILogin(let username?) = target.location.format,
                let bytes = try? SecretFile.read(target.location.url)
            {
                let lines = String(decoding: bytes, as: UTF8.self).split(
                    separator: "\n", omittingEmptySubsequences: false)
                let found = lines.count > 1 ? lines[1].trimmingCharacters(in: .whitespacesAndNewlines) : ""
                if found != username {
                    evaluation.report.status = .drift
                    evaluation.report.reason = "line 2 holds a different username than '\(username)'"
                }
            }
        }
        addSafetyNotes(to: &evaluation)
        return evaluation
    }

    enum Found {
        case value(String, quotingProblem: String?)
        case missing(String)
        case malformed(String)
        /// Status and reason already set (an error).
        case failed
    }

    /// Finds the current value at a file location, setting `evaluation.file` and error statuses.
    private func read(_ location: SecretLocation, into evaluation: inout Evaluation) -> Found {
        let url = location.url
        func fail(_ why: String) -> Found {
            evaluation.report.status = .error
            evaluation.report.reason = why
            evaluation.blocker = "\(url.path): \(why)"
            return .failed
        }
        let file: SecretFile
        do { file = try SecretFile.inspect(url) } catch { return fail(error.description) }
        evaluation.file = file
        switch file {
        case .missing(let directoryExists):
            return .missing(
                directoryExists
                    ? "the file does not exist" : "its directory \(url.deletingLastPathComponent().path) does not exist"
            )
        case .directory: return fail("is a directory, not a file")
        case .symlink: return fail("is a symbolic link; refusing to follow it (point the manifest at the real file)")
        case .other: return fail("is not a regular file")
        case .regular: break
        }
        let bytes: [UInt8]
        do { bytes = try SecretFile.read(url) } catch {
            return fail(error.problems.first.map { String($0.dropFirst(url.path.count + 2)) } ?? "cannot read")
        }
        let text = String(decoding: bytes, as: UTF8.self)
        switch location.format {
        case .dotenv(let key):
            guard let entry = DotenvDocument(bytes: bytes).entry(forKey: key) else {
                return .missing("no \(key)= line")
            }
            if entry.value.isEmpty { return .malformed("\(key) is empty") }
            let problem: String? =
                entry.value.contains("$") && entry.quoting != .single
                ? "the value contains '$' outside single quotes: Docker Compose would interpolate it" : nil
            return .value(entry.value, quotingProblem: problem)
        case .file:
            var content = Substring(text)
            while let last = content.last, last == "\n" || last == "\r\n" || last == "\r" {
                content = content.dropLast()
            }
            if content.isEmpty { return .malformed("the file is empty") }
            let lines = content.split(whereSeparator: \.isNewline).count
            if lines > 1 { return .malformed("the file has \(lines) lines; a whole-file value is one line") }
            return .value(String(content), quotingProblem: nil)
        case .comfyUILogin:
            let first = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let hash = first.trimmingCharacters(in: .whitespacesAndNewlines)
            if hash.isEmpty { return .malformed("line 1 (the bcrypt hash) is empty") }
            return .value(hash, quotingProblem: nil)
        case .gatewayStore:
            return .failed
        }
    }

    private func compare(
        _ value: String, with raw: String, encoding: SecretEncoding, source: SecretLocation,
        into evaluation: inout Evaluation
    ) async {
        switch encoding {
        case .raw:
            if value != raw {
                evaluation.report.status = .drift
                evaluation.report.reason =
                    "differs from \(source.label) (fingerprint \(SecretGenerator.fingerprint(raw)))"
            }
        case .sha256:
            let hexDigits = Set("0123456789abcdefABCDEF")
            guard value.count == 64, value.allSatisfy(hexDigits.contains) else {
                evaluation.report.status = .malformed
                evaluation.report.reason = "not a SHA-256 hex digest (64 hex digits; found \(value.count) characters)"
                return
            }
            if value.lowercased() != TokenFormat.digest(raw) {
                evaluation.report.status = .drift
                evaluation.report.reason = "the digest is not that of \(source.label)"
            }
        case .bcrypt:
            let hash: BcryptHash
            do { hash = try BcryptHash(parsing: value) } catch {
                evaluation.report.status = .malformed
                evaluation.report.reason = error.description
                return
            }
            do {
                if try await engine.hasher.verify(raw, against: hash) { return }
                evaluation.report.status = .drift
                evaluation.report.reason = "the hash does not verify against \(source.label)"
            } catch {
                evaluation.report.status = .error
                evaluation.report.reason = "\(error)"
            }
        }
    }

    /// Mode wider than 0600, or exposed to `git add`: UNSAFE when nothing worse was found, a note otherwise.
    private func addSafetyNotes(to evaluation: inout Evaluation) {
        var notes: [String] = []
        let url = evaluation.location.url
        if case .regular(let mode, _, _)? = evaluation.file, mode & 0o077 != 0 {
            notes.append("mode \(SecretFile.octal(mode)) is wider than 0600")
        }
        if let problem = git.problem(for: url) {
            notes.append(problem)
        } else if engine.manifest.backups.directory == nil,
            let problem = git.problem(for: engine.backupURL(for: url, at: Date(timeIntervalSince1970: 0)))
        {
            notes.append(
                "its backups (\(url.lastPathComponent).*.bak) would be "
                    + problem.replacingOccurrences(of: " (add it to .gitignore)", with: ""))
        }
        if let folder = engine.manifest.backups.directory,
            let problem = git.problem(for: folder.appendingPathComponent("probe.bak"))
        {
            notes.append("the backups folder is " + problem)
        }
        guard !notes.isEmpty else { return }
        if evaluation.report.status == .ok {
            evaluation.report.status = .unsafe
            evaluation.report.reason = notes.removeFirst()
        }
        evaluation.report.notes = notes
    }

    private mutating func evaluateStore(
        user: String, tokenName: String, raw: String?, into evaluation: inout Evaluation
    ) async {
        func fail(_ why: String) {
            evaluation.report.status = .error
            evaluation.report.reason = why
            evaluation.blocker = "\(evaluation.location.label): \(why)"
        }
        let store: any GatewayStore
        do { store = try await openStore(at: evaluation.location.url) } catch { return fail(error.description) }
        do {
            guard let found = try await store.user(named: user) else {
                evaluation.report.status = .missing
                evaluation.report.reason = "user \(user) does not exist in the store"
                evaluation.blocker = "\(evaluation.location.label): user \(user) does not exist (create it first)"
                return
            }
            evaluation.storeUser = found
            let date = engine.now()
            evaluation.storeTokens = try await store.tokens(userID: found.id).filter {
                $0.name == tokenName && $0.isUsable(at: date)
            }
        } catch {
            return fail("the store cannot be read: \(error)")
        }
        let hashes = evaluation.storeTokens.compactMap { token -> BcryptHash? in
            if case .bcrypt(let text) = token.verifier { try? BcryptHash(parsing: text) } else { nil }
        }
        guard !hashes.isEmpty else {
            evaluation.report.status = .missing
            evaluation.report.reason = "no usable imported token named '\(tokenName)'"
            return
        }
        guard let raw else { return }
        for hash in hashes {
            guard (try? await engine.hasher.verify(raw, against: hash)) == true else { continue }
            evaluation.report.fingerprint = SecretGenerator.fingerprint(hash.string)
            return
        }
        evaluation.report.status = .drift
        evaluation.report.reason = "no usable token named '\(tokenName)' verifies against the source"
    }

    mutating func openStore(at url: URL) async throws(SecretsError) -> any GatewayStore {
        if let store = stores[url.path] { return store }
        guard let opener = engine.storeOpener else {
            throw SecretsError("this comfygate cannot open the gateway store")
        }
        do {
            let store = try await opener.openStore(dataDirectory: url)
            stores[url.path] = store
            return store
        } catch {
            throw SecretsError("cannot open the gateway store in \(url.path): \(error)")
        }
    }
}

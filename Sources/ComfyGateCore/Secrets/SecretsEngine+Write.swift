import Foundation

extension RunContext {
    /// Writes a new raw value to a secret's source (rotation).
    func writeSource(_ plan: SecretPlan, dryRun: Bool, into report: inout SecretsRunReport) throws(SecretsError) {
        let location = plan.secret.source
        let summary = "new value (fingerprint \(SecretGenerator.fingerprint(plan.raw)))"
        try writeFile(
            location.url, edits: [(location.format, plan.raw)], summary: summary, secret: plan.secret.name,
            label: location.label, dryRun: dryRun, into: &report)
    }

    /// Brings a secret's targets in line with `plan.raw`: every target when `rewriteAll`, else only those that
    /// are not OK. Modes wider than 0600 are narrowed.
    mutating func apply(
        _ plan: SecretPlan, rewriteAll: Bool, grace: TimeInterval?, dryRun: Bool, into report: inout SecretsRunReport
    ) async throws(SecretsError) {
        let secret = plan.secret
        var groups: [(url: URL, targets: [Evaluation])] = []
        var hashes: [String: String] = [:]
        for evaluation in [plan.source] + plan.targets {
            let status = evaluation.report.status
            let isSource = evaluation.report.role == .source
            let stale = !isSource && (rewriteAll || [.drift, .malformed, .missing].contains(status))
            let findings =
                (status == .unsafe ? [evaluation.report.reason].compactMap { $0 } : []) + evaluation.report.notes
            for note in findings where note.contains("git") {
                let warning = note.hasPrefix("the backups folder") ? note : "\(evaluation.location.label): \(note)"
                if !report.warnings.contains(warning) { report.warnings.append(warning) }
            }
            if case .gatewayStore = evaluation.location.format {
                if stale {
                    try await syncStore(
                        evaluation, secret: secret, raw: plan.raw, grace: rewriteAll ? grace : nil, dryRun: dryRun,
                        into: &report)
                }
                continue
            }
            if stale {
                if let index = groups.firstIndex(where: { $0.url == evaluation.location.url }) {
                    groups[index].targets.append(evaluation)
                } else {
                    groups.append((evaluation.location.url, [evaluation]))
                }
            } else if case .regular(let mode, _, _)? = evaluation.file, mode & 0o077 != 0,
                !(isSource && rewriteAll)
            {
                if !dryRun { try SecretFile.restrict(evaluation.location.url) }
                report.actions.append(
                    SecretAction(
                        secret: secret.name, location: evaluation.location.label,
                        summary: "chmod 0600 (was \(SecretFile.octal(mode)))"))
            }
        }
        for group in groups {
            var edits: [(SecretFormat, String)] = []
            var summaries: [String] = []
            for evaluation in group.targets {
                let value: String
                switch evaluation.encoding {
                case .raw: value = plan.raw
                case .sha256: value = TokenFormat.digest(plan.raw)
                case .bcrypt:
                    if dryRun {
                        value = "$2b$"
                    } else if let cached = hashes[plan.raw] {
                        value = cached
                    } else {
                        value = try await hash(plan.raw)
                        hashes[plan.raw] = value
                    }
                }
                edits.append((evaluation.location.format, value))
                let was =
                    evaluation.report.status == .ok || evaluation.report.status == .unsafe
                    ? "" : " (was \(evaluation.report.status.rawValue))"
                let key = group.targets.count > 1 ? evaluation.location.format.dotenvKey.map { $0 + ": " } ?? "" : ""
                summaries.append("\(key)write \(evaluation.encoding.rawValue)\(was)")
            }
            let label = group.targets.count == 1 ? group.targets[0].location.label : group.targets[0].location.path
            try writeFile(
                group.url, edits: edits, summary: summaries.joined(separator: ", "), secret: secret.name,
                label: label, dryRun: dryRun, into: &report)
        }
    }

    func hash(_ raw: String) async throws(SecretsError) -> String {
        do { return try await engine.hasher.hash(raw, cost: engine.manifest.bcryptCost) } catch {
            throw SecretsError("cannot hash the secret: \(error)")
        }
    }

    /// Applies edits to the current content of `url` and replaces it atomically, with a backup when it existed.
    private func writeFile(
        _ url: URL, edits: [(SecretFormat, String)], summary: String, secret: String, label: String, dryRun: Bool,
        into report: inout SecretsRunReport
    ) throws(SecretsError) {
        let current: [UInt8]?
        switch try SecretFile.inspect(url) {
        case .regular: current = try SecretFile.read(url)
        case .missing(directoryExists: true): current = nil
        case .missing(directoryExists: false):
            throw SecretsError("\(url.path): its directory \(url.deletingLastPathComponent().path) does not exist")
        case .directory: throw SecretsError("\(url.path): is a directory, not a file")
        case .symlink: throw SecretsError("\(url.path): is a symbolic link; refusing to follow it")
        case .other: throw SecretsError("\(url.path): is not a regular file")
        }
        var bytes = current
        for (format, value) in edits { bytes = try Self.render(value, as: format, over: bytes) }
        var backup: (url: URL, bytes: [UInt8])?
        if let current {
            backup = (engine.backupURL(for: url, at: engine.now()), current)
        }
        let backupNote = backup.map { ", backup \($0.url.lastPathComponent)" } ?? ""
        let action = SecretAction(
            secret: secret, location: label, summary: (current == nil ? "create, " : "") + summary + backupNote)
        guard !dryRun, let bytes else { return report.actions.append(action) }
        if let folder = engine.manifest.backups.directory, backup != nil,
            !FileManager.default.fileExists(atPath: folder.path)
        {
            try SecretFile.makeDirectory(folder)
        }
        AtomicFileWriter.removeLeftovers(beside: url)
        try engine.writer.write(bytes, to: url, backup: backup)
        engine.pruneBackups(of: url)
        report.actions.append(action)
    }

    /// The new content of a file holding `value` in `format`, given its current content (nil: a new file).
    static func render(_ value: String, as format: SecretFormat, over current: [UInt8]?) throws(SecretsError) -> [UInt8]
    {
        switch format {
        case .dotenv(let key):
            var document = DotenvDocument(bytes: current ?? [])
            try document.set(value, forKey: key)
            return document.bytes
        case .file:
            guard let current else { return Array((value + "\n").utf8) }
            let ending: [UInt8] = current.suffix(2) == [13, 10] ? [13, 10] : current.last == 10 ? [10] : []
            return Array(value.utf8) + ending
        case .comfyUILogin(let username):
            if let username { return Array("\(value)\n\(username)".utf8) }
            guard let current, let newline = current.firstIndex(of: 10) else { return Array(value.utf8) }
            let lineEnd = newline > 0 && current[newline - 1] == 13 ? newline - 1 : newline
            return Array(value.utf8) + current[lineEnd...]
        case .gatewayStore:
            return current ?? []
        }
    }

    /// Imports a new bcrypt token for the user and retires the previous ones: revoked, or usable until the grace ends.
    private mutating func syncStore(
        _ evaluation: Evaluation, secret: SecretDefinition, raw: String, grace: TimeInterval?, dryRun: Bool,
        into report: inout SecretsRunReport
    ) async throws(SecretsError) {
        guard case .gatewayStore(_, let tokenName) = evaluation.location.format, let user = evaluation.storeUser else {
            return
        }
        let retire = grace.map { "old tokens usable for \(DurationParser.format($0))" } ?? "old tokens revoked"
        let count = evaluation.storeTokens.count
        let action = SecretAction(
            secret: secret.name, location: evaluation.location.label,
            summary: "import token '\(tokenName)'" + (count > 0 ? ", \(retire) (\(count))" : ""))
        guard !dryRun else { return report.actions.append(action) }
        let store = try await openStore(at: evaluation.location.url)
        let date = engine.now()
        let hash = try await hash(raw)
        do {
            try await store.insertToken(
                APIToken(
                    id: TokenFormat.randomID(), userID: user.id, name: tokenName, verifier: .bcrypt(hash),
                    createdAt: date))
            for token in evaluation.storeTokens {
                if let grace {
                    let end = date.addingTimeInterval(grace)
                    if token.expiresAt.map({ $0 > end }) ?? true {
                        try await store.setTokenExpiry(id: token.id, expiresAt: end)
                    }
                } else {
                    _ = try await store.revokeToken(id: token.id, at: date)
                }
            }
        } catch {
            throw SecretsError("\(evaluation.location.label): cannot update the gateway store: \(error)")
        }
        report.actions.append(action)
    }
}

extension SecretFormat {
    var dotenvKey: String? { if case .dotenv(let key) = self { key } else { nil } }
}

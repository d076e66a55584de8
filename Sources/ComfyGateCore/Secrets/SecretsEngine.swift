public import Foundation

/// Checks, synchronises and rotates the secrets a manifest declares.
///
/// Every run reads the source of each secret, then compares each target with it: a raw value by equality, a
/// SHA-256 digest by recomputing it, a bcrypt hash by verifying it. `sync` writes only what does not agree,
/// atomically and with a backup; `rotate` writes a new source value first, then every target.
public struct SecretsEngine: Sendable {
    public let manifest: SecretsManifest
    /// Performs (and, in tests, interrupts) every file replacement.
    public var writer: AtomicFileWriter
    /// Opens the gateway store for `comfygate-store` targets; without it they are reported as errors.
    public var storeOpener: (any GatewayStoreOpener)?
    /// The clock for backup names and token dates.
    public var now: @Sendable () -> Date

    let hasher = PasswordHasher(maxConcurrent: 2, maxWaiting: 1024, maxCost: 31)

    public init(
        manifest: SecretsManifest, writer: AtomicFileWriter = AtomicFileWriter(),
        storeOpener: (any GatewayStoreOpener)? = nil, now: @escaping @Sendable () -> Date = Date.init
    ) {
        self.manifest = manifest
        self.writer = writer
        self.storeOpener = storeOpener
        self.now = now
    }

    // MARK: Check

    /// One report per source and target, in manifest order.
    public func check() async -> [LocationReport] {
        var context = RunContext(engine: self)
        var reports: [LocationReport] = []
        for secret in manifest.secrets {
            let source = context.evaluateSource(secret)
            reports.append(source.report)
            for target in secret.targets {
                var report = await context.evaluate(target, of: secret, raw: source.value).report
                if source.value == nil, report.status == .ok || report.status == .unsafe {
                    report.status = .error
                    report.reason = "cannot be verified: the source is \(source.report.status.rawValue)"
                }
                reports.append(report)
            }
        }
        return reports
    }

    // MARK: Sync

    /// Makes every target agree with its source, writing only what differs, under the manifest's lock.
    /// - Parameter dryRun: plan only: nothing is written, no hash is computed.
    /// - Throws: ``SecretsError`` listing every problem that prevents the sync (nothing is written then), or the
    ///   failure that stopped it midway (files already replaced stay replaced, each one whole).
    public func sync(dryRun: Bool = false, onWait: () -> Void = {}) async throws(SecretsError) -> SecretsRunReport {
        try await SecretsLock.withLock(for: manifest.file, onWait: onWait) { () async throws(SecretsError) in
            sweepLeftovers()
            var context = RunContext(engine: self)
            var plans: [SecretPlan] = []
            var problems: [String] = []
            for secret in manifest.secrets {
                let source = context.evaluateSource(secret)
                guard let raw = source.value, source.report.status == .ok || source.report.status == .unsafe else {
                    problems.append(
                        "\(secret.source.label): the source of \(secret.name) is \(source.report.status.rawValue): "
                            + (source.report.reason ?? "") + " (run `comfygate secrets init`, or fix it)")
                    continue
                }
                var plan = SecretPlan(secret: secret, raw: raw, source: source)
                for target in secret.targets {
                    let evaluation = await context.evaluate(target, of: secret, raw: raw)
                    if let blocker = evaluation.blocker { problems.append(blocker) }
                    plan.targets.append(evaluation)
                }
                plans.append(plan)
            }
            guard problems.isEmpty else { throw SecretsError(problems: problems) }
            var report = SecretsRunReport(actions: [], warnings: [])
            do throws(SecretsError) {
                for plan in plans {
                    try await context.apply(plan, rewriteAll: false, grace: nil, dryRun: dryRun, into: &report)
                }
            } catch {
                throw error.after(report)
            }
            return report
        }
    }

    // MARK: Rotate

    /// Gives each named secret a new random value: the source first, then every target as in ``sync(dryRun:onWait:)``.
    /// In the gateway store, the previous tokens stay usable until `grace` has passed (or are revoked when `grace` is nil).
    /// - Throws: ``SecretsError`` when a secret is unknown or a target cannot be written; nothing is written
    ///   when the problem is found before the first write.
    public func rotate(
        _ names: [String], grace: TimeInterval?, dryRun: Bool = false, onWait: () -> Void = {}
    ) async throws(SecretsError) -> SecretsRunReport {
        let unknown = names.filter { name in !manifest.secrets.contains { $0.name == name } }
        if !unknown.isEmpty {
            throw SecretsError(problems: unknown.map { "\(manifest.file.path): no secret named '\($0)'" })
        }
        return try await SecretsLock.withLock(for: manifest.file, onWait: onWait) { () async throws(SecretsError) in
            sweepLeftovers()
            var context = RunContext(engine: self)
            var plans: [SecretPlan] = []
            var problems: [String] = []
            for secret in manifest.secrets where names.contains(secret.name) {
                let source = context.evaluateSource(secret)
                if let blocker = source.blocker { problems.append(blocker) }
                let raw = SecretGenerator.generate(length: secret.length, alphabet: secret.alphabet)
                var plan = SecretPlan(secret: secret, raw: raw, source: source)
                for target in secret.targets {
                    let evaluation = await context.evaluate(target, of: secret, raw: nil)
                    if let blocker = evaluation.blocker { problems.append(blocker) }
                    plan.targets.append(evaluation)
                }
                plans.append(plan)
            }
            guard problems.isEmpty else { throw SecretsError(problems: problems) }
            var report = SecretsRunReport(actions: [], warnings: [])
            do throws(SecretsError) {
                for plan in plans {
                    try context.writeSource(plan, dryRun: dryRun, into: &report)
                    try await context.apply(plan, rewriteAll: true, grace: grace, dryRun: dryRun, into: &report)
                }
            } catch {
                throw error.after(report)
            }
            return report
        }
    }

    /// Runs a secret's `after_rotate` command with `/bin/sh -c`; returns its exit status and combined output.
    public func runAfterRotate(_ secret: SecretDefinition) throws(SecretsError) -> (status: Int32, output: String)? {
        guard let command = secret.afterRotate else { return nil }
        let child: ChildProcess
        do {
            child = try ChildProcess(
                ["/bin/sh", "-c", command], directory: (secret.afterRotateDirectory ?? manifest.directory).path,
                standardOutput: .pipe, standardError: .sameAsOutput)
        } catch {
            throw SecretsError(
                "after_rotate of \(secret.name): cannot run `\(command)`: \(SecretsManifest.reason(error))")
        }
        let output = child.standardOutput?.readAllBytes() ?? Data()
        return (child.waitForExit(), String(decoding: output, as: UTF8.self))
    }

    // MARK: Backups

    /// Where the backup of `url` made at `date` goes: `<name>.<UTC time>.bak`, beside the file or in the backups folder.
    func backupURL(for url: URL, at date: Date) -> URL {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss.SSS'Z'"
        let stamp = formatter.string(from: date)
        let (directory, base) = backupLocation(for: url)
        var candidate = directory.appendingPathComponent("\(base).\(stamp).bak")
        var counter = 1
        while FileManager.default.fileExists(atPath: candidate.path) {
            candidate = directory.appendingPathComponent("\(base).\(stamp)-\(counter).bak")
            counter += 1
        }
        return candidate
    }

    /// The backup folder for `url` and the base name its backups start with.
    func backupLocation(for url: URL) -> (URL, String) {
        guard let folder = manifest.backups.directory else {
            return (url.deletingLastPathComponent(), url.lastPathComponent)
        }
        let root = manifest.directory.path.hasSuffix("/") ? manifest.directory.path : manifest.directory.path + "/"
        let relative = url.path.hasPrefix(root) ? String(url.path.dropFirst(root.count)) : String(url.path.dropFirst())
        return (folder, relative.replacingOccurrences(of: "/", with: "__"))
    }

    /// The existing backups of `url`, oldest first.
    public func backups(of url: URL) -> [URL] {
        let (directory, base) = backupLocation(for: url)
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory.path) else { return [] }
        return names.filter { name in
            guard name.hasPrefix(base + "."), name.hasSuffix(".bak") else { return false }
            let stamp = name.dropFirst(base.count + 1).dropLast(4)
            let digits = stamp.filter(\.isNumber).count
            return stamp.count >= 20 && stamp.dropFirst(8).first == "T" && stamp.dropFirst(19).first == "Z"
                && digits >= 17
        }
        .map { name -> (stamp: Substring, counter: Int, name: String) in
            let stamp = name.dropFirst(base.count + 1).dropLast(4)
            return (stamp.prefix(20), Int(stamp.dropFirst(21)) ?? 0, name)
        }
        .sorted { ($0.stamp, $0.counter) < ($1.stamp, $1.counter) }
        .map { directory.appendingPathComponent($0.name) }
    }

    /// Deletes temporary files that a killed run left beside the managed files and their backups.
    func sweepLeftovers() {
        for secret in manifest.secrets {
            for location in [secret.source] + secret.targets.map(\.location) {
                if case .gatewayStore = location.format { continue }
                AtomicFileWriter.removeLeftovers(beside: location.url)
                let (directory, base) = backupLocation(for: location.url)
                AtomicFileWriter.removeLeftovers(in: directory, prefix: "." + base + ".")
            }
        }
    }

    func pruneBackups(of url: URL) {
        let existing = backups(of: url)
        for old in existing.dropLast(manifest.backups.keep) { try? FileManager.default.removeItem(at: old) }
    }
}

extension SecretsError {
    /// This failure, followed by what had already been done when it happened.
    func after(_ report: SecretsRunReport) -> SecretsError {
        SecretsError(problems: problems + report.actions.map { "done before the failure: \($0)" })
    }
}

/// A secret, the value its targets must agree with, and what was found at each place.
struct SecretPlan {
    var secret: SecretDefinition
    var raw: String
    var source: Evaluation
    var targets: [Evaluation] = []
}

/// What was found at one place.
struct Evaluation {
    var report: LocationReport
    var location: SecretLocation
    var encoding: SecretEncoding
    /// The raw value, for a source.
    var value: String?
    /// What `lstat` found (nil for store targets).
    var file: SecretFile?
    /// A problem that writing cannot fix and that must stop a sync before anything is written.
    var blocker: String?
    /// Tokens of a store target's user and name that are currently usable.
    var storeTokens: [APIToken] = []
    var storeUser: User?
}

extension SecretsEngine {
    /// Writes the manifest of `layout` into `root` unless one exists there (it is never overwritten), then
    /// adopts every source that already holds a value and generates only the missing ones.
    /// - Returns: the engine for the manifest and one line per thing done, without secrets.
    /// - Throws: ``ManifestError`` when an existing manifest is invalid, ``SecretsError`` when a file cannot be written.
    public static func initialize(
        layout: SecretsLayout, root: URL, writer: AtomicFileWriter = AtomicFileWriter(),
        storeOpener: (any GatewayStoreOpener)? = nil
    ) async throws -> (engine: SecretsEngine, messages: [String]) {
        let file = root.appendingPathComponent(SecretsManifest.defaultFileName)
        var messages: [String] = []
        if FileManager.default.fileExists(atPath: file.path) {
            messages.append("kept the existing manifest \(file.path)")
        } else {
            guard FileManager.default.fileExists(atPath: root.path) else {
                throw SecretsError("\(root.path): the directory does not exist")
            }
            try AtomicFileWriter().write(Array(layout.manifestText.utf8), to: file)
            messages.append("wrote the manifest \(file.path)")
        }
        let engine = SecretsEngine(
            manifest: try SecretsManifest(contentsOf: file), writer: writer, storeOpener: storeOpener)
        messages += try await engine.provideSources()
        return (engine, messages)
    }

    /// Adopts sources that hold a value; generates a value for sources that are missing (creating their
    /// directory with mode 0700 when needed).
    func provideSources() async throws(SecretsError) -> [String] {
        try await SecretsLock.withLock(for: manifest.file) { () async throws(SecretsError) in
            let context = RunContext(engine: self)
            var messages: [String] = []
            for secret in manifest.secrets {
                let source = context.evaluateSource(secret)
                switch source.report.status {
                case .ok, .unsafe:
                    messages.append(
                        "adopted \(secret.name) from \(secret.source.label) (fingerprint \(source.report.fingerprint ?? "?"))"
                    )
                case .missing:
                    let directory = secret.source.url.deletingLastPathComponent()
                    if !FileManager.default.fileExists(atPath: directory.path) {
                        try SecretFile.makeDirectory(directory)
                    }
                    let raw = SecretGenerator.generate(length: secret.length, alphabet: secret.alphabet)
                    var report = SecretsRunReport(actions: [], warnings: [])
                    try context.writeSource(
                        SecretPlan(secret: secret, raw: raw, source: source), dryRun: false, into: &report)
                    messages.append(
                        "generated \(secret.name) in \(secret.source.label) (fingerprint \(SecretGenerator.fingerprint(raw)))"
                    )
                case .drift, .malformed, .error:
                    throw SecretsError("\(secret.source.url.path): \(source.report.reason ?? "unusable source")")
                }
            }
            return messages
        }
    }
}

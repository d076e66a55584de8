public import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The steps of one atomic replacement, in the order they happen. A backup of the old content is made durable
/// before the new content is renamed into place.
public enum WriteStep: String, Sendable, CaseIterable {
    case backupWrite
    case backupSync
    case backupRename
    case backupDirectorySync
    case tempWrite
    case tempSync
    case rename
    case directorySync
}

/// Called before each step with the file the step works on; throwing aborts the write there. Production runs
/// pass no hook; tests use it to interrupt a sync between any two steps.
public typealias WriteStepHook = @Sendable (WriteStep, URL) throws -> Void

/// Replaces files so that a reader (or a crash) sees either the old content or the new, whole: temporary
/// file in the same directory, fsync, rename, fsync of the directory. Files are created with mode 0600.
public struct AtomicFileWriter: Sendable {
    /// Called before every step.
    public var hook: WriteStepHook?

    public init(hook: WriteStepHook? = nil) { self.hook = hook }

    /// Replaces (or creates) `url` with `bytes`. When `backup` is given, the current content is first written
    /// there, durably.
    /// - Throws: ``SecretsError`` naming the file; the target then still holds its old content.
    public func write(_ bytes: [UInt8], to url: URL, backup: (url: URL, bytes: [UInt8])? = nil) throws(SecretsError) {
        if let backup {
            try replace(
                backup.url, with: backup.bytes, steps: (.backupWrite, .backupSync, .backupRename, .backupDirectorySync))
        }
        try replace(url, with: bytes, steps: (.tempWrite, .tempSync, .rename, .directorySync))
    }

    /// The prefix of temporary files beside `url`; leftovers from a killed run are removed by ``removeLeftovers(beside:)``.
    static func temporaryPrefix(for url: URL) -> String { "." + url.lastPathComponent + ".comfygate-tmp-" }

    /// Deletes temporary files a killed run left beside `url`.
    public static func removeLeftovers(beside url: URL) {
        removeLeftovers(in: url.deletingLastPathComponent(), prefix: temporaryPrefix(for: url))
    }

    /// Deletes temporary files in `directory` whose names start with `prefix`.
    static func removeLeftovers(in directory: URL, prefix: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory.path) else { return }
        for name in names where name.hasPrefix(prefix) && name.contains(".comfygate-tmp-") {
            unlink(directory.appendingPathComponent(name).path)
        }
    }

    /// Runs the hook before a step; whatever it throws becomes a ``SecretsError`` naming the step and the file.
    private func step(_ step: WriteStep, _ url: URL) throws(SecretsError) {
        do { try hook?(step, url) } catch {
            throw SecretsError("\(url.path): interrupted before \(step.rawValue): \(error)")
        }
    }

    private func replace(
        _ url: URL, with bytes: [UInt8],
        steps: (write: WriteStep, sync: WriteStep, rename: WriteStep, directorySync: WriteStep)
    ) throws(SecretsError) {
        let directory = url.deletingLastPathComponent()
        let temporary = directory.appendingPathComponent(
            Self.temporaryPrefix(for: url) + SecretGenerator.generate(length: 12, alphabet: .base62))
        var owner: (uid_t, gid_t)?
        if case .regular(_, let uid, let gid)? = try? SecretFile.inspect(url), getuid() == 0 { owner = (uid, gid) }

        try step(steps.write, temporary)
        let descriptor = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        if descriptor < 0 {
            throw SecretsError("\(url.path): cannot create a temporary file beside it: \(SecretFile.describe(errno))")
        }
        var keepTemporary = false
        defer { if !keepTemporary { unlink(temporary.path) } }
        do {
            defer { close(descriptor) }
            fchmod(descriptor, 0o600)
            if let (uid, gid) = owner { _ = fchown(descriptor, uid, gid) }
            var offset = 0
            while offset < bytes.count {
                let count = bytes.withUnsafeBytes {
                    systemWrite(descriptor, $0.baseAddress! + offset, $0.count - offset)
                }
                if count < 0 {
                    if errno == EINTR { continue }
                    throw SecretsError("\(url.path): cannot write: \(SecretFile.describe(errno))")
                }
                offset += count
            }
            try step(steps.sync, temporary)
            if fsync(descriptor) != 0 {
                throw SecretsError("\(url.path): cannot flush to disk: \(SecretFile.describe(errno))")
            }
        }
        try step(steps.rename, url)
        if rename(temporary.path, url.path) != 0 {
            throw SecretsError("\(url.path): cannot replace the file: \(SecretFile.describe(errno))")
        }
        keepTemporary = true
        try step(steps.directorySync, directory)
        let directoryDescriptor = open(directory.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryDescriptor < 0 {
            throw SecretsError(
                "\(directory.path): cannot open the directory to flush it: \(SecretFile.describe(errno))")
        }
        defer { close(directoryDescriptor) }
        if fsync(directoryDescriptor) != 0 {
            throw SecretsError("\(directory.path): cannot flush the directory: \(SecretFile.describe(errno))")
        }
    }
}

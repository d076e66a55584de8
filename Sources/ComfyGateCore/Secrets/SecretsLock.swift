public import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// An exclusive `flock` on a lock file next to the manifest, so that two runs never write the same files at once.
public enum SecretsLock {
    /// The lock file used for `manifest`: `<manifest>.lock`, mode 0600.
    public static func file(for manifest: URL) -> URL {
        manifest.deletingLastPathComponent().appendingPathComponent(manifest.lastPathComponent + ".lock")
    }

    /// Runs `body` holding the lock; `onWait` is called once if another run holds it and this one waits.
    public static func withLock<T>(
        for manifest: URL, onWait: () -> Void = {}, _ body: () async throws(SecretsError) -> T
    ) async throws(SecretsError) -> T {
        let url = file(for: manifest)
        let descriptor = open(url.path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        if descriptor < 0 {
            throw SecretsError("\(url.path): cannot open the lock file: \(SecretFile.describe(errno))")
        }
        defer { close(descriptor) }
        if flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK else {
                throw SecretsError("\(url.path): cannot lock: \(SecretFile.describe(errno))")
            }
            onWait()
            while flock(descriptor, LOCK_EX) != 0 {
                guard errno == EINTR else {
                    throw SecretsError("\(url.path): cannot lock: \(SecretFile.describe(errno))")
                }
            }
        }
        defer { flock(descriptor, LOCK_UN) }
        return try await body()
    }
}

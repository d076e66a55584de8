import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

#if canImport(Glibc)
    let systemRead = Glibc.read
    let systemWrite = Glibc.write
#elseif canImport(Darwin)
    let systemRead = Darwin.read
    let systemWrite = Darwin.write
#endif

/// What is at a path, looked at without following symbolic links.
enum SecretFile: Equatable {
    case missing(directoryExists: Bool)
    case regular(mode: mode_t, owner: uid_t, group: gid_t)
    case directory
    case symlink
    case other

    /// `lstat` of `url`; unreadable parents count as errors.
    static func inspect(_ url: URL) throws(SecretsError) -> SecretFile {
        var info = stat()
        if lstat(url.path, &info) != 0 {
            let code = errno
            if code == ENOENT || code == ENOTDIR {
                var parent = stat()
                let parentPath = url.deletingLastPathComponent().path
                let exists = stat(parentPath, &parent) == 0 && (parent.st_mode & 0o170000) == 0o040000
                return .missing(directoryExists: exists)
            }
            throw SecretsError("\(url.path): cannot inspect: \(describe(code))")
        }
        switch info.st_mode & 0o170000 {
        case 0o100000: return .regular(mode: info.st_mode & 0o7777, owner: info.st_uid, group: info.st_gid)
        case 0o040000: return .directory
        case 0o120000: return .symlink
        default: return .other
        }
    }

    /// The whole file, refusing to follow a symbolic link.
    static func read(_ url: URL) throws(SecretsError) -> [UInt8] {
        let descriptor = open(url.path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        if descriptor < 0 { throw SecretsError("\(url.path): cannot read: \(describe(errno))") }
        defer { close(descriptor) }
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = buffer.withUnsafeMutableBytes { systemRead(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw SecretsError("\(url.path): cannot read: \(describe(errno))")
            }
            if count == 0 { return result }
            result += buffer[0..<count]
        }
    }

    /// Sets a file's permission bits.
    static func restrict(_ url: URL, to mode: mode_t = 0o600) throws(SecretsError) {
        if chmod(url.path, mode) != 0 {
            throw SecretsError("\(url.path): cannot change mode to \(octal(mode)): \(describe(errno))")
        }
    }

    /// Creates a directory (and its parents) with mode 0700.
    static func makeDirectory(_ url: URL) throws(SecretsError) {
        do {
            try FileManager.default.createDirectory(
                at: url, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw SecretsError("\(url.path): cannot create the directory: \(SecretsManifest.reason(error))")
        }
    }

    static func octal(_ mode: mode_t) -> String {
        let digits = String(mode & 0o7777, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    static func describe(_ code: Int32) -> String {
        code == ENOSPC ? "no space left on the device (disk full)" : String(cString: strerror(code))
    }
}

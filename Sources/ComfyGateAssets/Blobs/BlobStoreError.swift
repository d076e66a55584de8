#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Why a blob store operation failed.
public enum BlobStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A system call failed: what was being done, on which path, and the `errno` it set.
    case fileSystem(action: String, path: String, errno: Int32)
    /// The content grew past the writer's size limit; nothing was stored.
    case sizeLimitExceeded(limit: Int)
    /// The content does not have the hash the caller expected; nothing was stored.
    case hashMismatch(expected: BlobHash, actual: BlobHash)
    /// The writer was already finished, aborted or ended by an earlier error.
    case writerClosed

    public var description: String {
        switch self {
        case .fileSystem(let action, let path, let code):
            let reason = code == ENOSPC ? "no space left on the device (disk full)" : String(cString: strerror(code))
            return "\(path): cannot \(action): \(reason)"
        case .sizeLimitExceeded(let limit):
            return "the content is larger than the limit of \(limit) bytes"
        case .hashMismatch(let expected, let actual):
            return "the content's hash is \(actual), not the expected \(expected)"
        case .writerClosed:
            return "the blob writer is already finished or aborted"
        }
    }
}

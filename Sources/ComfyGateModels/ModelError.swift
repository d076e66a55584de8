import Foundation

/// Why a model could not be listed, downloaded or verified; each says what to do.
public enum ModelError: Error, Equatable, CustomStringConvertible {
    /// A name that is neither a file nor a set of the manifest.
    case unknown(String)
    /// The hub answered a status the download cannot go on with.
    case refused(file: String, url: String, status: Int)
    /// The publisher gives no checksum and the manifest pins none: nothing to verify against.
    case noChecksum(file: String)
    /// The downloaded bytes do not have the expected checksum; nothing was left under the file's name.
    case checksumMismatch(file: String, expected: String, actual: String)
    /// The size does not match what the publisher or the manifest says.
    case sizeMismatch(file: String, expected: Int64, actual: Int64)
    /// Not enough free space for what is left to download.
    case diskFull(directory: String, needed: Int64, free: Int64)
    /// The connection kept failing.
    case unreachable(file: String, url: String, reason: String)
    /// A file could not be read or written.
    case fileSystem(path: String, reason: String)

    public var description: String {
        switch self {
        case .unknown(let name):
            return "'\(name)' is neither a model file nor a set (sets: \(ModelManifest.sets.joined(separator: ", "))); see `comfygate models list`"
        case .refused(let file, let url, let status):
            let hint = status == 401 || status == 403
                ? " — the repository may need a token: set HF_TOKEN" : status == 404 ? " — check HF_ENDPOINT and the revision" : ""
            return "\(file): \(url) answered \(status)\(hint)"
        case .noChecksum(let file):
            return "\(file): the publisher sent no X-Linked-Etag and the manifest pins no SHA-256, so it cannot be verified"
        case .checksumMismatch(let file, let expected, let actual):
            return "\(file): SHA-256 is \(actual), expected \(expected); the download was removed, run the command again"
        case .sizeMismatch(let file, let expected, let actual):
            return "\(file): \(actual) bytes, expected \(expected)"
        case .diskFull(let directory, let needed, let free):
            return "\(directory): \(ByteCount.text(needed)) still to download but only \(ByteCount.text(free)) free"
        case .unreachable(let file, let url, let reason):
            return "\(file): \(url) could not be downloaded (\(reason)); run the command again to resume"
        case .fileSystem(let path, let reason):
            return "\(path): \(reason)"
        }
    }
}

/// Byte counts for people: `1.5 GB`, `243 MB`.
public enum ByteCount {
    public static func text(_ bytes: Int64) -> String {
        let units = ["B", "kB", "MB", "GB", "TB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1000, unit < units.count - 1 {
            value /= 1000
            unit += 1
        }
        return unit == 0 ? "\(bytes) B" : String(format: value >= 100 ? "%.0f" : "%.1f", value) + " " + units[unit]
    }
}

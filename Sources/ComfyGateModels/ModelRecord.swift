public import Foundation

/// What `models download` verified, kept in the models directory (`.comfygate-models.json`): each file's SHA-256,
/// size, and where that checksum came from. `models verify` checks the files against it.
public struct ModelRecord: Sendable, Equatable, Codable {
    public struct Entry: Sendable, Equatable, Codable {
        public var sha256: String
        public var size: Int64
        /// Where the checksum came from: the manifest, or the publisher's header and URL.
        public var checksumSource: String
        public var verifiedAt: Date

        enum CodingKeys: String, CodingKey {
            case sha256, size
            case checksumSource = "checksum_source"
            case verifiedAt = "verified_at"
        }
    }

    public static let fileName = ".comfygate-models.json"
    public var version = 1
    /// By path relative to the models directory (`vae/qwen_image_vae.safetensors`).
    public var files: [String: Entry] = [:]

    public init() {}

    /// The record of a models directory; empty when there is none yet.
    public static func load(from directory: URL) throws(ModelError) -> ModelRecord {
        let url = directory.appendingPathComponent(fileName)
        guard FileManager.default.fileExists(atPath: url.path) else { return ModelRecord() }
        do {
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            return try decoder.decode(ModelRecord.self, from: Data(contentsOf: url))
        } catch {
            throw .fileSystem(path: url.path, reason: "unreadable record (\(error)); delete it and run `comfygate models verify`")
        }
    }

    /// Writes the record atomically.
    public func save(to directory: URL) throws(ModelError) {
        let url = directory.appendingPathComponent(Self.fileName)
        do {
            let encoder = JSONEncoder()
            encoder.dateEncodingStrategy = .iso8601
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(self).write(to: url, options: .atomic)
        } catch {
            throw .fileSystem(path: url.path, reason: "cannot write the record: \(error)")
        }
    }
}

import ComfyGateAssets
import ComfyGateCore
import ComfyGateJobs
import ComfyGatePolicy
import Foundation
import HTTPTypes
import Hummingbird
import MultipartKit
import NIOCore
import NIOPosix

/// Users' assets: uploads kept as content-addressed blobs (BLAKE3) with one record per user and name, placed in
/// the input folder (under the owner's folder) of the backend that runs a job using them.
final class AssetLibrary: Sendable {
    let blobs: BlobStore
    private let store: any GatewayStore
    private let placement: InputPlacement
    /// The largest upload taken.
    let maxUploadBytes: Int
    private let threadPool: NIOThreadPool
    /// The largest upload taken by default.
    static let defaultMaxUploadBytes = 256 << 20

    init(placement: InputPlacement, store: any GatewayStore, maxUploadBytes: Int, threadPool: NIOThreadPool = .singleton) {
        self.blobs = placement.blobs
        self.store = store
        self.placement = placement
        self.maxUploadBytes = maxUploadBytes
        self.threadPool = threadPool
    }

    // MARK: Upload

    /// The fields of a `POST /api/v2/assets` form, the file stored as a blob on the way.
    struct Upload {
        var blob: StoredBlob
        var contentType: String?
        var filePath: String?
        var expectedHash: String?
    }

    /// Reads a multipart form as it streams: the small fields kept, the `file` part written to a blob and hashed.
    /// Nothing is stored when the form is malformed, too large, or its content does not have `expected_hash`.
    func receive(_ body: RequestBody, contentType: String) async throws(V2Failure) -> Upload {
        guard let boundary = Self.boundary(of: contentType) else {
            throw V2Failure(status: 422, code: "invalid_request", message: "an upload must be multipart/form-data with a boundary")
        }
        let form = FormReader(boundary: boundary)
        let writer: BlobWriterBox
        do {
            writer = BlobWriterBox(try blobs.beginWrite(sizeLimit: maxUploadBytes))
        } catch {
            throw V2Failure(status: 500, code: "internal_error", message: "the upload could not be stored: \(error)")
        }
        do {
            for try await buffer in body {
                try form.read(buffer)
                let chunk = form.takeFileBytes()
                if !chunk.isEmpty { try await threadPool.runIfActive { try writer.writer.append(chunk) } }
            }
        } catch let failure as V2Failure {
            writer.writer.abort()
            throw failure
        } catch BlobStoreError.sizeLimitExceeded(let limit) {
            throw V2Failure(status: 413, code: "payload_too_large", message: "an asset is at most \(limit) bytes")
        } catch {
            writer.writer.abort()
            throw V2Failure(status: 400, code: "invalid_request", message: "the upload broke off or is not a well-formed form")
        }
        guard form.sawFile, form.isComplete else {
            writer.writer.abort()
            throw V2Failure(status: 422, code: "invalid_request", message: "the form needs a 'file' part and must end with its boundary")
        }
        let fields = form.fields
        var expected: BlobHash?
        if let declared = fields["expected_hash"], !declared.isEmpty {
            guard let hash = BlobHash(declared.lowercased()) else {
                writer.writer.abort()
                throw V2Failure(status: 422, code: "invalid_request", message: "expected_hash must be blake3:<64 hex digits>")
            }
            expected = hash
        }
        do {
            let declared = expected
            let blob = try await threadPool.runIfActive { try writer.writer.finish(expected: declared) }
            return Upload(blob: blob, contentType: fields["content_type"] ?? form.fileContentType, filePath: fields["file_path"] ?? form.fileName,
                expectedHash: expected?.description)
        } catch BlobStoreError.hashMismatch(let expected, let actual) {
            throw V2Failure(
                status: 409, code: "hash_mismatch", message: "the content's hash is \(actual), not the expected \(expected)",
                details: .object([.init(key: "expected", value: .string(expected.description)), .init(key: "actual", value: .string(actual.description))]))
        } catch {
            throw V2Failure(status: 500, code: "internal_error", message: "the upload could not be stored: \(error)")
        }
    }

    /// A record of `blob` for the caller under `name`: the one they already have for the same content and name, or a
    /// new one; and whether the content was new to them.
    func record(blob hash: BlobHash, size: Int, contentType: String, name: String, for userID: String, now: Date) async throws
        -> (asset: Asset, isNewRecord: Bool, isNewBlob: Bool)
    {
        let existing = try await store.assets(userID: userID, hash: hash.description)
        if let same = existing.first(where: { $0.name == name }) { return (same, false, false) }
        let asset = Asset(userID: userID, hash: hash.description, sizeBytes: size, contentType: contentType, name: name, createdAt: now)
        try await store.insertAsset(asset)
        return (asset, true, existing.isEmpty)
    }

    /// Deletes a record; the blob goes once no record uses it.
    func delete(_ asset: Asset) async throws {
        guard try await store.deleteAsset(id: asset.id) else { return }
        guard let hash = asset.hash.flatMap(BlobHash.init), try await store.countAssets(hash: hash.description) == 0 else { return }
        try await threadPool.runIfActive { [blobs] in try blobs.remove(hash) }
    }

    // MARK: ComfyUI's input folder

    /// The name a job's graph gives an asset: a file in the owner's input folder, put in the input folder of the
    /// backend that runs the job before it is handed over. Named by the content's hash, so two uploads of one name
    /// never overwrite each other.
    func inputFile(for asset: Asset, space: UserSpace) throws(V2Failure) -> String {
        guard let hash = asset.hash.flatMap(BlobHash.init), blobs.contains(hash) else {
            throw V2Failure(status: 422, code: "missing_asset", message: "asset \(asset.id) has no content",
                details: .object([.init(key: "missing_ids", value: .array([.string(asset.id)]))]))
        }
        let base = asset.name.split(separator: "/").last.map(String.init) ?? "asset"
        let path = space.folder + "/" + String(hash.hex.prefix(16)) + "_" + Self.safeFileName(base)
        placement.keep(path: path, blob: hash, contentType: asset.contentType)
        return path
    }

    /// A file name ComfyUI keeps as it is: letters, digits, `.`, `-`, `_`; anything else becomes `_`.
    static func safeFileName(_ name: String) -> String {
        let kept = name.unicodeScalars.map { scalar -> Character in
            switch scalar {
            case "A"..."Z", "a"..."z", "0"..."9", ".", "-", "_": Character(scalar)
            default: "_"
            }
        }
        let text = String(kept).trimmingCharacters(in: CharacterSet(charactersIn: "."))
        return text.isEmpty ? "asset" : String(text.prefix(120))
    }

    /// The `boundary` parameter of a `multipart/form-data` content type.
    static func boundary(of contentType: String) -> String? {
        let parts = contentType.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.first?.lowercased() == "multipart/form-data" else { return nil }
        for parameter in parts.dropFirst() where parameter.lowercased().hasPrefix("boundary=") {
            let value = parameter.dropFirst("boundary=".count).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            return value.isEmpty || value.count > 200 ? nil : value
        }
        return nil
    }
}

/// A blob writer handed to the thread pool: used by one upload at a time, in order.
private final class BlobWriterBox: @unchecked Sendable {
    let writer: BlobWriter
    init(_ writer: BlobWriter) { self.writer = writer }
}

/// Reads a `multipart/form-data` body with multipart-kit's parser: small fields kept as text, the `file` part's
/// bytes handed out as they come.
private final class FormReader {
    private let parser: MultipartParser
    private var partHeaders: [String: String] = [:]
    private var partValue: [UInt8] = []
    private var inFile = false
    private var fileBytes: [UInt8] = []
    private var fieldOverflow = false
    private(set) var fields: [String: String] = [:]
    private(set) var sawFile = false
    private(set) var isComplete = false
    private(set) var fileName: String?
    private(set) var fileContentType: String?
    /// The longest text field kept.
    static let fieldLimit = 4096

    init(boundary: String) {
        parser = MultipartParser(boundary: boundary)
        parser.onHeader = { [unowned self] name, value in
            partHeaders[name.lowercased()] = value
            if name.lowercased() == "content-disposition", Self.parameter("name", in: value) == "file" {
                inFile = true
                sawFile = true
                fileName = Self.parameter("filename", in: value)
            }
            if name.lowercased() == "content-type", inFile { fileContentType = value }
        }
        parser.onBody = { [unowned self] buffer in
            if inFile {
                fileBytes += buffer.readableBytesView
            } else if partValue.count + buffer.readableBytes <= Self.fieldLimit {
                partValue += buffer.readableBytesView
            } else {
                fieldOverflow = true
            }
        }
        parser.onPartComplete = { [unowned self] in
            if !inFile, let name = partHeaders["content-disposition"].flatMap({ Self.parameter("name", in: $0) }) {
                fields[name] = String(decoding: partValue, as: UTF8.self)
            }
            if inFile { isComplete = true }
            partHeaders = [:]
            partValue = []
            inFile = false
        }
    }

    func read(_ buffer: ByteBuffer) throws {
        try parser.execute(buffer)
        if fieldOverflow { throw V2Failure(status: 422, code: "invalid_request", message: "a form field is longer than \(Self.fieldLimit) bytes") }
    }

    /// The file bytes read since the last call.
    func takeFileBytes() -> [UInt8] {
        defer { fileBytes = [] }
        return fileBytes
    }

    /// A parameter of a `Content-Disposition` value, quoted or not.
    static func parameter(_ name: String, in value: String) -> String? {
        for part in value.split(separator: ";").dropFirst() {
            let pair = part.split(separator: "=", maxSplits: 1)
            guard pair.count == 2, pair[0].trimmingCharacters(in: .whitespaces).lowercased() == name else { continue }
            var text = pair[1].trimmingCharacters(in: .whitespaces)
            if text.hasPrefix("\""), text.hasSuffix("\""), text.count >= 2 { text = String(text.dropFirst().dropLast()) }
            return text
        }
        return nil
    }
}

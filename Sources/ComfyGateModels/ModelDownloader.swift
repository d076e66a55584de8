public import AsyncHTTPClient
import Crypto
public import Foundation
import NIOCore
import NIOHTTP1

/// What a publisher says of a file before it is downloaded.
public struct PublishedFile: Sendable, Equatable {
    public var size: Int64?
    public var sha256: String?
    /// Where the values came from, for the record.
    public var origin: String
}

/// A file downloaded and verified.
public struct VerifiedFile: Sendable, Equatable {
    public var file: ModelFile
    public var entry: ModelRecord.Entry
    /// Whether it was already there, verified, and nothing was downloaded.
    public var wasPresent: Bool
}

/// Downloads model files resumably: into `<name>.part` with HTTP `Range` from where an earlier attempt (or run)
/// stopped, retrying a broken connection, following redirects itself so the token never leaves the endpoint's
/// host, and moving the file under its name only once its SHA-256 matches.
public struct ModelDownloader: Sendable {
    let client: HTTPClient
    let source: ModelSource
    /// Attempts per file before giving up (each resumes where the last stopped).
    let attempts: Int
    let retryDelay: Duration

    public init(client: HTTPClient, source: ModelSource, attempts: Int = 5, retryDelay: Duration = .seconds(1)) {
        self.client = client
        self.source = source
        self.attempts = attempts
        self.retryDelay = retryDelay
    }

    /// Runs `body` with a client for downloads — no automatic redirects (they are followed here, token-aware), a
    /// minute without a byte allowed — and shuts it down afterwards.
    public static func withClient<T: Sendable>(_ body: (HTTPClient) async throws -> T) async throws -> T {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow, timeout: .init(connect: .seconds(20), read: .seconds(60)))
        configuration.decompression = .disabled
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        do {
            let result = try await body(client)
            try await client.shutdown()
            return result
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    // MARK: What the publisher says

    /// The manifest's pinned size and SHA-256, else the publisher's (`X-Linked-Size`, `X-Linked-Etag` on the
    /// `resolve` URL, else `Content-Length` and a 64-hex `ETag` of the file itself).
    public func published(_ file: ModelFile) async throws(ModelError) -> PublishedFile {
        if let sha = file.sha256, let size = file.size { return PublishedFile(size: size, sha256: sha, origin: "manifest") }
        let url = source.url(of: file)
        var request = HTTPClientRequest(url: url.absoluteString)
        request.method = .HEAD
        authorize(&request, for: url)
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: .seconds(60))
        } catch {
            throw .unreachable(file: file.name, url: url.absoluteString, reason: "\(error)")
        }
        let status = Int(response.status.code)
        guard (200..<400).contains(status) else { throw .refused(file: file.name, url: url.absoluteString, status: status) }
        let headers = response.headers
        let linkedSHA = headers.first(name: "X-Linked-Etag").flatMap(Self.sha256)
        let linkedSize = headers.first(name: "X-Linked-Size").flatMap { Int64($0) }
        let ownSHA = status == 200 ? headers.first(name: "ETag").flatMap(Self.sha256) : nil
        let ownSize = status == 200 ? headers.first(name: "Content-Length").flatMap { Int64($0) } : nil
        let origin = linkedSHA != nil ? "publisher X-Linked-Etag of \(url.absoluteString)" : "publisher ETag of \(url.absoluteString)"
        return PublishedFile(size: file.size ?? linkedSize ?? ownSize, sha256: file.sha256 ?? linkedSHA ?? ownSHA, origin: file.sha256 != nil ? "manifest" : origin)
    }

    /// A SHA-256 from an ETag value: 64 hex digits, quotes and a weak prefix removed; nil for anything else.
    static func sha256(_ etag: String) -> String? {
        var value = etag.trimmingCharacters(in: .whitespaces)
        if value.hasPrefix("W/") { value.removeFirst(2) }
        value = value.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        guard value.count == 64, value.allSatisfy(\.isHexDigit) else { return nil }
        return value.lowercased()
    }

    // MARK: Download

    /// Downloads `file` under `modelsDirectory/<folder>/<name>`, resuming a `.part` left by an earlier run.
    /// - Parameter progress: called with the bytes on disk and the total, as they grow.
    public func download(
        _ file: ModelFile, into modelsDirectory: URL, expected: PublishedFile,
        progress: @escaping @Sendable (_ done: Int64, _ total: Int64?) -> Void
    ) async throws(ModelError) -> VerifiedFile {
        guard let sha256 = expected.sha256 else { throw .noChecksum(file: file.name) }
        let folder = modelsDirectory.appendingPathComponent(file.folder)
        let destination = folder.appendingPathComponent(file.name)
        let part = folder.appendingPathComponent(file.name + ".part")
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw .fileSystem(path: folder.path, reason: "cannot create the folder: \(error)")
        }
        let partFile = try PartFile(url: part)
        defer { partFile.close() }
        progress(partFile.size, expected.size)
        let url = source.url(of: file)
        var failures: [String] = []
        while partFile.size != expected.size || expected.size == nil {
            guard failures.count < attempts else {
                throw .unreachable(file: file.name, url: url.absoluteString, reason: failures.last ?? "no answer")
            }
            do {
                if try await fetch(url, into: partFile, file: file, total: expected.size, progress: progress) { break }
            } catch let error as ModelError {
                throw error
            } catch {
                failures.append("\(error)")
                try? await Task.sleep(for: retryDelay * failures.count)
            }
        }
        let size = partFile.size
        if let expectedSize = expected.size, size != expectedSize {
            partFile.remove()
            throw .sizeMismatch(file: file.name, expected: expectedSize, actual: size)
        }
        let actual = partFile.digest()
        guard actual == sha256 else {
            partFile.remove()
            throw .checksumMismatch(file: file.name, expected: sha256, actual: actual)
        }
        partFile.close()
        do {
            if FileManager.default.fileExists(atPath: destination.path) { try FileManager.default.removeItem(at: destination) }
            try FileManager.default.moveItem(at: part, to: destination)
        } catch {
            throw .fileSystem(path: destination.path, reason: "cannot move the verified download into place: \(error)")
        }
        return VerifiedFile(
            file: file, entry: .init(sha256: actual, size: size, checksumSource: expected.origin, verifiedAt: Date()), wasPresent: false)
    }

    /// One GET from where the part file ends, following redirects; true when the file is complete (the server
    /// has no more bytes), false when the caller should look again. Throws on a broken connection.
    private func fetch(
        _ start: URL, into part: PartFile, file: ModelFile, total: Int64?,
        progress: @escaping @Sendable (Int64, Int64?) -> Void
    ) async throws -> Bool {
        var url = start
        for _ in 0..<8 {
            var request = HTTPClientRequest(url: url.absoluteString)
            authorize(&request, for: url)
            if part.size > 0 { request.headers.add(name: "Range", value: "bytes=\(part.size)-") }
            let response = try await client.execute(request, timeout: .hours(12))
            switch response.status.code {
            case 301, 302, 303, 307, 308:
                guard let location = response.headers.first(name: "Location"), let next = URL(string: location, relativeTo: url)?.absoluteURL
                else { throw ModelError.refused(file: file.name, url: url.absoluteString, status: Int(response.status.code)) }
                url = next
                continue
            case 206:
                break
            case 200:
                // The server sent the whole file: start again from its first byte.
                try part.truncate()
            case 416:
                return true
            case 500..<600:
                throw TransientFailure(description: "\(url.absoluteString) answered \(response.status.code)")
            default:
                throw ModelError.refused(file: file.name, url: url.absoluteString, status: Int(response.status.code))
            }
            for try await buffer in response.body {
                try part.append(buffer)
                progress(part.size, total)
            }
            return total == nil
        }
        throw ModelError.refused(file: file.name, url: start.absoluteString, status: 310)
    }

    private func authorize(_ request: inout HTTPClientRequest, for url: URL) {
        if let token = source.token, source.isEndpoint(url) { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
    }

    /// Hashes a file on disk (for files already there, and `models verify`).
    public static func sha256(of url: URL) throws(ModelError) -> String {
        do {
            let handle = try FileHandle(forReadingFrom: url)
            defer { try? handle.close() }
            var hasher = SHA256()
            while let chunk = try handle.read(upToCount: 4 << 20), !chunk.isEmpty { hasher.update(data: chunk) }
            return hasher.finalize().map { String(format: "%02x", $0) }.joined()
        } catch {
            throw .fileSystem(path: url.path, reason: "cannot read it: \(error)")
        }
    }
}

/// A server error worth another attempt.
struct TransientFailure: Error, CustomStringConvertible {
    let description: String
}

/// A `.part` file being appended to, with the SHA-256 of what it holds kept up to date.
final class PartFile: @unchecked Sendable {
    private let url: URL
    private var handle: FileHandle?
    private var hasher = SHA256()
    private(set) var size: Int64 = 0

    /// Opens (or creates) the part file and hashes what an earlier run left in it.
    init(url: URL) throws(ModelError) {
        self.url = url
        do {
            if !FileManager.default.fileExists(atPath: url.path) {
                guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
                    throw ModelError.fileSystem(path: url.path, reason: "cannot create it")
                }
            }
            let reader = try FileHandle(forReadingFrom: url)
            defer { try? reader.close() }
            while let chunk = try reader.read(upToCount: 4 << 20), !chunk.isEmpty {
                hasher.update(data: chunk)
                size += Int64(chunk.count)
            }
            let handle = try FileHandle(forWritingTo: url)
            try handle.seekToEnd()
            self.handle = handle
        } catch let error as ModelError {
            throw error
        } catch {
            throw .fileSystem(path: url.path, reason: "cannot open it: \(error)")
        }
    }

    func append(_ buffer: ByteBuffer) throws {
        guard let handle else { throw ModelError.fileSystem(path: url.path, reason: "closed") }
        buffer.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
        try handle.write(contentsOf: Data(buffer.readableBytesView))
        size += Int64(buffer.readableBytes)
    }

    func truncate() throws {
        try handle?.truncate(atOffset: 0)
        hasher = SHA256()
        size = 0
    }

    func digest() -> String {
        hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }

    func close() {
        try? handle?.close()
        handle = nil
    }

    func remove() {
        close()
        try? FileManager.default.removeItem(at: url)
    }
}

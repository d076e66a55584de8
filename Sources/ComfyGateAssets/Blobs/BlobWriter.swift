#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

#if canImport(Glibc)
    private let systemWrite = Glibc.write
#elseif canImport(Darwin)
    private let systemWrite = Darwin.write
#endif

/// A blob that was stored, or was already there.
public struct StoredBlob: Sendable, Hashable {
    /// The content's hash, the blob's name in the store.
    public let hash: BlobHash
    /// The content's length in bytes.
    public let size: Int
}

/// One blob being written: content is appended to a temporary file and hashed as it comes, and `finish` moves
/// the file to its place in the store. Made by ``BlobStore/beginWrite(sizeLimit:)``.
///
/// Any error ends the writer and deletes its temporary file, as do `abort` and dropping an unfinished writer.
/// Like the store's, its methods block on file I/O.
public final class BlobWriter {
    /// The most bytes this writer accepts, if limited.
    public let sizeLimit: Int?
    /// The bytes appended so far.
    public private(set) var size = 0
    private let store: BlobStore
    private let temporaryPath: String
    /// The open temporary file; nil once the writer has ended.
    private var descriptor: Int32?
    private var hasher = BLAKE3Hasher()

    init(store: BlobStore, sizeLimit: Int?) throws(BlobStoreError) {
        self.store = store
        self.sizeLimit = sizeLimit
        let name = String(UInt64.random(in: .min ... .max), radix: 16) + ".partial"
        temporaryPath = store.temporaryDirectory + "/" + name
        let descriptor = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        if descriptor < 0 {
            throw .fileSystem(action: "create a temporary file", path: temporaryPath, errno: errno)
        }
        self.descriptor = descriptor
        if fchmod(descriptor, 0o600) != 0 {
            try fail(action: "restrict the temporary file to its owner", path: temporaryPath)
        }
    }

    deinit { discard() }

    /// Appends `bytes` to the content.
    /// - Throws: ``BlobStoreError/sizeLimitExceeded(limit:)`` when the content would grow past `sizeLimit`
    ///   (nothing of `bytes` is written), a file system error, or ``BlobStoreError/writerClosed``.
    public func append(_ bytes: UnsafeRawBufferPointer) throws(BlobStoreError) {
        guard let descriptor else { throw .writerClosed }
        if let sizeLimit, bytes.count > sizeLimit - size {
            discard()
            throw .sizeLimitExceeded(limit: sizeLimit)
        }
        hasher.update(bytes)
        var offset = 0
        while offset < bytes.count {
            let written = systemWrite(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                try fail(action: "write", path: temporaryPath)
            }
            offset += written
        }
        size += bytes.count
    }

    /// Appends `bytes` to the content, in place when the collection has contiguous storage.
    public func append(_ bytes: some Collection<UInt8>) throws(BlobStoreError) {
        let outcome = bytes.withContiguousStorageIfAvailable { buffer in
            Result { () throws(BlobStoreError) in try append(UnsafeRawBufferPointer(buffer)) }
        }
        guard let outcome else { return try append(Array(bytes)) }
        try outcome.get()
    }

    /// Flushes the content to disk and moves it into the store under its hash. When the store already holds
    /// that blob, the new copy is deleted and the stored one kept.
    /// - Parameter expected: the hash the content must have; when it differs nothing is stored and
    ///   ``BlobStoreError/hashMismatch(expected:actual:)`` is thrown.
    public func finish(expected: BlobHash? = nil) throws(BlobStoreError) -> StoredBlob {
        guard let descriptor else { throw .writerClosed }
        if fsync(descriptor) != 0 { try fail(action: "flush to disk", path: temporaryPath) }
        close(descriptor)
        self.descriptor = nil
        var movedIntoPlace = false
        defer { if !movedIntoPlace { unlink(temporaryPath) } }

        let hash = BlobHash(digest: hasher.finalize())
        if let expected, expected != hash { throw .hashMismatch(expected: expected, actual: hash) }
        let shard = store.shardDirectory(of: hash)
        if try BlobStore.makeDirectory(shard) { try BlobStore.syncDirectory(store.blobDirectory) }
        let destination = store.blobPath(of: hash)
        if !store.contains(hash) {
            if rename(temporaryPath, destination) != 0 {
                throw .fileSystem(action: "move the blob into place", path: destination, errno: errno)
            }
            movedIntoPlace = true
            try BlobStore.syncDirectory(shard)
        }
        return StoredBlob(hash: hash, size: size)
    }

    /// Ends the writer and deletes its temporary file; nothing is stored. Does nothing once the writer has ended.
    public func abort() { discard() }

    /// Ends the writer after a failed system call and throws the failure.
    private func fail(action: String, path: String) throws(BlobStoreError) -> Never {
        let code = errno
        discard()
        throw .fileSystem(action: action, path: path, errno: code)
    }

    /// Closes and deletes the temporary file unless the writer has already ended.
    private func discard() {
        guard let descriptor else { return }
        close(descriptor)
        unlink(temporaryPath)
        self.descriptor = nil
    }
}

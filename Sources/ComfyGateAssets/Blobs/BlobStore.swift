public import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Blobs kept as files named by their BLAKE3 hash: `<root>/blake3/<first 2 hex digits>/<64 hex digits>`, with
/// writes under way in `<root>/tmp/`. Directories are created with mode 0700, blob files with mode 0600.
///
/// Every method does blocking file I/O: call them from a thread that may block (a thread pool, or a dedicated
/// thread), not from a task on Swift concurrency's cooperative threads.
public final class BlobStore: Sendable {
    /// The directory holding everything the store writes.
    public let root: URL
    /// The path of the directory where writers keep their content until it is finished.
    let temporaryDirectory: String
    /// The path of the directory where finished blobs live, in one subdirectory per first byte of the hash.
    let blobDirectory: String

    /// The store at `root`, which is created, with its subdirectories, when missing; its parent must exist.
    public init(root: URL) throws(BlobStoreError) {
        self.root = root
        temporaryDirectory = root.appendingPathComponent("tmp").path
        blobDirectory = root.appendingPathComponent("blake3").path
        for directory in [root.path, temporaryDirectory, blobDirectory] {
            _ = try Self.makeDirectory(directory)
        }
    }

    /// Starts a new blob; its content is appended to a temporary file and hashed on the way. Appending more than
    /// `sizeLimit` bytes in total fails.
    public func beginWrite(sizeLimit: Int? = nil) throws(BlobStoreError) -> BlobWriter {
        try BlobWriter(store: self, sizeLimit: sizeLimit)
    }

    /// The file of the blob `hash`, or nil when the store does not hold it.
    public func url(of hash: BlobHash) -> URL? {
        let path = blobPath(of: hash)
        return Self.regularFileSize(atPath: path) == nil ? nil : URL(fileURLWithPath: path)
    }

    /// The size in bytes of the blob `hash`, or nil when the store does not hold it.
    public func size(of hash: BlobHash) -> Int? {
        Self.regularFileSize(atPath: blobPath(of: hash))
    }

    /// Whether the store holds the blob `hash`.
    public func contains(_ hash: BlobHash) -> Bool {
        size(of: hash) != nil
    }

    /// Deletes the blob `hash`; deleting a blob the store does not hold succeeds.
    public func remove(_ hash: BlobHash) throws(BlobStoreError) {
        let path = blobPath(of: hash)
        if unlink(path) != 0 && errno != ENOENT {
            throw .fileSystem(action: "remove the blob", path: path, errno: errno)
        }
    }

    /// Deletes temporary files last modified more than `age` ago, left by writers that were never finished
    /// (after a crash, say), and returns how many it deleted. `age` must exceed the longest write in progress,
    /// whose file would otherwise go too.
    @discardableResult
    public func sweepTemporaryFiles(olderThan age: Duration) -> Int {
        let fileManager = FileManager.default
        guard let names = try? fileManager.contentsOfDirectory(atPath: temporaryDirectory) else { return 0 }
        let seconds = Double(age.components.seconds) + Double(age.components.attoseconds) / 1e18
        let cutoff = Date(timeIntervalSinceNow: -seconds)
        var removed = 0
        for name in names {
            let path = temporaryDirectory + "/" + name
            guard let attributes = try? fileManager.attributesOfItem(atPath: path),
                attributes[.type] as? FileAttributeType == .typeRegular,
                let modified = attributes[.modificationDate] as? Date, modified < cutoff
            else { continue }
            if unlink(path) == 0 { removed += 1 }
        }
        return removed
    }

    /// The path where the blob `hash` is, or would be, stored.
    func blobPath(of hash: BlobHash) -> String {
        shardDirectory(of: hash) + "/" + hash.hex
    }

    /// The path of the subdirectory for blobs whose hash starts like `hash`.
    func shardDirectory(of hash: BlobHash) -> String {
        blobDirectory + "/" + hash.hex.prefix(2)
    }

    /// Creates a directory with mode 0700 unless it exists; returns whether it was created.
    static func makeDirectory(_ path: String) throws(BlobStoreError) -> Bool {
        if mkdir(path, 0o700) == 0 {
            if chmod(path, 0o700) != 0 {
                throw .fileSystem(action: "restrict the directory to its owner", path: path, errno: errno)
            }
            return true
        }
        if errno == EEXIST { return false }
        throw .fileSystem(action: "create the directory", path: path, errno: errno)
    }

    /// Flushes a directory's entries to disk, so that a file renamed into it survives a crash.
    static func syncDirectory(_ path: String) throws(BlobStoreError) {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if descriptor < 0 { throw .fileSystem(action: "open the directory", path: path, errno: errno) }
        defer { close(descriptor) }
        if fsync(descriptor) != 0 { throw .fileSystem(action: "flush the directory", path: path, errno: errno) }
    }

    /// The size of the regular file at `path`, or nil when there is none (symbolic links are not followed).
    private static func regularFileSize(atPath path: String) -> Int? {
        var information = stat()
        guard lstat(path, &information) == 0, information.st_mode & 0o170000 == 0o100000 else { return nil }
        return Int(information.st_size)
    }
}

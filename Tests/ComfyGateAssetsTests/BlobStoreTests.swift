import ComfyGateAssets
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

@Suite struct BlobStoreTests {
    /// Runs `body` with a store in a new temporary directory, deleted afterwards.
    private func withStore(_ body: (BlobStore) throws -> Void) throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("ComfyGateAssetsTests-" + UUID().uuidString)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(at: directory) }
        try body(try BlobStore(root: directory.appendingPathComponent("blobs")))
    }

    private func names(in directory: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).sorted()
    }

    private func temporaryFiles(_ store: BlobStore) -> [String] {
        names(in: store.root.appendingPathComponent("tmp"))
    }

    /// Every blob file in the store, as `<shard>/<name>`.
    private func blobFiles(_ store: BlobStore) -> [String] {
        let blobs = store.root.appendingPathComponent("blake3")
        return names(in: blobs).flatMap { shard in
            names(in: blobs.appendingPathComponent(shard)).map { shard + "/" + $0 }
        }
    }

    /// The permission bits of `url`, read with `stat`.
    private func mode(_ url: URL) -> mode_t? {
        var information = stat()
        return stat(url.path, &information) == 0 ? information.st_mode & 0o777 : nil
    }

    private func write(_ bytes: [UInt8], to store: BlobStore) throws -> StoredBlob {
        let writer = try store.beginWrite()
        try writer.append(bytes)
        return try writer.finish()
    }

    @Test func writtenContentReadsBackUnderItsHash() throws {
        try withStore { store in
            let content = (0..<5000).map { UInt8($0 % 251) }
            let writer = try store.beginWrite()
            try writer.append(content[..<1000])
            try content[1000...].withUnsafeBytes { try writer.append($0) }
            #expect(writer.size == 5000)
            let stored = try writer.finish()

            let expectedHash = BlobHash(digest: BLAKE3Hasher.hash(content))
            #expect(stored.hash == expectedHash)
            #expect(stored.size == 5000)
            let url = try #require(store.url(of: stored.hash))
            #expect(url.path.hasSuffix("/blobs/blake3/\(expectedHash.hex.prefix(2))/\(expectedHash.hex)"))
            #expect(Array(try Data(contentsOf: url)) == content)
            #expect(store.size(of: stored.hash) == 5000)
            #expect(store.contains(stored.hash))
            #expect(temporaryFiles(store).isEmpty)
        }
    }

    @Test func emptyContentIsABlobToo() throws {
        try withStore { store in
            let stored = try store.beginWrite().finish()
            #expect(stored.hash == BlobHash(digest: BLAKE3Hasher.hash([UInt8]())))
            #expect(stored.size == 0)
            #expect(store.size(of: stored.hash) == 0)
        }
    }

    @Test func identicalContentIsStoredOnce() throws {
        try withStore { store in
            let content = Array("the same picture".utf8)
            let first = try write(content, to: store)
            let second = try write(content, to: store)
            #expect(first == second)
            #expect(blobFiles(store) == ["\(first.hash.hex.prefix(2))/\(first.hash.hex)"])
            #expect(temporaryFiles(store).isEmpty)
            #expect(Array(try Data(contentsOf: try #require(store.url(of: first.hash)))) == content)
        }
    }

    @Test func abortDeletesTheTemporaryFileAndEndsTheWriter() throws {
        try withStore { store in
            let writer = try store.beginWrite()
            try writer.append(Array("partial".utf8))
            #expect(temporaryFiles(store).count == 1)
            writer.abort()
            #expect(temporaryFiles(store).isEmpty)
            #expect(throws: BlobStoreError.writerClosed) { try writer.append([1]) }
            #expect(throws: BlobStoreError.writerClosed) { try writer.finish() }
            writer.abort()
            #expect(blobFiles(store).isEmpty)
        }
    }

    @Test func droppingAnUnfinishedWriterDeletesTheTemporaryFile() throws {
        try withStore { store in
            do {
                let writer = try store.beginWrite()
                try writer.append(Array("abandoned".utf8))
                withExtendedLifetime(writer) { #expect(temporaryFiles(store).count == 1) }
            }
            #expect(temporaryFiles(store).isEmpty)
            #expect(blobFiles(store).isEmpty)
        }
    }

    @Test func unexpectedHashIsRefusedAndNothingStored() throws {
        try withStore { store in
            let content = Array("uploaded bytes".utf8)
            let actual = BlobHash(digest: BLAKE3Hasher.hash(content))
            let claimed = BlobHash(digest: BLAKE3Hasher.hash(Array("other bytes".utf8)))
            let writer = try store.beginWrite()
            try writer.append(content)
            #expect(throws: BlobStoreError.hashMismatch(expected: claimed, actual: actual)) {
                try writer.finish(expected: claimed)
            }
            #expect(!store.contains(actual))
            #expect(blobFiles(store).isEmpty)
            #expect(temporaryFiles(store).isEmpty)

            let matching = try store.beginWrite()
            try matching.append(content)
            #expect(try matching.finish(expected: actual).hash == actual)
        }
    }

    @Test func contentPastTheSizeLimitIsRefused() throws {
        try withStore { store in
            let exact = try store.beginWrite(sizeLimit: 10)
            try exact.append([UInt8](repeating: 1, count: 6))
            try exact.append([UInt8](repeating: 2, count: 4))
            #expect(try exact.finish().size == 10)

            let tooLarge = try store.beginWrite(sizeLimit: 10)
            try tooLarge.append([UInt8](repeating: 3, count: 6))
            #expect(throws: BlobStoreError.sizeLimitExceeded(limit: 10)) {
                try tooLarge.append([UInt8](repeating: 4, count: 5))
            }
            #expect(temporaryFiles(store).isEmpty)
            #expect(throws: BlobStoreError.writerClosed) { try tooLarge.finish() }
            #expect(blobFiles(store).count == 1)
        }
    }

    @Test func directoriesAreOwnerOnlyAndBlobsPrivate() throws {
        try withStore { store in
            let writer = try store.beginWrite()
            let temporary = store.root.appendingPathComponent("tmp").appendingPathComponent(
                try #require(temporaryFiles(store).first))
            #expect(mode(temporary) == 0o600)
            try writer.append(Array("private".utf8))
            let stored = try writer.finish()

            let blobs = store.root.appendingPathComponent("blake3")
            for directory in [store.root, store.root.appendingPathComponent("tmp"), blobs] {
                #expect(mode(directory) == 0o700, "\(directory.path)")
            }
            #expect(mode(blobs.appendingPathComponent(String(stored.hash.hex.prefix(2)))) == 0o700)
            #expect(mode(try #require(store.url(of: stored.hash))) == 0o600)
        }
    }

    @Test func removingIsIdempotent() throws {
        try withStore { store in
            let stored = try write(Array("to be removed".utf8), to: store)
            try store.remove(stored.hash)
            #expect(!store.contains(stored.hash))
            #expect(store.url(of: stored.hash) == nil)
            #expect(store.size(of: stored.hash) == nil)
            try store.remove(stored.hash)
            #expect(blobFiles(store).isEmpty)
        }
    }

    @Test func sweepingDeletesOnlyOldTemporaryFiles() throws {
        try withStore { store in
            let temporaryDirectory = store.root.appendingPathComponent("tmp")
            let stale = try store.beginWrite()
            let staleName = try #require(temporaryFiles(store).first)
            try FileManager.default.setAttributes(
                [.modificationDate: Date(timeIntervalSinceNow: -7200)],
                ofItemAtPath: temporaryDirectory.appendingPathComponent(staleName).path)
            let fresh = try store.beginWrite()
            #expect(temporaryFiles(store).count == 2)

            #expect(store.sweepTemporaryFiles(olderThan: .seconds(3600)) == 1)
            #expect(!temporaryFiles(store).contains(staleName))
            #expect(temporaryFiles(store).count == 1)
            #expect(store.sweepTemporaryFiles(olderThan: .seconds(3600)) == 0)
            stale.abort()
            fresh.abort()
            #expect(temporaryFiles(store).isEmpty)
        }
    }

    @Test func aMissingParentDirectoryIsReported() throws {
        let root = FileManager.default.temporaryDirectory
            .appendingPathComponent("ComfyGateAssetsTests-" + UUID().uuidString).appendingPathComponent("blobs")
        #expect(throws: BlobStoreError.fileSystem(action: "create the directory", path: root.path, errno: ENOENT)) {
            try BlobStore(root: root)
        }
    }

    @Test func errorsDescribeThemselves() {
        let hash = BlobHash(digest: [UInt8](repeating: 0, count: 32))
        let other = BlobHash(digest: [UInt8](repeating: 1, count: 32))
        #expect(
            BlobStoreError.fileSystem(action: "write", path: "/blobs/tmp/1.partial", errno: ENOSPC).description
                == "/blobs/tmp/1.partial: cannot write: no space left on the device (disk full)")
        #expect(
            BlobStoreError.sizeLimitExceeded(limit: 10).description
                == "the content is larger than the limit of 10 bytes")
        #expect(
            BlobStoreError.hashMismatch(expected: hash, actual: other).description
                == "the content's hash is \(other), not the expected \(hash)")
        #expect(BlobStoreError.writerClosed.description == "the blob writer is already finished or aborted")
    }
}

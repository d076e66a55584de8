public import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Brings a models directory up to date with a list of files: each one already there and verified is left alone,
/// the others are downloaded a bounded number at a time after a check of the free disk space, and every verified
/// file is recorded (``ModelRecord``).
public struct ModelInstaller: Sendable {
    public let downloader: ModelDownloader
    public let modelsDirectory: URL
    /// Downloads at once.
    public let parallel: Int
    /// Free bytes on the directory's file system (replaceable in tests).
    let freeSpace: @Sendable (URL) -> Int64?

    /// - Parameter freeSpace: free bytes on the directory's file system; by default what `statvfs` says.
    public init(
        downloader: ModelDownloader, modelsDirectory: URL, parallel: Int = 3,
        freeSpace: @escaping @Sendable (URL) -> Int64? = ModelInstaller.freeBytes
    ) {
        self.downloader = downloader
        self.modelsDirectory = modelsDirectory
        self.parallel = max(1, parallel)
        self.freeSpace = freeSpace
    }

    /// What became of one file.
    public enum Outcome: Sendable {
        case verified(VerifiedFile)
        case failed(ModelFile, ModelError)
    }

    /// Installs `files`; one outcome per file, in their order. Throws only when nothing can start (the directory
    /// cannot be made, the record is unreadable, the disk is too small).
    public func install(_ files: [ModelFile], progress: DownloadProgress) async throws(ModelError) -> [Outcome] {
        do {
            try FileManager.default.createDirectory(at: modelsDirectory, withIntermediateDirectories: true)
        } catch {
            throw .fileSystem(path: modelsDirectory.path, reason: "cannot create the models directory: \(error)")
        }
        var record = try ModelRecord.load(from: modelsDirectory)
        var outcomes: [String: Outcome] = [:]
        var toDownload: [(ModelFile, PublishedFile)] = []
        for file in files {
            do {
                let published = try await downloader.published(file)
                if let present = try present(file, published: published, record: record) {
                    outcomes[file.name] = .verified(present)
                    record.files[file.relativePath] = present.entry
                    progress.finished(file.name, size: present.entry.size, note: "already there, verified")
                } else {
                    toDownload.append((file, published))
                    progress.begin(file.name, total: published.size)
                }
            } catch {
                outcomes[file.name] = .failed(file, error)
            }
        }
        try checkSpace(for: toDownload)

        let results = await withTaskGroup(of: Outcome.self) { group in
            var pending = toDownload[...]
            var results: [Outcome] = []
            func startNext() {
                guard let (file, published) = pending.popFirst() else { return }
                group.addTask {
                    do throws(ModelError) {
                        let verified = try await downloader.download(file, into: modelsDirectory, expected: published) { done, total in
                            progress.update(file.name, done: done, total: total)
                        }
                        progress.finished(file.name, size: verified.entry.size, note: "verified")
                        return .verified(verified)
                    } catch {
                        progress.failed(file.name, reason: error.description)
                        return .failed(file, error)
                    }
                }
            }
            for _ in 0..<parallel { startNext() }
            for await outcome in group {
                results.append(outcome)
                startNext()
            }
            return results
        }
        for outcome in results {
            switch outcome {
            case .verified(let verified):
                outcomes[verified.file.name] = outcome
                record.files[verified.file.relativePath] = verified.entry
            case .failed(let file, _):
                outcomes[file.name] = outcome
            }
        }
        try record.save(to: modelsDirectory)
        return files.compactMap { outcomes[$0.name] }
    }

    /// The file as it is, when it is there with the expected checksum (by the record, or hashed now).
    private func present(_ file: ModelFile, published: PublishedFile, record: ModelRecord) throws(ModelError) -> VerifiedFile? {
        let url = modelsDirectory.appendingPathComponent(file.relativePath)
        guard let size = Self.size(of: url) else { return nil }
        if let expected = published.size, expected != size { return nil }
        if let entry = record.files[file.relativePath], entry.size == size, published.sha256 == nil || entry.sha256 == published.sha256 {
            return VerifiedFile(file: file, entry: entry, wasPresent: true)
        }
        guard let sha = published.sha256 else { return nil }
        let actual = try ModelDownloader.sha256(of: url)
        guard actual == sha else { return nil }
        return VerifiedFile(
            file: file, entry: .init(sha256: actual, size: size, checksumSource: published.origin, verifiedAt: Date()), wasPresent: true)
    }

    /// Refuses to start when the sizes known say the disk cannot hold what is left to download.
    private func checkSpace(for downloads: [(ModelFile, PublishedFile)]) throws(ModelError) {
        let needed = bytesLeft(downloads)
        guard needed > 0, let free = freeSpace(modelsDirectory), free < needed else { return }
        throw .diskFull(directory: modelsDirectory.path, needed: needed, free: free)
    }

    /// The disk space installing `files` still needs (asking the hub for their sizes; files already there and
    /// verified need none) and the free space where they go (nil when unknown). Downloads nothing.
    public func space(for files: [ModelFile]) async throws(ModelError) -> (needed: Int64, free: Int64?) {
        let record = try ModelRecord.load(from: modelsDirectory)
        var downloads: [(ModelFile, PublishedFile)] = []
        for file in files {
            let published = try await downloader.published(file)
            if let entry = record.files[file.relativePath], entry.size == published.size,
                Self.size(of: modelsDirectory.appendingPathComponent(file.relativePath)) == entry.size
            {
                continue
            }
            downloads.append((file, published))
        }
        var existing = modelsDirectory
        while !FileManager.default.fileExists(atPath: existing.path), existing.path != "/" {
            existing.deleteLastPathComponent()
        }
        return (bytesLeft(downloads), freeSpace(existing))
    }

    private func bytesLeft(_ downloads: [(ModelFile, PublishedFile)]) -> Int64 {
        var needed: Int64 = 0
        for (file, published) in downloads {
            guard let size = published.size else { continue }
            let part = modelsDirectory.appendingPathComponent(file.relativePath + ".part")
            needed += max(0, size - (Self.size(of: part) ?? 0))
        }
        return needed
    }

    static func size(of url: URL) -> Int64? {
        (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.int64Value
    }

    /// Free bytes for an unprivileged user on the file system holding `url`.
    public static func freeBytes(_ url: URL) -> Int64? {
        var stats = statvfs()
        guard statvfs(url.path, &stats) == 0 else { return nil }
        return Int64(stats.f_bavail) * Int64(stats.f_frsize)
    }
}

/// Download progress, shown as a bar per file with speed and time left on a terminal, or as plain lines every few
/// seconds otherwise (logs, CI). Thread-safe; prints through the function it is given.
public final class DownloadProgress: Sendable {
    private struct Line {
        var done: Int64 = 0
        var total: Int64?
        var startedAt = Date()
        var startBytes: Int64?
        var state = "downloading"
    }

    private struct State {
        var lines: [(String, Line)] = []
        var lastDraw = Date.distantPast
        var drawnLines = 0
    }

    private let state = Mutex(State())
    private let isTerminal: Bool
    private let interval: TimeInterval
    private let write: @Sendable (String) -> Void

    /// - Parameters:
    ///   - isTerminal: redraw bars in place (ANSI) rather than print lines.
    ///   - interval: seconds between two plain progress lines per file (terminals redraw 4 times a second).
    public init(isTerminal: Bool, interval: TimeInterval = 10, write: @escaping @Sendable (String) -> Void) {
        self.isTerminal = isTerminal
        self.interval = isTerminal ? 0.25 : interval
        self.write = write
    }

    func begin(_ name: String, total: Int64?) {
        state.withLock { $0.lines.append((name, Line(total: total))) }
    }

    func update(_ name: String, done: Int64, total: Int64?) {
        let output: String? = state.withLock { state in
            guard let index = state.lines.firstIndex(where: { $0.0 == name }) else { return nil }
            if state.lines[index].1.startBytes == nil { state.lines[index].1.startBytes = done }
            state.lines[index].1.done = done
            state.lines[index].1.total = total
            guard Date().timeIntervalSince(state.lastDraw) >= interval else { return nil }
            state.lastDraw = Date()
            return render(&state)
        }
        if let output { write(output) }
    }

    func finished(_ name: String, size: Int64, note: String) {
        conclude(name, state: "\(note), \(ByteCount.text(size))")
    }

    func failed(_ name: String, reason: String) {
        conclude(name, state: "FAILED: \(reason)")
    }

    private func conclude(_ name: String, state text: String) {
        let output: String = state.withLock { state in
            if let index = state.lines.firstIndex(where: { $0.0 == name }) {
                state.lines[index].1.state = text
            } else {
                var line = Line()
                line.state = text
                state.lines.append((name, line))
            }
            if isTerminal { return render(&state) }
            return "\(name): \(text)\n"
        }
        write(output)
    }

    private func render(_ state: inout State) -> String {
        let now = Date()
        let rows = state.lines.filter { isTerminal || $0.1.state == "downloading" }.map { name, line in
            Self.describe(name: name, line: line, now: now, bar: isTerminal)
        }
        var text = ""
        if isTerminal, state.drawnLines > 0 { text += "\u{1B}[\(state.drawnLines)F" }
        for row in rows { text += row + (isTerminal ? "\u{1B}[K\n" : "\n") }
        if isTerminal { state.drawnLines = rows.count }
        return text
    }

    /// `name  [#####.....]  45%  1.2 GB / 2.7 GB  34 MB/s  44 s left`, or the file's final state.
    private static func describe(name: String, line: Line, now: Date, bar: Bool) -> String {
        guard line.state == "downloading" else { return "\(name): \(line.state)" }
        let elapsed = max(0.001, now.timeIntervalSince(line.startedAt))
        let speed = Double(line.done - (line.startBytes ?? line.done)) / elapsed
        var parts = [name]
        if let total = line.total, total > 0 {
            let fraction = min(1, Double(line.done) / Double(total))
            if bar {
                let filled = Int(fraction * 24)
                parts.append("[" + String(repeating: "#", count: filled) + String(repeating: ".", count: 24 - filled) + "]")
            }
            parts.append(String(format: "%3.0f%%", fraction * 100))
            parts.append("\(ByteCount.text(line.done)) / \(ByteCount.text(total))")
            parts.append(ByteCount.text(Int64(speed)) + "/s")
            if speed > 0 { parts.append(Self.duration(Double(total - line.done) / speed) + " left") }
        } else {
            parts.append(ByteCount.text(line.done))
            parts.append(ByteCount.text(Int64(speed)) + "/s")
        }
        return parts.joined(separator: "  ")
    }

    static func duration(_ seconds: Double) -> String {
        let whole = Int(seconds.rounded())
        if whole >= 3600 { return "\(whole / 3600) h \(whole % 3600 / 60) min" }
        if whole >= 60 { return "\(whole / 60) min \(whole % 60) s" }
        return "\(whole) s"
    }
}

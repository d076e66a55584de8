import ComfyGateAssets
import ComfyGateCore
import ComfyGatePolicy
import Foundation
import NIOPosix
import Synchronization

/// Input files the gateway keeps — Comfy API v2 assets, and with several backends the native uploads too — put in
/// the input folder of whichever backend runs a job that names them, just before it is handed over.
final class InputPlacement: Sendable {
    private struct Kept: Sendable {
        var blob: BlobHash
        var contentType: String
    }

    private struct State: Sendable {
        /// By the name a graph gives the file: `subfolder/name`.
        var kept: [String: Kept] = [:]
        /// `backend` + newline + path, for each file known to be in that backend's input folder.
        var placed: Set<String> = []
    }

    let blobs: BlobStore
    private let threadPool: NIOThreadPool
    private let state = Mutex(State())

    init(blobs: BlobStore, threadPool: NIOThreadPool = .singleton) {
        self.blobs = blobs
        self.threadPool = threadPool
    }

    /// Keeps a file under the name graphs give it; `placedOn` names a backend that already has it.
    func keep(path: String, blob: BlobHash, contentType: String, placedOn backend: String? = nil) {
        state.withLock { state in
            state.kept[path] = Kept(blob: blob, contentType: contentType)
            if let backend { state.placed.insert(backend + "\n" + path) }
        }
    }

    /// Keeps a native upload's content, already in `backend`'s input folder, for the other backends.
    func keep(bytes: [UInt8], path: String, contentType: String, placedOn backend: String) async throws {
        let stored = try await threadPool.runIfActive { [blobs] in
            let writer = try blobs.beginWrite()
            try writer.append(bytes)
            return try writer.finish()
        }
        keep(path: path, blob: stored.hash, contentType: contentType, placedOn: backend)
    }

    /// Puts every kept file the job's graph names into the backend's input folder, where it is not yet.
    func place(for job: Job, on backend: Backend) async throws {
        let kept = state.withLock { $0.kept }
        guard !kept.isEmpty, let graph = try? PolicyJSON(parsing: Array(job.workflow.utf8)) else { return }
        var named: Set<String> = []
        for node in graph.members ?? [] {
            for input in node.value["inputs"]?.members ?? [] {
                guard var value = input.value.stringValue else { continue }
                if value.hasSuffix(" [input]") { value.removeLast(" [input]".count) }
                if kept[value] != nil { named.insert(value) }
            }
        }
        for path in named.sorted() where !state.withLock({ $0.placed.contains(backend.name + "\n" + path) }) {
            guard let file = kept[path], let url = blobs.url(of: file.blob) else { continue }
            let bytes = try await threadPool.runIfActive { try Data(contentsOf: url) }
            let slash = path.lastIndex(of: "/")
            let subfolder = slash.map { String(path[..<$0]) } ?? ""
            let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
            let status = try await backend.calls.uploadInput(Array(bytes), name: name, subfolder: subfolder, contentType: file.contentType)
            guard status == 200 else { throw ComfyUIBackend.UnexpectedAnswer(description: "/upload/image answered \(status)") }
            state.withLock { _ = $0.placed.insert(backend.name + "\n" + path) }
        }
    }

    /// Forgets what is in a backend's input folder (it came back, maybe with an empty disk).
    func forgetPlacements(on backend: String) {
        state.withLock { state in state.placed = state.placed.filter { !$0.hasPrefix(backend + "\n") } }
    }
}

import AsyncHTTPClient
import ComfyGateModels
import ComfyGateTestSupport
import Foundation
import Synchronization
import Testing

/// `comfygate models` against a hub on loopback: parallel verified downloads, the token kept to the hub, resuming
/// after a dropped connection and after a killed run, a wrong checksum never left under the file's name, the disk
/// space check, and progress on a terminal and in plain lines.
@Suite struct ModelDownloadTests {
    /// Three small files standing for a set: a "diffusion model", a "text encoder" and a "VAE".
    static let files: [ModelFile] = [
        ModelFile(name: "dm.safetensors", folder: "diffusion_models", repository: "org/repo", path: "split/dm.safetensors", sets: ["s"], summary: ""),
        ModelFile(name: "te.safetensors", folder: "text_encoders", repository: "org/repo", path: "split/te.safetensors", sets: ["s"], summary: ""),
        ModelFile(name: "vae.safetensors", folder: "vae", repository: "org/repo", path: "split/vae.safetensors", sets: ["s"], summary: ""),
    ]

    static func bytes(_ count: Int, seed: UInt8) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) }
    }

    static func temporaryDirectory() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("comfygate-models-\(UUID().uuidString)")
    }

    static func installer(_ hub: ModelHub, _ client: HTTPClient, into directory: URL, token: String? = nil) -> ModelInstaller {
        ModelInstaller(
            downloader: ModelDownloader(client: client, source: ModelSource(endpoint: hub.endpoint, token: token), retryDelay: .milliseconds(10)),
            modelsDirectory: directory, parallel: 2)
    }

    /// Progress output collected.
    final class Printed: Sendable {
        let text = Mutex("")
        func append(_ more: String) { text.withLock { $0 += more } }
        var value: String { text.withLock { $0 } }
    }

    @Test func aSetIsDownloadedVerifiedAndRecordedAndTheTokenStaysWithTheHub() async throws {
        try await ModelHub.with { hub in
            let contents = Self.files.enumerated().map { Self.bytes(200_000 + $0.offset * 1000, seed: UInt8($0.offset)) }
            for (file, bytes) in zip(Self.files, contents) { hub.publish(bytes, name: file.name) }
            hub.state.withLock { $0.requiredToken = "hf_secret" }
            let directory = Self.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            try await ModelDownloader.withClient { client in
                let printed = Printed()
                let outcomes = try await Self.installer(hub, client, into: directory, token: "hf_secret")
                    .install(Self.files, progress: DownloadProgress(isTerminal: false, interval: 0, write: printed.append))
                for (outcome, bytes) in zip(outcomes, contents) {
                    guard case .verified(let verified) = outcome else { Issue.record("\(outcome)"); continue }
                    let path = directory.appendingPathComponent(verified.file.relativePath)
                    #expect(try Data(contentsOf: path) == Data(bytes))
                    #expect(verified.entry.sha256 == ModelHub.sha256(bytes))
                    #expect(verified.entry.checksumSource.hasPrefix("publisher X-Linked-Etag of http://127.0.0.1:\(hub.hubPort)/org/repo/resolve/main/"))
                    #expect(!FileManager.default.fileExists(atPath: path.path + ".part"))
                }
                let record = try ModelRecord.load(from: directory)
                #expect(Set(record.files.keys) == Set(Self.files.map(\.relativePath)))
                let (authorizations, cdn) = hub.state.withLock { ($0.resolveAuthorizations, $0.cdnRequests) }
                #expect(authorizations.allSatisfy { $0 == "Bearer hf_secret" } && !authorizations.isEmpty)
                #expect(cdn.count == 3 && cdn.allSatisfy { !$0.hadAuthorization }, "the token never goes to the host a download is sent on to")
                #expect(printed.value.contains("dm.safetensors: verified, 200 kB\n"))
                #expect(printed.value.contains("%"), "plain progress lines while downloading: \(printed.value)")

                // A second run finds everything there and downloads nothing.
                let again = try await Self.installer(hub, client, into: directory, token: "hf_secret")
                    .install(Self.files, progress: DownloadProgress(isTerminal: false, write: { _ in }))
                #expect(again.allSatisfy { if case .verified(let file) = $0 { file.wasPresent } else { false } })
                #expect(hub.state.withLock { $0.cdnRequests.count } == 3)
            }
        }
    }

    @Test func aDroppedConnectionAndAKilledRunBothResumeWithRange() async throws {
        try await ModelHub.with { hub in
            let file = Self.files[0]
            let bytes = Self.bytes(300_000, seed: 7)
            hub.publish(bytes, name: file.name)
            hub.state.withLock { $0.dropAfter[file.name] = [100_000] }
            let directory = Self.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            try await ModelDownloader.withClient { client in
                let outcome = try await Self.installer(hub, client, into: directory).install([file], progress: DownloadProgress(isTerminal: false, write: { _ in }))
                guard case .verified = outcome.first else { Issue.record("\(outcome)"); return }
                let ranges = hub.state.withLock { $0.cdnRequests.map(\.range) }
                #expect(ranges.count == 2 && ranges[0] == nil)
                // The second asks for the rest, from the last byte that reached the client (at most where the server stopped).
                #expect(ranges[1].flatMap { Int($0.dropFirst(6).dropLast()) }.map { $0 > 0 && $0 <= 100_000 } == true, "\(ranges)")
                #expect(try Data(contentsOf: directory.appendingPathComponent(file.relativePath)) == Data(bytes))

                // A run killed part way left a .part: the next one asks only for the rest.
                let other = Self.files[1]
                hub.publish(bytes, name: other.name)
                let folder = directory.appendingPathComponent(other.folder)
                try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
                try Data(bytes[..<123_456]).write(to: folder.appendingPathComponent(other.name + ".part"))
                let resumed = try await Self.installer(hub, client, into: directory).install([other], progress: DownloadProgress(isTerminal: false, write: { _ in }))
                guard case .verified = resumed.first else { Issue.record("\(resumed)"); return }
                #expect(hub.state.withLock { $0.cdnRequests.last?.range } == "bytes=123456-")
                #expect(try Data(contentsOf: folder.appendingPathComponent(other.name)) == Data(bytes))
            }
        }
    }

    @Test func aThrottledDownloadShowsABarWithSpeedAndTimeLeftOnATerminal() async throws {
        try await ModelHub.with { hub in
            let file = Self.files[1]
            hub.publish(Self.bytes(400_000, seed: 5), name: file.name)
            hub.state.withLock { $0.chunkPause = .milliseconds(40) }  // about 1 s for the file: several redraws
            let directory = Self.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            try await ModelDownloader.withClient { client in
                let printed = Printed()
                let outcome = try await Self.installer(hub, client, into: directory)
                    .install([file], progress: DownloadProgress(isTerminal: true, write: printed.append))
                guard case .verified = outcome.first else { Issue.record("\(outcome)"); return }
                let text = printed.value
                #expect(text.contains("te.safetensors  [") && text.contains("kB/s") && text.contains(" left"), "\(text)")
                #expect(text.contains("\u{1B}[1F"), "the bar is redrawn in place")
                #expect(text.hasSuffix("te.safetensors: verified, 400 kB\u{1B}[K\n"))
            }
        }
    }

    @Test func aWrongChecksumIsNeverLeftUnderTheFilesName() async throws {
        try await ModelHub.with { hub in
            let file = Self.files[2]
            hub.publish(Self.bytes(50_000, seed: 3), name: file.name, wrongChecksum: true)
            let directory = Self.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            try await ModelDownloader.withClient { client in
                let outcome = try await Self.installer(hub, client, into: directory).install([file], progress: DownloadProgress(isTerminal: false, write: { _ in }))
                guard case .failed(_, .checksumMismatch(let name, _, _)) = outcome.first else { Issue.record("\(outcome)"); return }
                #expect(name == file.name)
                let path = directory.appendingPathComponent(file.relativePath).path
                #expect(!FileManager.default.fileExists(atPath: path) && !FileManager.default.fileExists(atPath: path + ".part"))
                #expect(try ModelRecord.load(from: directory).files.isEmpty)
            }
        }
    }

    @Test func refusalsSayWhatToDo() async throws {
        try await ModelHub.with { hub in
            hub.publish(Self.bytes(10, seed: 1), name: Self.files[0].name)
            hub.state.withLock { $0.requiredToken = "hf_secret" }
            let directory = Self.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            try await ModelDownloader.withClient { client in
                let outcome = try await Self.installer(hub, client, into: directory).install([Self.files[0]], progress: DownloadProgress(isTerminal: false, write: { _ in }))
                guard case .failed(_, let error) = outcome.first else { Issue.record("\(outcome)"); return }
                #expect(error.description.contains("answered 401") && error.description.contains("HF_TOKEN"))

                // Not enough room: nothing starts.
                hub.state.withLock { $0.requiredToken = nil }
                let cramped = ModelInstaller(
                    downloader: ModelDownloader(client: client, source: ModelSource(endpoint: hub.endpoint)), modelsDirectory: directory,
                    freeSpace: { _ in 5 })
                await #expect(throws: ModelError.diskFull(directory: directory.path, needed: 10, free: 5)) {
                    _ = try await cramped.install([Self.files[0]], progress: DownloadProgress(isTerminal: false, write: { _ in }))
                }
                #expect(hub.state.withLock { $0.cdnRequests.isEmpty })
            }
        }
    }

    @Test func namesAndSetsSelectFromTheManifest() throws {
        #expect(try ModelManifest.select([]).map(\.name) == [
            "qwen_image_edit_fp8_e4m3fn.safetensors", "qwen_2.5_vl_7b_fp8_scaled.safetensors", "qwen_image_vae.safetensors",
        ])
        #expect(try ModelManifest.select(["qwen-image", "lightning"]).map(\.folder) == ["diffusion_models", "text_encoders", "vae", "loras"])
        #expect(throws: ModelError.unknown("sdxl")) { try ModelManifest.select(["sdxl"]) }
        let source = ModelSource(environment: ["HF_ENDPOINT": "https://mirror.example/", "HF_TOKEN": " hf_x \n"])
        #expect(source?.token == "hf_x")
        #expect(source?.url(of: ModelManifest.files[3]).absoluteString
            == "https://mirror.example/Comfy-Org/Qwen-Image_ComfyUI/resolve/main/split_files/vae/qwen_image_vae.safetensors")
        #expect(ModelSource(environment: ["HF_ENDPOINT": "ftp://x"]) == nil)
        #expect(ModelSource(environment: [:])?.endpoint == ModelSource.defaultEndpoint)
    }
}

import ComfyGateTestSupport
import Foundation

@testable import ComfyGateCore

/// A temporary copy of the seed deployment with the comfyui-qwen manifest (bcrypt cost 4 to keep tests fast).
struct SeedTree {
    let root: URL
    let state: SeedSecretsFixture.State

    init(_ state: SeedSecretsFixture.State, manifestEdit: (String) -> String = { $0 }) throws {
        self.state = state
        root = try SeedSecretsFixture.temporaryDirectory()
        try SeedSecretsFixture.write(state, to: root)
        let text = manifestEdit(
            SecretsLayout.comfyUIQwen.manifestText.replacingOccurrences(of: "bcrypt_cost = 12", with: "bcrypt_cost = 4")
        )
        try Data(text.utf8).write(to: manifestURL)
    }

    var manifestURL: URL { root.appendingPathComponent(SecretsManifest.defaultFileName) }

    func url(_ path: String) -> URL { root.appendingPathComponent(path) }

    func bytes(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: url(path))) }

    func text(_ path: String) throws -> String { String(decoding: try bytes(path), as: UTF8.self) }

    func engine(writer: AtomicFileWriter = AtomicFileWriter(), store: (any GatewayStoreOpener)? = nil) throws
        -> SecretsEngine
    {
        SecretsEngine(manifest: try SecretsManifest(contentsOf: manifestURL), writer: writer, storeOpener: store)
    }

    /// The bcrypt hash on line 66 of the Docker `.env`.
    func dockerHash() throws -> String? {
        DotenvDocument(bytes: try bytes(SeedSecretsFixture.dockerEnvPath)).entry(forKey: "COMFYUI_BEARER_TOKEN")?.value
    }

    func serverHash() throws -> String { try text(SeedSecretsFixture.serverHashPath).trimmingCharacters(in: .newlines) }

    func rawToken() throws -> String? {
        DotenvDocument(bytes: try bytes(SeedSecretsFixture.sourcePath)).entry(forKey: "QWEN_API_USER_TOKEN")?.value
    }

    func mode(_ path: String) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: url(path).path)[.posixPermissions] as? Int) ?? -1
    }

    /// Every backup file under the tree.
    func backups() -> [URL] {
        let enumerator = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil)
        return (enumerator?.allObjects as? [URL] ?? []).filter { $0.lastPathComponent.hasSuffix(".bak") }
    }

    /// Temporary files a writer left behind.
    func leftovers() -> [URL] {
        let enumerator = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil)
        return (enumerator?.allObjects as? [URL] ?? []).filter { $0.lastPathComponent.contains(".comfygate-tmp-") }
    }

    func remove() { try? FileManager.default.removeItem(at: root) }
}

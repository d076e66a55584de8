public import Foundation

/// Opens the gateway's own store for `comfygate-store` targets. The executable supplies the real one (SQLite
/// under the data directory); tests supply an in-memory store.
public protocol GatewayStoreOpener: Sendable {
    /// The store kept in `dataDirectory`.
    func openStore(dataDirectory: URL) async throws -> any GatewayStore
}

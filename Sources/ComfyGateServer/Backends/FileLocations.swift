import ComfyGatePolicy
import Synchronization

/// Which backend holds each output file of the gateway's jobs, for `/view`: with several backends a file exists
/// only on the one that ran its job. Not kept with one backend.
final class FileLocations: Sendable {
    private let locations = Mutex<[OwnershipIndex.FileReference: String]>([:])
    private let isShared: Bool

    init(isShared: Bool) {
        self.isShared = isShared
    }

    func record(_ files: [OwnershipIndex.FileReference], on backend: String) {
        guard isShared, !files.isEmpty else { return }
        locations.withLock { locations in
            for file in files { locations[file] = backend }
        }
    }

    /// The backend that holds a file, when known.
    func backend(of file: OwnershipIndex.FileReference) -> String? {
        guard isShared else { return nil }
        return locations.withLock { $0[file] }
    }
}

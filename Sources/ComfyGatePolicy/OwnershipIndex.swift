import Synchronization

/// Who owns which prompt and which output files, in memory, for decisions taken on every request path
/// (including the event-loop fast path, which cannot wait for a store).
///
/// The server fills it from the store at start (prompt owners) and as prompts are accepted, and records the
/// output files it sees in the owner's own answers and events. Both maps are bounded; the oldest entries go
/// first (ComfyUI itself keeps at most 10,000 history items).
public final class OwnershipIndex: Sendable {
    /// A file in one of ComfyUI's trees.
    public struct FileReference: Sendable, Hashable {
        /// `input`, `output` or `temp`.
        public var type: String
        public var subfolder: String
        public var name: String

        public init(type: String, subfolder: String, name: String) {
            self.type = type
            self.subfolder = subfolder
            self.name = name
        }
    }

    private struct State {
        var promptOwners: [String: String] = [:]
        var promptOrder: [String] = []
        var promptOrderStart = 0
        var fileOwners: [FileReference: String] = [:]
        var fileOrder: [FileReference] = []
        var fileOrderStart = 0
    }

    private let state = Mutex(State())
    private let maxPrompts: Int
    private let maxFiles: Int

    public init(maxPrompts: Int = 100_000, maxFiles: Int = 200_000) {
        self.maxPrompts = maxPrompts
        self.maxFiles = maxFiles
    }

    /// The user id that owns a prompt, when known.
    public func owner(ofPrompt promptID: String) -> String? {
        state.withLock { $0.promptOwners[promptID] }
    }

    /// Records a prompt's owner.
    public func record(prompt promptID: String, owner userID: String) {
        state.withLock { state in
            if state.promptOwners.updateValue(userID, forKey: promptID) == nil { state.promptOrder.append(promptID) }
            Self.trim(&state.promptOwners, order: &state.promptOrder, start: &state.promptOrderStart, limit: maxPrompts)
        }
    }

    /// Forgets a prompt's owner (a prompt ComfyUI refused never was anyone's).
    public func forget(prompt promptID: String) {
        state.withLock { state in
            guard state.promptOwners.removeValue(forKey: promptID) != nil else { return }
            if let index = state.promptOrder.lastIndex(of: promptID), index >= state.promptOrderStart {
                state.promptOrder.remove(at: index)
            }
        }
    }

    /// The ids of the prompts a user owns that the index remembers, oldest first.
    public func prompts(ownedBy userID: String) -> [String] {
        state.withLock { state in
            state.promptOrder[state.promptOrderStart...].filter { state.promptOwners[$0] == userID }
        }
    }

    /// Records files that came out of a user's prompts.
    public func record(files: [FileReference], owner userID: String) {
        guard !files.isEmpty else { return }
        state.withLock { state in
            for file in files where state.fileOwners.updateValue(userID, forKey: file) == nil { state.fileOrder.append(file) }
            Self.trim(&state.fileOwners, order: &state.fileOrder, start: &state.fileOrderStart, limit: maxFiles)
        }
    }

    /// Whether the file came out of one of the user's prompts.
    public func owns(_ file: FileReference, userID: String) -> Bool {
        state.withLock { $0.fileOwners[file] == userID }
    }

    /// Drops the oldest keys past `limit`; the order array is compacted once half of it is dropped entries.
    private static func trim<Key: Hashable>(_ owners: inout [Key: String], order: inout [Key], start: inout Int, limit: Int) {
        while order.count - start > limit {
            owners[order[start]] = nil
            start += 1
        }
        if start > 1024, start * 2 > order.count {
            order.removeFirst(start)
            start = 0
        }
    }
}

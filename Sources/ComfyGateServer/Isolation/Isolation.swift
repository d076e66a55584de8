import ComfyGateCore
import ComfyGatePolicy
import Foundation
import Logging
import Synchronization

/// The server's side of per-user isolation: what the access policy decides from and only the server can learn
/// or keep — prompt owners, recorded in the store so they outlive a restart of ComfyUI or the gateway; output
/// files seen in owners' answers and events; the upload inputs ComfyUI's nodes declare.
final class Isolation: Sendable {
    let policy: AccessPolicy
    let store: any GatewayStore
    let logger: Logger
    private let now: @Sendable () -> Date
    /// Each user's jobs queued or out at ComfyUI, as the job queue counts them.
    let waitingJobs = WaitingCounts()
    /// Node inputs that load an upload, by class type: the well-known ones, then whatever `/object_info` declares.
    private let uploadInputs = Mutex(PromptRules.coreUploadInputs)

    init(policy: AccessPolicy, store: any GatewayStore, logger: Logger, now: @escaping @Sendable () -> Date) {
        self.policy = policy
        self.store = store
        self.logger = logger
        self.now = now
    }

    /// How long prompt owners are loaded back at start: well past any history ComfyUI still holds.
    static let ownershipMemory: TimeInterval = 30 * 86_400

    /// Loads the owners of recent prompts from the store into the policy's index.
    func loadOwners() async throws {
        for record in try await store.prompts(createdAfter: now().addingTimeInterval(-Self.ownershipMemory)) {
            policy.ownership.record(prompt: record.promptID, owner: record.userID)
        }
    }

    /// The rules a prompt of `caller` is checked and rewritten with: a user may also load the files that came
    /// out of their own prompts.
    func promptRules(for caller: Caller) -> PromptRules {
        PromptRules(
            deniedNodeClasses: policy.rules.deniedNodeClasses,
            uploadInputs: uploadInputs.withLock { $0 },
            ownsFile: fileOwnership(of: caller)
        )
    }

    /// Adds upload inputs found in an `/object_info` answer.
    func learn(uploadInputs found: [String: Set<String>]) {
        guard !found.isEmpty else { return }
        uploadInputs.withLock { known in
            for (classType, inputs) in found { known[classType, default: []].formUnion(inputs) }
        }
    }

    /// Records files that came out of the caller's prompts, for their later `/view`.
    func recordOutputs(_ files: [OwnershipIndex.FileReference], caller: Caller) {
        policy.ownership.record(files: files, owner: caller.userID)
    }

    /// Whether a file came out of one of the caller's prompts, for the rewrites that check file names.
    func fileOwnership(of caller: Caller) -> @Sendable (_ type: String, _ subfolder: String, _ name: String) -> Bool {
        let ownership = policy.ownership
        let userID = caller.userID
        return { type, subfolder, name in
            ownership.owns(OwnershipIndex.FileReference(type: type, subfolder: subfolder, name: name), userID: userID)
        }
    }

    /// Whether a prompt is one of the caller's, for the rewrites that check prompt ids.
    func promptOwnership(of caller: Caller) -> @Sendable (_ promptID: String) -> Bool {
        let ownership = policy.ownership
        let userID = caller.userID
        return { ownership.owner(ofPrompt: $0) == userID }
    }

    /// The id of the caller's prompt in a `/queue` answer's `queue_running`, if ComfyUI runs one of theirs.
    static func runningPrompt(inQueue answer: [UInt8], ownedBy caller: Caller, ownership: OwnershipIndex) -> String? {
        guard let running = (try? PolicyJSON(parsing: answer))?["queue_running"]?.arrayValue else { return nil }
        for item in running {
            guard let promptID = item.arrayValue?.dropFirst().first?.stringValue else { continue }
            if ownership.owner(ofPrompt: promptID) == caller.userID { return promptID }
        }
        return nil
    }
}

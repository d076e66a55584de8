public import ComfyGateCore
public import ComfyGatePolicy
public import Foundation

/// What becomes of a job the gateway handed to ComfyUI, given what ComfyUI says of it now. The same rule serves
/// the watch on running jobs and the reconciliation after a restart of the gateway or of ComfyUI: a job is
/// finished once ComfyUI's history has it, still out while ComfyUI's queue has it, and lost when neither does
/// (ComfyUI restarted and forgot it); a lost job goes back to the gateway's queue, unless it was being cancelled.
public enum DispatchedJob {
    /// What ComfyUI says of one prompt.
    public enum Sighting: Sendable, Equatable {
        /// Its history entry (`GET /history/{id}`).
        case finished(PolicyJSON)
        /// In its queue, running or waiting.
        case queued
        /// In neither.
        case unknown
    }

    /// The job as it should be stored next, or nil when nothing changes.
    public static func update(_ job: Job, sighting: Sighting, now: Date) -> Job? {
        guard job.state == .running || job.state == .canceling else { return nil }
        var updated = job
        switch sighting {
        case .queued:
            return nil
        case .finished(let entry):
            guard let finished = FinishedPrompt(historyEntry: entry) else { return nil }
            // A job being cancelled that ComfyUI still finished keeps its outcome: its outputs exist.
            updated.state = finished.state
            updated.outputs = finished.outputs
            updated.failure = finished.failure
            updated.startedAt = finished.startedAt ?? job.startedAt
            updated.completedAt = finished.completedAt ?? now
            updated.gpuSeconds = finished.gpuSeconds
            updated.historyEntry = String(decoding: entry.serialized(), as: UTF8.self)
        case .unknown where job.state == .canceling:
            updated.state = .canceled
            updated.completedAt = now
            updated.failure = JobFailure(code: "canceled", message: "the job was cancelled")
        case .unknown:
            updated.state = .queued
            updated.dispatchedAt = nil
            updated.startedAt = nil
            updated.backend = nil
        }
        return updated
    }
}

public import Foundation

/// A prompt queued through the gateway: who owns it and how far it got.
public struct PromptRecord: Sendable, Codable, Equatable {
    /// ComfyUI's id for the prompt, as returned by `POST /prompt`.
    public var promptID: String
    /// The gateway user who queued it.
    public var userID: String
    public var createdAt: Date
    public var status: PromptStatus
    /// When the status last changed.
    public var updatedAt: Date

    public init(promptID: String, userID: String, createdAt: Date, status: PromptStatus, updatedAt: Date) {
        self.promptID = promptID
        self.userID = userID
        self.createdAt = createdAt
        self.status = status
        self.updatedAt = updatedAt
    }
}

/// Where a prompt is in its life; stored by raw value.
public enum PromptStatus: String, Sendable, Codable, CaseIterable {
    /// Accepted by ComfyUI and waiting in its queue.
    case queued
    /// Being executed.
    case running
    /// Finished; its outputs are in the history.
    case succeeded
    /// Stopped by an execution error.
    case failed
    /// Stopped by an interrupt before it finished.
    case interrupted
    /// Removed from the queue or the history.
    case deleted
}

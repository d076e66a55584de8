public import Foundation

/// A stored file a user owns: an upload or a copy of a job's output.
///
/// Several assets may share one blob: `hash` names its content, and the blob can go once no asset
/// references it.
public struct Asset: Sendable, Codable, Equatable {
    /// A UUID string.
    public var id: String
    /// The gateway user who owns it.
    public var userID: String
    /// The content's digest, `blake3:<hex>`, once known.
    public var hash: String?
    public var sizeBytes: Int
    public var contentType: String
    /// The file name shown to the user.
    public var name: String
    public var createdAt: Date
    /// The job that produced it, when it is a job output.
    public var jobID: String?
    /// When it is due to be removed.
    public var expiresAt: Date?

    public init(
        id: String = UUID().uuidString.lowercased(),
        userID: String,
        hash: String?,
        sizeBytes: Int,
        contentType: String,
        name: String,
        createdAt: Date,
        jobID: String? = nil,
        expiresAt: Date? = nil
    ) {
        self.id = id
        self.userID = userID
        self.hash = hash
        self.sizeBytes = sizeBytes
        self.contentType = contentType
        self.name = name
        self.createdAt = createdAt
        self.jobID = jobID
        self.expiresAt = expiresAt
    }
}

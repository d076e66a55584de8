public import Foundation

/// A prompt run through the gateway's own queue: what was submitted, by whom, and how far it got.
///
/// Jobs outlive ComfyUI's queue and history: the gateway keeps them in its store, dispatches them to a
/// ComfyUI backend when the fair queue says so, and answers both ComfyUI's native API and the Comfy API v2
/// from them.
public struct Job: Sendable, Codable, Equatable {
    /// The prompt id given to ComfyUI (a UUID string).
    public var id: String
    /// The gateway user who submitted it.
    public var userID: String
    public var source: JobSource
    public var state: JobState
    /// The API-format graph, as JSON text.
    public var workflow: String
    /// ComfyUI's `extra_data`, as JSON text.
    public var extraData: String
    /// The websocket client id given with a native submission.
    public var clientID: String?
    /// The client's key for retrying a submission safely; unique per user.
    public var idempotencyKey: String?
    /// Hex digest of the submitted body, to tell a retry from a reused key with a different body.
    public var requestDigest: String?
    /// Caller-supplied metadata, as JSON text.
    public var metadata: String?
    public var createdAt: Date
    /// When it was handed to ComfyUI.
    public var dispatchedAt: Date?
    /// When ComfyUI started executing it.
    public var startedAt: Date?
    /// When it reached a finished state.
    public var completedAt: Date?
    /// When its outputs are due to be removed.
    public var expiresAt: Date?
    /// The ComfyUI backend it was dispatched to.
    public var backend: String?
    public var outputs: [JobOutput]
    /// Why it failed, when it did.
    public var failure: JobFailure?
    /// GPU time it used; 0 until known.
    public var gpuSeconds: Double
    /// ComfyUI's history entry for it once finished (`prompt`, `outputs`, `status`, `meta`), as JSON text: the
    /// native `/history` is answered from it after ComfyUI has forgotten the prompt.
    public var historyEntry: String?
    /// Whether the submitter allowed one retry on another backend if the backend running it dies.
    public var retryable: Bool
    /// How many times it was handed to a backend.
    public var attempts: Int

    public init(
        id: String = UUID().uuidString.lowercased(),
        userID: String,
        source: JobSource,
        state: JobState = .queued,
        workflow: String,
        extraData: String = "{}",
        clientID: String? = nil,
        idempotencyKey: String? = nil,
        requestDigest: String? = nil,
        metadata: String? = nil,
        createdAt: Date,
        dispatchedAt: Date? = nil,
        startedAt: Date? = nil,
        completedAt: Date? = nil,
        expiresAt: Date? = nil,
        backend: String? = nil,
        outputs: [JobOutput] = [],
        failure: JobFailure? = nil,
        gpuSeconds: Double = 0,
        historyEntry: String? = nil,
        retryable: Bool = false,
        attempts: Int = 0
    ) {
        self.id = id
        self.userID = userID
        self.source = source
        self.state = state
        self.workflow = workflow
        self.extraData = extraData
        self.clientID = clientID
        self.idempotencyKey = idempotencyKey
        self.requestDigest = requestDigest
        self.metadata = metadata
        self.createdAt = createdAt
        self.dispatchedAt = dispatchedAt
        self.startedAt = startedAt
        self.completedAt = completedAt
        self.expiresAt = expiresAt
        self.backend = backend
        self.outputs = outputs
        self.failure = failure
        self.gpuSeconds = gpuSeconds
        self.historyEntry = historyEntry
        self.retryable = retryable
        self.attempts = attempts
    }
}

/// A queued job as the scheduler sees it: whose it is and since when, without its graph.
public struct QueuedJob: Sendable, Equatable {
    public var id: String
    public var userID: String
    public var createdAt: Date

    public init(id: String, userID: String, createdAt: Date) {
        self.id = id
        self.userID = userID
        self.createdAt = createdAt
    }
}

/// Where a job is in its life; stored by raw value.
public enum JobState: String, Sendable, Codable, CaseIterable {
    /// Waiting in the gateway's queue.
    case queued
    /// Handed to ComfyUI, waiting there or executing.
    case running
    /// Finished with its outputs.
    case succeeded
    /// Stopped by an execution error.
    case failed
    /// Cancellation requested; ComfyUI has not confirmed it yet.
    case canceling
    /// Stopped by a cancellation.
    case canceled
    /// Finished long enough ago that its outputs were removed.
    case expired

    /// The states in which a job occupies a slot of its backend.
    public static let active: Set<JobState> = [.running, .canceling]

    /// The states a job never leaves except to expire.
    public static let finished: Set<JobState> = [.succeeded, .failed, .canceled, .expired]

    /// Whether the job has come to an end.
    public var isFinished: Bool { Self.finished.contains(self) }
}

/// The API a job was submitted through; stored by raw value.
public enum JobSource: String, Sendable, Codable, CaseIterable {
    /// ComfyUI's native `POST /prompt`.
    case native
    /// The Comfy API v2 `POST /api/v2/jobs`.
    case v2
}

/// One file (or text) a job produced.
public struct JobOutput: Sendable, Codable, Equatable {
    /// Which of ComfyUI's folders holds a file.
    public enum FileType: String, Sendable, Codable, CaseIterable {
        case output
        case temp
    }

    /// What kind of content an output is.
    public enum MediaKind: String, Sendable, Codable, CaseIterable {
        case image
        case video
        case audio
        case text
        case file
        case latent
    }

    /// The id of the node that produced it.
    public var nodeID: String
    public var fileName: String
    public var subfolder: String
    public var fileType: FileType
    public var mediaKind: MediaKind
    public var contentType: String
    /// The size in bytes, once known.
    public var sizeBytes: Int?
    /// The ``Asset`` holding a copy, when one was made.
    public var assetID: String?

    public init(
        nodeID: String,
        fileName: String,
        subfolder: String = "",
        fileType: FileType = .output,
        mediaKind: MediaKind,
        contentType: String,
        sizeBytes: Int? = nil,
        assetID: String? = nil
    ) {
        self.nodeID = nodeID
        self.fileName = fileName
        self.subfolder = subfolder
        self.fileType = fileType
        self.mediaKind = mediaKind
        self.contentType = contentType
        self.sizeBytes = sizeBytes
        self.assetID = assetID
    }
}

/// Why a job failed.
public struct JobFailure: Sendable, Codable, Equatable {
    /// A short machine-readable cause, e.g. `execution_error`.
    public var code: String
    public var message: String
    /// The node that failed, when one did.
    public var nodeID: String?
    /// That node's class type.
    public var classType: String?
    /// More about the failure (ComfyUI's traceback, validation errors), as JSON text.
    public var details: String?

    public init(
        code: String, message: String, nodeID: String? = nil, classType: String? = nil, details: String? = nil
    ) {
        self.code = code
        self.message = message
        self.nodeID = nodeID
        self.classType = classType
        self.details = details
    }
}

/// What one user's jobs created in an interval amounted to: what `comfygate usage` reports.
public struct UsageSummary: Sendable, Codable, Equatable {
    public var userID: String
    /// Jobs created in the interval.
    public var jobs: Int
    /// Those of them that have finished (see ``JobState/isFinished``).
    public var finishedJobs: Int
    /// Those of them that were handed to ComfyUI.
    public var dispatchedJobs: Int
    /// GPU time those jobs used.
    public var gpuSeconds: Double
    /// Time those of them that were dispatched spent waiting in the gateway's queue, added up.
    public var waitSeconds: Double

    public init(userID: String, jobs: Int, finishedJobs: Int, dispatchedJobs: Int, gpuSeconds: Double, waitSeconds: Double) {
        self.userID = userID
        self.jobs = jobs
        self.finishedJobs = finishedJobs
        self.dispatchedJobs = dispatchedJobs
        self.gpuSeconds = gpuSeconds
        self.waitSeconds = waitSeconds
    }
}

public import Foundation

/// Limits on what a user may queue and use; `nil` means no limit from this source.
public struct QuotaLimits: Sendable, Codable, Equatable {
    /// The most jobs queued or running at once.
    public var maxWaitingJobs: Int?
    /// The most jobs created per day.
    public var jobsPerDay: Int?
    /// The most GPU time used per day.
    public var gpuSecondsPerDay: Double?
    /// The largest image a workflow may ask for, in pixels (width × height).
    public var maxImageArea: Int?

    public init(
        maxWaitingJobs: Int? = nil,
        jobsPerDay: Int? = nil,
        gpuSecondsPerDay: Double? = nil,
        maxImageArea: Int? = nil
    ) {
        self.maxWaitingJobs = maxWaitingJobs
        self.jobsPerDay = jobsPerDay
        self.gpuSecondsPerDay = gpuSecondsPerDay
        self.maxImageArea = maxImageArea
    }

    /// One limit, named as the configuration and the command line spell it.
    public enum Setting: String, Sendable, CaseIterable {
        case maxWaitingJobs = "max_waiting_jobs"
        case jobsPerDay = "jobs_per_day"
        case gpuSecondsPerDay = "gpu_seconds_per_day"
        case maxImageArea = "max_image_area"

        /// Whether the limit counts whole things (jobs, pixels) rather than seconds.
        public var isWholeNumber: Bool { self != .gpuSecondsPerDay }
    }

    /// A limit by name, as a number (whole for jobs and pixels); nil for no limit.
    public subscript(setting: Setting) -> Double? {
        get {
            switch setting {
            case .maxWaitingJobs: maxWaitingJobs.map(Double.init)
            case .jobsPerDay: jobsPerDay.map(Double.init)
            case .gpuSecondsPerDay: gpuSecondsPerDay
            case .maxImageArea: maxImageArea.map(Double.init)
            }
        }
        set {
            switch setting {
            case .maxWaitingJobs: maxWaitingJobs = newValue.map { Int($0) }
            case .jobsPerDay: jobsPerDay = newValue.map { Int($0) }
            case .gpuSecondsPerDay: gpuSecondsPerDay = newValue
            case .maxImageArea: maxImageArea = newValue.map { Int($0) }
            }
        }
    }

    /// These limits where set, `defaults` elsewhere: a user's overrides over their role's defaults, field by field.
    public func merging(over defaults: QuotaLimits) -> QuotaLimits {
        QuotaLimits(
            maxWaitingJobs: maxWaitingJobs ?? defaults.maxWaitingJobs,
            jobsPerDay: jobsPerDay ?? defaults.jobsPerDay,
            gpuSecondsPerDay: gpuSecondsPerDay ?? defaults.gpuSecondsPerDay,
            maxImageArea: maxImageArea ?? defaults.maxImageArea
        )
    }
}

/// One user's quota settings: overrides of their role's limits and their share of the GPUs.
public struct UserQuota: Sendable, Codable, Equatable {
    public var userID: String
    /// Overrides of the role's default limits.
    public var limits: QuotaLimits
    /// The user's weight in the fair queue: a user of weight 2 gets twice the GPU time of a user of weight 1.
    public var weight: Double

    public init(userID: String, limits: QuotaLimits = QuotaLimits(), weight: Double = 1) {
        self.userID = userID
        self.limits = limits
        self.weight = weight
    }
}

/// How the gateway's job queue runs (`[jobs]`).
public struct JobSettings: Sendable, Equatable {
    /// Jobs handed to ComfyUI at once, running or waiting in its own queue: 2 keeps the GPU busy between jobs
    /// while every other job still waits in the gateway's fair queue.
    public var inFlight: Int
    /// How far back GPU time counts when choosing whose job goes next.
    public var fairShareWindow: TimeInterval
    /// How long finished jobs and their outputs are kept.
    public var retention: TimeInterval
    /// With replicas sharing a PostgreSQL store: how long a claimed job is left to the replica that claimed it before
    /// another takes it back (that replica died before handing it over). Hand-overs give up after two thirds of it.
    public var dispatchLease: TimeInterval

    public init(inFlight: Int = 2, fairShareWindow: TimeInterval = 3600, retention: TimeInterval = 30 * 86_400, dispatchLease: TimeInterval = 30) {
        self.inFlight = inFlight
        self.fairShareWindow = fairShareWindow
        self.retention = retention
        self.dispatchLease = dispatchLease
    }
}

extension QuotaLimits {
    /// A limit as written in the configuration or on the command line: a whole number 0 or more for jobs and pixels,
    /// any finite number 0 or more for seconds.
    public static func parse(_ text: String, for setting: Setting) -> Double? {
        if setting.isWholeNumber { return Int(text).flatMap { $0 >= 0 ? Double($0) : nil } }
        return Double(text).flatMap { $0.isFinite && $0 >= 0 ? $0 : nil }
    }
}

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

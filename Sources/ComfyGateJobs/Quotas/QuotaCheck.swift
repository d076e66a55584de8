public import ComfyGateCore
public import Foundation

/// What a user has queued and used when they submit a job, as the store counts it.
public struct QuotaUsage: Sendable, Equatable {
    /// Their jobs queued or running.
    public var waitingJobs: Int
    /// Their jobs created over the last day.
    public var jobsToday: Int
    /// When one of the jobs counted in `jobsToday` leaves the day, making room for another.
    public var nextJobLeavesDay: Date?
    /// GPU seconds their jobs finished over the last day used.
    public var gpuSecondsToday: Double
    /// When the earliest of those jobs leaves the day, giving back its GPU time.
    public var nextGPUTimeLeavesDay: Date?

    public init(
        waitingJobs: Int = 0, jobsToday: Int = 0, nextJobLeavesDay: Date? = nil, gpuSecondsToday: Double = 0,
        nextGPUTimeLeavesDay: Date? = nil
    ) {
        self.waitingJobs = waitingJobs
        self.jobsToday = jobsToday
        self.nextJobLeavesDay = nextJobLeavesDay
        self.gpuSecondsToday = gpuSecondsToday
        self.nextGPUTimeLeavesDay = nextGPUTimeLeavesDay
    }
}

/// A submission over one of the user's limits: which one, and when trying again can succeed.
public struct QuotaRefusal: Error, Sendable, Equatable {
    /// The limit.
    public var limit: QuotaLimits.Setting
    /// A sentence for the user.
    public var message: String
    /// Seconds until a retry can succeed, when that can be told; nil when no wait helps (an image too large).
    public var retryAfter: Int?
    /// Whether the limit is a budget used up for the day (the Comfy API v2 answers `insufficient_credits`) rather
    /// than a full queue (`queue_full`).
    public var isBudget: Bool

    public init(limit: QuotaLimits.Setting, message: String, retryAfter: Int?, isBudget: Bool) {
        self.limit = limit
        self.message = message
        self.retryAfter = retryAfter
        self.isBudget = isBudget
    }
}

/// Checks a submission against the user's limits, the most immediate first: queue, image size, jobs per day, GPU
/// time per day.
public enum QuotaCheck {
    /// - Parameters:
    ///   - limits: the user's limits (their overrides over their role's).
    ///   - usage: what they have queued and used.
    ///   - imageArea: the largest image the submitted prompt asks for, if known.
    ///   - expectedWait: how long until one of their waiting jobs is likely done (their recent mean job time).
    ///   - now: the time of the submission.
    public static func refusal(
        limits: QuotaLimits, usage: QuotaUsage, imageArea: ImageArea?, expectedWait: TimeInterval, now: Date
    ) -> QuotaRefusal? {
        if let limit = limits.maxWaitingJobs, usage.waitingJobs >= limit {
            return QuotaRefusal(
                limit: .maxWaitingJobs,
                message: "you have \(usage.waitingJobs) jobs waiting or running, the most allowed is \(limit)",
                retryAfter: seconds(max(expectedWait, 1)), isBudget: false)
        }
        if let limit = limits.maxImageArea, let area = imageArea, area.pixels > limit {
            return QuotaRefusal(
                limit: .maxImageArea,
                message: "node \(area.nodeID) (\(area.classType)) asks for \(area.pixels) pixels, the most allowed is \(limit)",
                retryAfter: nil, isBudget: false)
        }
        if let limit = limits.jobsPerDay, usage.jobsToday >= limit {
            return QuotaRefusal(
                limit: .jobsPerDay,
                message: "you have submitted \(usage.jobsToday) jobs in the last 24 hours, the most allowed is \(limit)",
                retryAfter: usage.nextJobLeavesDay.map { seconds($0.timeIntervalSince(now)) } ?? 86_400, isBudget: true)
        }
        if let limit = limits.gpuSecondsPerDay, usage.gpuSecondsToday >= limit {
            return QuotaRefusal(
                limit: .gpuSecondsPerDay,
                message: "your jobs used \(Int(usage.gpuSecondsToday.rounded())) GPU seconds in the last 24 hours, "
                    + "the most allowed is \(Int(limit.rounded()))",
                retryAfter: usage.nextGPUTimeLeavesDay.map { seconds($0.timeIntervalSince(now)) } ?? 86_400, isBudget: true)
        }
        return nil
    }

    /// Whole seconds for `Retry-After`, at least 1.
    private static func seconds(_ interval: TimeInterval) -> Int {
        Int(max(1, interval.rounded(.up)))
    }
}

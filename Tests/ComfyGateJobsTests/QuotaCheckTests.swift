import ComfyGateCore
import ComfyGateJobs
import Foundation
import Testing

private let now = Date(timeIntervalSince1970: 1_800_000_000)

@Suite struct QuotaCheckTests {
    private func refusal(_ limits: QuotaLimits, _ usage: QuotaUsage, area: Int? = nil) -> QuotaRefusal? {
        QuotaCheck.refusal(
            limits: limits, usage: usage, imageArea: area.map { ImageArea(nodeID: "5", classType: "EmptySD3LatentImage", pixels: $0) },
            expectedWait: 42.3, now: now)
    }

    @Test func withinEveryLimitNothingIsRefused() {
        let limits = QuotaLimits(maxWaitingJobs: 3, jobsPerDay: 10, gpuSecondsPerDay: 600, maxImageArea: 1_048_576)
        #expect(refusal(limits, QuotaUsage(waitingJobs: 2, jobsToday: 9, gpuSecondsToday: 599.9), area: 1_048_576) == nil)
        #expect(refusal(QuotaLimits(), QuotaUsage(waitingJobs: 1000, jobsToday: 1000, gpuSecondsToday: 1e9), area: 1 << 40) == nil)
    }

    @Test func aFullQueueIsRetriedAfterAboutOneJob() {
        let full = refusal(QuotaLimits(maxWaitingJobs: 2), QuotaUsage(waitingJobs: 2))
        #expect(full == QuotaRefusal(
            limit: .maxWaitingJobs, message: "you have 2 jobs waiting or running, the most allowed is 2", retryAfter: 43,
            isBudget: false))
    }

    @Test func anImageTooLargeNamesItsNodeAndNoWaitHelps() {
        let large = refusal(QuotaLimits(maxImageArea: 1_000_000), QuotaUsage(), area: 1_763_584)
        #expect(large?.limit == .maxImageArea && large?.retryAfter == nil && large?.isBudget == false)
        #expect(large?.message == "node 5 (EmptySD3LatentImage) asks for 1763584 pixels, the most allowed is 1000000")
    }

    @Test func dailyBudgetsAreRetriedWhenTheirOldestUseLeavesTheDay() {
        let jobs = refusal(
            QuotaLimits(jobsPerDay: 5), QuotaUsage(jobsToday: 5, nextJobLeavesDay: now.addingTimeInterval(3_600.2)))
        #expect(jobs?.limit == .jobsPerDay && jobs?.retryAfter == 3_601 && jobs?.isBudget == true)
        let gpu = refusal(
            QuotaLimits(gpuSecondsPerDay: 60), QuotaUsage(gpuSecondsToday: 75.4, nextGPUTimeLeavesDay: now.addingTimeInterval(-3)))
        #expect(gpu?.limit == .gpuSecondsPerDay && gpu?.retryAfter == 1 && gpu?.isBudget == true)
        #expect(gpu?.message == "your jobs used 75 GPU seconds in the last 24 hours, the most allowed is 60")
        #expect(refusal(QuotaLimits(jobsPerDay: 0), QuotaUsage())?.retryAfter == 86_400, "a limit of 0 refuses all day")
    }

    @Test func theMostImmediateLimitIsTheOneReported() {
        let limits = QuotaLimits(maxWaitingJobs: 1, jobsPerDay: 1, gpuSecondsPerDay: 1, maxImageArea: 1)
        let usage = QuotaUsage(waitingJobs: 1, jobsToday: 1, gpuSecondsToday: 1)
        #expect(refusal(limits, usage, area: 2)?.limit == .maxWaitingJobs)
        #expect(refusal(limits, QuotaUsage(jobsToday: 1, gpuSecondsToday: 1), area: 2)?.limit == .maxImageArea)
        #expect(refusal(limits, QuotaUsage(jobsToday: 1, gpuSecondsToday: 1))?.limit == .jobsPerDay)
    }
}

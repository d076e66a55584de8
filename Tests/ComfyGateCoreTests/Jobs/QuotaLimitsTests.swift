import ComfyGateCore
import Testing

@Suite struct QuotaLimitsTests {
    @Test func overridesWinFieldByField() {
        let roleDefaults = QuotaLimits(
            maxWaitingJobs: 5, jobsPerDay: 100, gpuSecondsPerDay: 3600, maxImageArea: 1_048_576)
        let overrides = QuotaLimits(jobsPerDay: 1000, maxImageArea: 4_194_304)
        #expect(
            overrides.merging(over: roleDefaults)
                == QuotaLimits(maxWaitingJobs: 5, jobsPerDay: 1000, gpuSecondsPerDay: 3600, maxImageArea: 4_194_304))
    }

    @Test func unsetOnBothSidesStaysUnlimited() {
        let merged = QuotaLimits(maxWaitingJobs: 2).merging(over: QuotaLimits(gpuSecondsPerDay: 60))
        #expect(merged == QuotaLimits(maxWaitingJobs: 2, gpuSecondsPerDay: 60))
        #expect(QuotaLimits().merging(over: QuotaLimits()) == QuotaLimits())
    }

    @Test func noOverridesGiveTheDefaultsAndNoDefaultsGiveTheOverrides() {
        let limits = QuotaLimits(maxWaitingJobs: 1, jobsPerDay: 2, gpuSecondsPerDay: 3.5, maxImageArea: 4)
        #expect(QuotaLimits().merging(over: limits) == limits)
        #expect(limits.merging(over: QuotaLimits()) == limits)
    }
}

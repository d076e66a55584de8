import ComfyGateCore
import Testing

@Suite struct JobStateTests {
    @Test func finishedStatesAreTheOnesAJobNeverLeavesButToExpire() {
        #expect(JobState.allCases.filter(\.isFinished) == [.succeeded, .failed, .canceled, .expired])
        #expect(Set(JobState.allCases.filter(\.isFinished)) == JobState.finished)
    }
}

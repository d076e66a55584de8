import ComfyGateCore
import ComfyGateJobs
import ComfyGatePolicy
import Foundation
import Testing

private let now = Date(timeIntervalSince1970: 1_800_000_100)

private func dispatched(_ state: JobState = .running) -> Job {
    Job(
        id: "p1", userID: "u-alice", source: .native, state: state, workflow: "{}",
        createdAt: Date(timeIntervalSince1970: 1_800_000_000), dispatchedAt: Date(timeIntervalSince1970: 1_800_000_005),
        backend: "http://127.0.0.1:8188")
}

@Suite struct DispatchedJobTests {
    @Test func aJobInComfyUIsHistoryIsFinishedWithItsEntry() throws {
        let entry = try PolicyJSON(parsing: Array(#"""
            {"prompt": [0, "p1", {}, {}, ["9"]],
             "outputs": {"9": {"images": [{"filename": "a_00001_.png", "subfolder": "users/alice", "type": "output"}]}},
             "status": {"status_str": "success", "completed": true, "messages": [
               ["execution_start", {"prompt_id": "p1", "timestamp": 1800000010000}],
               ["execution_success", {"prompt_id": "p1", "timestamp": 1800000014000}]]}}
            """#.utf8))
        let finished = try #require(DispatchedJob.update(dispatched(), sighting: .finished(entry), now: now))
        #expect(finished.state == .succeeded && finished.gpuSeconds == 4)
        #expect(finished.startedAt == Date(timeIntervalSince1970: 1_800_000_010))
        #expect(finished.completedAt == Date(timeIntervalSince1970: 1_800_000_014))
        #expect(finished.outputs.map(\.fileName) == ["a_00001_.png"])
        #expect(try PolicyJSON(parsing: Array(try #require(finished.historyEntry).utf8)) == entry)
        #expect(finished.dispatchedAt == dispatched().dispatchedAt && finished.backend == dispatched().backend)

        let cancelledTooLate = try #require(DispatchedJob.update(dispatched(.canceling), sighting: .finished(entry), now: now))
        #expect(cancelledTooLate.state == .succeeded, "ComfyUI finished it before the cancel took: its outputs exist")
    }

    @Test func aJobStillInComfyUIsQueueStaysAsItIs() {
        #expect(DispatchedJob.update(dispatched(), sighting: .queued, now: now) == nil)
        #expect(DispatchedJob.update(dispatched(.canceling), sighting: .queued, now: now) == nil)
    }

    @Test func aJobComfyUIForgotGoesBackToTheQueueUnlessItWasBeingCancelled() throws {
        let requeued = try #require(DispatchedJob.update(dispatched(), sighting: .unknown, now: now))
        #expect(requeued.state == .queued && requeued.dispatchedAt == nil && requeued.backend == nil)
        #expect(requeued.createdAt == dispatched().createdAt, "it keeps its place by its submission time")
        let canceled = try #require(DispatchedJob.update(dispatched(.canceling), sighting: .unknown, now: now))
        #expect(canceled.state == .canceled && canceled.completedAt == now && canceled.failure?.code == "canceled")
    }

    @Test func jobsNotOutAtComfyUIAreLeftAlone() throws {
        let entry = try PolicyJSON(parsing: Array(#"{"status": {"status_str": "success", "messages": []}}"#.utf8))
        for state in [JobState.queued, .succeeded, .failed, .canceled, .expired] {
            #expect(DispatchedJob.update(dispatched(state), sighting: .finished(entry), now: now) == nil)
            #expect(DispatchedJob.update(dispatched(state), sighting: .unknown, now: now) == nil)
        }
        #expect(DispatchedJob.update(dispatched(), sighting: .finished(.object([])), now: now) == nil, "no status yet: not finished")
    }
}

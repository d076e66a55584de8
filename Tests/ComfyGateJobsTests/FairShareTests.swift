import ComfyGateJobs
import Foundation
import Testing

private let start = Date(timeIntervalSince1970: 1_800_000_000)

private func job(_ id: String, _ user: String, at seconds: Double) -> FairShare.WaitingJob {
    FairShare.WaitingJob(id: id, userID: user, queuedAt: start.addingTimeInterval(seconds))
}

@Suite struct FairShareTests {
    let fairShare = FairShare()

    @Test func theUserWhoUsedLessGoesFirstAndEachUsersJobsKeepTheirOrder() {
        let waiting = [job("h1", "heavy", at: 0), job("h2", "heavy", at: 1), job("l1", "light", at: 5), job("h3", "heavy", at: 2)]
        let standings = ["heavy": FairShare.Standing(usedSeconds: 120), "light": FairShare.Standing(usedSeconds: 10)]
        #expect(fairShare.next(of: waiting, standings: standings)?.id == "l1")
        #expect(fairShare.order(of: waiting, standings: standings).map(\.id) == ["l1", "h1", "h2", "h3"])
    }

    @Test func runningTimeCountsSoAUserWithAJobOnTheGPUWaitsBehindOneWithNone() {
        // heavy's first job runs (30 s so far); light arrives later with nothing used.
        let waiting = [job("h2", "heavy", at: 0), job("l1", "light", at: 30)]
        let standings = ["heavy": FairShare.Standing(usedSeconds: 30, handedOver: 1)]
        #expect(fairShare.next(of: waiting, standings: standings)?.id == "l1")
    }

    @Test func tiesGoToFewerJobsInFlightThenToTheLongestWait() {
        let waiting = [job("a1", "a", at: 3), job("b1", "b", at: 1), job("c1", "c", at: 2)]
        let equal = FairShare.Standing(usedSeconds: 0)
        #expect(fairShare.next(of: waiting, standings: ["a": equal, "b": equal, "c": equal])?.id == "b1")
        let bBusy = FairShare.Standing(usedSeconds: 0, handedOver: 1)
        #expect(fairShare.next(of: waiting, standings: ["a": equal, "b": bBusy, "c": equal])?.id == "c1")
    }

    @Test func weightsScaleTheShare() {
        // Both used 60 s; teacher has weight 3, so counts as 20 s.
        let waiting = [job("s1", "student", at: 0), job("t1", "teacher", at: 10)]
        let standings = [
            "student": FairShare.Standing(usedSeconds: 60), "teacher": FairShare.Standing(usedSeconds: 60, weight: 3),
        ]
        #expect(fairShare.next(of: waiting, standings: standings)?.id == "t1")
        let zeroWeight = ["student": FairShare.Standing(usedSeconds: 0, weight: 0), "teacher": FairShare.Standing(usedSeconds: 500)]
        #expect(fairShare.next(of: waiting, standings: zeroWeight)?.id == "t1", "a weight of 0 always goes last")
    }

    @Test func theProjectedOrderInterleavesUsersByExpectedCost() {
        // heavy queued 6 jobs of ~10 s at once; light queued 2 of ~10 s a little later.
        let waiting = (1...6).map { job("h\($0)", "heavy", at: Double($0) * 0.1) } + [job("l1", "light", at: 1), job("l2", "light", at: 2)]
        let standings = [
            "heavy": FairShare.Standing(usedSeconds: 20, handedOver: 1, expectedJobSeconds: 10),
            "light": FairShare.Standing(usedSeconds: 0, expectedJobSeconds: 10),
        ]
        #expect(fairShare.order(of: waiting, standings: standings).map(\.id) == ["l1", "l2", "h1", "h2", "h3", "h4", "h5", "h6"])
        let equalUse = ["heavy": FairShare.Standing(expectedJobSeconds: 10), "light": FairShare.Standing(expectedJobSeconds: 10)]
        #expect(fairShare.order(of: waiting, standings: equalUse).map(\.id) == ["h1", "l1", "h2", "l2", "h3", "h4", "h5", "h6"])
    }

    @Test func equalTimesKeepTheOrderTheyCameIn() {
        let waiting = [job("x2", "u", at: 0), job("x1", "u", at: 0), job("x3", "u", at: 0)]
        #expect(fairShare.order(of: waiting, standings: [:]).map(\.id) == ["x2", "x1", "x3"])
        #expect(fairShare.next(of: [], standings: [:]) == nil)
    }

    /// Three users submitting at unequal rates to a GPU that runs one job at a time: a light user's job never waits
    /// for more of the heaviest user's jobs than had already been handed to ComfyUI when it arrived.
    @Test func aLightUsersJobWaitsForNoFurtherJobsOfAHeavyUser() {
        struct Submission { let user: String; let at: Double }
        // heavy submits every 2 s, medium every 7 s, light every 23 s; every job takes 5 s.
        var submissions: [Submission] = []
        for second in stride(from: 0.0, to: 300, by: 2) { submissions.append(Submission(user: "heavy", at: second)) }
        for second in stride(from: 1.0, to: 300, by: 7) { submissions.append(Submission(user: "medium", at: second)) }
        for second in stride(from: 3.0, to: 300, by: 23) { submissions.append(Submission(user: "light", at: second)) }
        submissions.sort { $0.at < $1.at }

        let jobSeconds = 5.0
        var waiting: [FairShare.WaitingJob] = []
        var used: [String: Double] = [:]
        var dispatchedHeavy = 0
        var heavyDispatchedWhenQueued: [String: Int] = [:]
        var next = 0
        var clock = 0.0
        var served: [String] = []
        while next < submissions.count || !waiting.isEmpty {
            while next < submissions.count, submissions[next].at <= clock {
                let id = "\(submissions[next].user)-\(next)"
                waiting.append(job(id, submissions[next].user, at: submissions[next].at))
                if submissions[next].user == "light" { heavyDispatchedWhenQueued[id] = dispatchedHeavy }
                next += 1
            }
            let standings = used.mapValues { FairShare.Standing(usedSeconds: $0, expectedJobSeconds: jobSeconds) }
            guard let chosen = fairShare.next(of: waiting, standings: standings) else {
                clock = submissions[next].at
                continue
            }
            waiting.removeAll { $0.id == chosen.id }
            if chosen.userID == "light" {
                #expect(dispatchedHeavy == heavyDispatchedWhenQueued[chosen.id], "\(chosen.id) waited for a heavy job queued after it")
            }
            if chosen.userID == "heavy" { dispatchedHeavy += 1 }
            served.append(chosen.userID)
            used[chosen.userID, default: 0] += jobSeconds
            clock += jobSeconds
        }
        #expect(served.filter { $0 == "light" }.count == heavyDispatchedWhenQueued.count)
        #expect(served.count == submissions.count)
    }
}

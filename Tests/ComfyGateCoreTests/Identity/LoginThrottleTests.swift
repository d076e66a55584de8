import ComfyGateCore
import Foundation
import Testing

@Suite struct LoginThrottleTests {
    @Test func locksAnAccountAfterFreeAttemptsAndReleasesLater() {
        let throttle = LoginThrottle(freeAttempts: 3, window: 60, maxLockout: 600)
        let start = Date(timeIntervalSince1970: 1_000_000)
        for attempt in 0..<3 {
            #expect(throttle.startAttempt(account: "alice", address: "10.0.0.\(attempt)", at: start) == nil)
            throttle.finishAttempt(account: "alice", address: "10.0.0.\(attempt)", succeeded: false, at: start)
        }
        let wait = throttle.startAttempt(account: "ALICE", address: "10.9.9.9", at: start.addingTimeInterval(1))
        #expect(wait != nil && wait! > 0, "the account is locked whatever the address and letter case")
        #expect(throttle.startAttempt(account: "alice", address: "10.9.9.9", at: start.addingTimeInterval(3600)) == nil)
    }

    @Test func locksAnAddressSprayingManyAccounts() {
        let throttle = LoginThrottle(freeAttempts: 3, window: 60, maxLockout: 600)
        let start = Date(timeIntervalSince1970: 1_000_000)
        for user in ["a", "b", "c", "d"] { throttle.recordFailure(account: user, address: "192.0.2.7", at: start) }
        #expect(throttle.startAttempt(account: "fresh", address: "192.0.2.7", at: start.addingTimeInterval(1)) != nil)
        #expect(throttle.startAttempt(account: "fresh", address: "192.0.2.8", at: start.addingTimeInterval(1)) == nil)
    }

    @Test func lockoutGrowsButIsBounded() {
        let throttle = LoginThrottle(freeAttempts: 1, window: 10, maxLockout: 40)
        let start = Date(timeIntervalSince1970: 0)
        for _ in 0..<30 { throttle.recordFailure(account: "x", address: "a", at: start) }
        let wait = throttle.startAttempt(account: "x", address: "b", at: start)
        #expect(wait == 40)
    }

    @Test func aLockoutIsReportedOnceNotOnEveryRefusedAttempt() {
        let throttle = LoginThrottle(freeAttempts: 2, window: 60, maxLockout: 600)
        let start = Date(timeIntervalSince1970: 1_000_000)
        throttle.recordFailure(account: "alice", address: "192.0.2.7", at: start)
        #expect(!throttle.isFirstRefusal(account: "alice", address: "192.0.2.7"), "no lockout yet")
        throttle.recordFailure(account: "alice", address: "192.0.2.7", at: start)
        #expect(throttle.isFirstRefusal(account: "alice", address: "192.0.2.7"))
        for _ in 0..<100 { #expect(!throttle.isFirstRefusal(account: "alice", address: "192.0.2.7")) }
        #expect(throttle.startAttempt(account: "alice", address: "192.0.2.7", at: start.addingTimeInterval(3600)) == nil)
        throttle.finishAttempt(account: "alice", address: "192.0.2.7", succeeded: false, at: start.addingTimeInterval(3600))
        throttle.recordFailure(account: "alice", address: "192.0.2.7", at: start.addingTimeInterval(3600))
        #expect(throttle.isFirstRefusal(account: "alice", address: "192.0.2.7"), "a new lockout is reported again")
    }

    @Test func attemptsInProgressCountAgainstTheFreeOnes() {
        let throttle = LoginThrottle(freeAttempts: 3, window: 60, maxLockout: 600)
        let start = Date(timeIntervalSince1970: 1_000_000)
        // Ten guesses sent at once: only as many as there are free attempts are checked.
        let started = (0..<10).filter { _ in throttle.startAttempt(account: "alice", address: "192.0.2.7", at: start) == nil }
        #expect(started.count == 3)
        #expect(throttle.startAttempt(account: "alice", address: "192.0.2.8", at: start) != nil, "the account is busy too")
        for _ in started { throttle.finishAttempt(account: "alice", address: "192.0.2.7", succeeded: false, at: start) }
        let wait = throttle.startAttempt(account: "alice", address: "192.0.2.7", at: start.addingTimeInterval(1))
        #expect(wait != nil && wait! > 1, "three failures lock the account")

        #expect(throttle.startAttempt(account: "bob", address: "192.0.2.9", at: start) == nil)
        throttle.finishAttempt(account: "bob", address: "192.0.2.9", succeeded: nil, at: start)
        for _ in 0..<3 {
            #expect(throttle.startAttempt(account: "bob", address: "192.0.2.9", at: start) == nil)
            throttle.finishAttempt(account: "bob", address: "192.0.2.9", succeeded: true, at: start)
        }
        #expect(throttle.startAttempt(account: "bob", address: "192.0.2.9", at: start) == nil, "unchecked and successful attempts are free")
    }
}

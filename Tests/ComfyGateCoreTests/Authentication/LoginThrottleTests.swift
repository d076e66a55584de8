import ComfyGateCore
import Foundation
import Testing

@Suite struct LoginThrottleTests {
    static let start = Date(timeIntervalSince1970: 1_000_000)

    /// Three free failures per account, then 30 s doubling up to 10 minutes; addresses keep the default.
    static func strictAccounts() -> LoginThrottle {
        LoginThrottle(accountPolicy: BackoffPolicy(freeFailures: 3, firstLockout: 30, maxLockout: 600))
    }

    @Test func locksAnAccountAfterFreeAttemptsAndReleasesLater() {
        let throttle = Self.strictAccounts()
        for attempt in 0..<3 {
            #expect(throttle.startAttempt(account: "alice", address: "10.0.0.\(attempt)", at: Self.start) == nil)
            throttle.finishAttempt(account: "alice", address: "10.0.0.\(attempt)", succeeded: false, at: Self.start)
        }
        let wait = throttle.startAttempt(account: "ALICE", address: "10.9.9.9", at: Self.start.addingTimeInterval(1))
        #expect(wait == 29, "the account is locked whatever the address and letter case")
        #expect(throttle.startAttempt(account: "alice", address: "10.9.9.9", at: Self.start.addingTimeInterval(3600)) == nil)
    }

    @Test func aGuesserBehindASharedAddressLocksOnlyTheAccountsItGuessesUntilAMuchHigherThreshold() {
        let throttle = LoginThrottle()
        let address = "192.0.2.7"
        // Nine accounts guessed five times each: every one of them is locked, the address is not.
        for account in 0..<9 {
            for _ in 0..<5 { throttle.recordFailure(account: "user\(account)", address: address, at: Self.start) }
        }
        #expect(throttle.startAttempt(account: "user0", address: "198.51.100.1", at: Self.start) != nil)
        let colleague = throttle.startAttempt(account: "colleague", address: address, at: Self.start)
        #expect(colleague == nil, "45 failures from an address shared by many must not lock its other accounts")
        throttle.finishAttempt(account: "colleague", address: address, succeeded: true, at: Self.start)

        for _ in 0..<5 { throttle.recordFailure(account: "user9", address: address, at: Self.start) }
        #expect(throttle.startAttempt(account: "colleague", address: address, at: Self.start) == 30, "50 failures lock the address")
        #expect(throttle.startAttempt(account: "colleague", address: "192.0.2.8", at: Self.start) == nil)
    }

    @Test func lockoutsKeepDoublingAcrossWindowsUpToTheCap() {
        let throttle = LoginThrottle()
        var now = Self.start
        for _ in 0..<5 {
            #expect(throttle.startAttempt(account: "alice", address: "192.0.2.7", at: now) == nil)
            throttle.finishAttempt(account: "alice", address: "192.0.2.7", succeeded: false, at: now)
        }
        // A guesser that waits out every lockout and tries once more gets a lockout twice as long each time.
        for expected: TimeInterval in [30, 60, 120, 240, 480, 900, 900, 900] {
            #expect(throttle.startAttempt(account: "alice", address: "192.0.2.7", at: now) == expected)
            now.addTimeInterval(expected)
            #expect(throttle.startAttempt(account: "alice", address: "192.0.2.7", at: now) == nil, "the lockout is over")
            throttle.finishAttempt(account: "alice", address: "192.0.2.7", succeeded: false, at: now)
        }
    }

    @Test func anAccountIsForgivenOnlyAfterALongQuietPeriod() {
        let throttle = LoginThrottle()
        var now = Self.start
        for _ in 0..<10 { throttle.recordFailure(account: "alice", address: "192.0.2.7", at: now) }
        #expect(throttle.startAttempt(account: "alice", address: "192.0.2.7", at: now) == 900)

        // Quiet for less than the cap after the lockout: the next failure locks for the cap again.
        now.addTimeInterval(900 + 899)
        #expect(throttle.startAttempt(account: "alice", address: "192.0.2.7", at: now) == nil)
        throttle.finishAttempt(account: "alice", address: "192.0.2.7", succeeded: false, at: now)
        #expect(throttle.startAttempt(account: "alice", address: "192.0.2.7", at: now) == 900)

        // Quiet for the cap after the lockout: the account starts over with its free attempts.
        now.addTimeInterval(900 + 900)
        for _ in 0..<5 {
            #expect(throttle.startAttempt(account: "alice", address: "192.0.2.7", at: now) == nil)
            throttle.finishAttempt(account: "alice", address: "192.0.2.7", succeeded: false, at: now)
        }
        #expect(throttle.startAttempt(account: "alice", address: "192.0.2.7", at: now) == 30)
    }

    @Test func lockoutGrowsButIsBounded() {
        let throttle = LoginThrottle(accountPolicy: BackoffPolicy(freeFailures: 1, firstLockout: 5, maxLockout: 40))
        for _ in 0..<30 { throttle.recordFailure(account: "x", address: "a", at: Self.start) }
        #expect(throttle.startAttempt(account: "x", address: "b", at: Self.start) == 40)
    }

    @Test func aLockoutIsReportedOnceNotOnEveryRefusedAttempt() {
        let throttle = LoginThrottle(accountPolicy: BackoffPolicy(freeFailures: 2, firstLockout: 30, maxLockout: 600))
        throttle.recordFailure(account: "alice", address: "192.0.2.7", at: Self.start)
        #expect(!throttle.isFirstRefusal(account: "alice", address: "192.0.2.7"), "no lockout yet")
        throttle.recordFailure(account: "alice", address: "192.0.2.7", at: Self.start)
        #expect(throttle.isFirstRefusal(account: "alice", address: "192.0.2.7"))
        for _ in 0..<100 { #expect(!throttle.isFirstRefusal(account: "alice", address: "192.0.2.7")) }
        let later = Self.start.addingTimeInterval(30)
        #expect(throttle.startAttempt(account: "alice", address: "192.0.2.7", at: later) == nil)
        throttle.finishAttempt(account: "alice", address: "192.0.2.7", succeeded: false, at: later)
        #expect(throttle.isFirstRefusal(account: "alice", address: "192.0.2.7"), "a new lockout is reported again")
    }

    @Test func attemptsInProgressCountAgainstTheFreeOnes() {
        let throttle = Self.strictAccounts()
        // Ten guesses sent at once: only as many as there are free attempts are checked.
        let started = (0..<10).filter { _ in throttle.startAttempt(account: "alice", address: "192.0.2.7", at: Self.start) == nil }
        #expect(started.count == 3)
        #expect(throttle.startAttempt(account: "alice", address: "192.0.2.8", at: Self.start) != nil, "the account is busy too")
        for _ in started { throttle.finishAttempt(account: "alice", address: "192.0.2.7", succeeded: false, at: Self.start) }
        let wait = throttle.startAttempt(account: "alice", address: "192.0.2.7", at: Self.start.addingTimeInterval(1))
        #expect(wait != nil && wait! > 1, "three failures lock the account")

        // Once the lockout is over, guesses are checked one at a time.
        let later = Self.start.addingTimeInterval(30)
        let afterLockout = (0..<10).filter { _ in throttle.startAttempt(account: "alice", address: "192.0.2.7", at: later) == nil }
        #expect(afterLockout.count == 1)

        #expect(throttle.startAttempt(account: "bob", address: "192.0.2.9", at: Self.start) == nil)
        throttle.finishAttempt(account: "bob", address: "192.0.2.9", succeeded: nil, at: Self.start)
        for _ in 0..<3 {
            #expect(throttle.startAttempt(account: "bob", address: "192.0.2.9", at: Self.start) == nil)
            throttle.finishAttempt(account: "bob", address: "192.0.2.9", succeeded: true, at: Self.start)
        }
        #expect(throttle.startAttempt(account: "bob", address: "192.0.2.9", at: Self.start) == nil, "unchecked and successful attempts are free")
    }
}

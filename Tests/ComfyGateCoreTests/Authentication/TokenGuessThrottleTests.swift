import ComfyGateCore
import Foundation
import Synchronization
import Testing

@Suite struct TokenGuessThrottleTests {
    /// A verifier over an in-memory store holding one imported bcrypt token (cost 4) and one native token, with
    /// three free failures per address and a clock the test moves.
    struct Fixture {
        let verifier: CredentialVerifier
        let hasher: PasswordHasher
        let clock: ManualClock
        let imported = "an-imported-raw-token"
        let native: String

        init() async throws {
            let store = InMemoryGatewayStore()
            let clock = ManualClock()
            let hasher = PasswordHasher()
            let accounts = AccountService(store: store, hasher: hasher)
            try await store.insertUser(User(name: "qwen", role: .user, passwordHash: nil, createdAt: Date()))
            _ = try await accounts.importBcryptToken(userName: "qwen", hash: try await hasher.hash(imported, cost: 4), name: "legacy")
            native = try await accounts.createToken(userName: "qwen", name: "native", expiresIn: nil).token
            self.clock = clock
            self.hasher = hasher
            self.verifier = CredentialVerifier(
                store: store, hasher: hasher,
                guessThrottle: TokenGuessThrottle(policy: BackoffPolicy(freeFailures: 3, firstLockout: 30, maxLockout: 900)),
                now: { clock.now() }
            )
        }

        func verify(_ token: String, from address: String) async throws -> Result<Identity, CredentialVerifier.Refusal> {
            try await verifier.verify(token: token, from: address)
        }
    }

    /// A clock the test moves by hand.
    final class ManualClock: Sendable {
        private let current = Mutex(Date(timeIntervalSince1970: 1_000_000))

        func now() -> Date { current.withLock { $0 } }

        func advance(by seconds: TimeInterval) { current.withLock { $0.addTimeInterval(seconds) } }
    }

    static func randomGuess() -> String { "guess-" + TokenFormat.randomBase62(count: 20) }

    @Test func anAddressOverItsBudgetIsRefusedBeforeAnyBcrypt() async throws {
        let fixture = try await Fixture()
        for _ in 0..<3 { #expect(try await fixture.verify(Self.randomGuess(), from: "192.0.2.7") == .failure(.unknown)) }
        let checked = fixture.hasher.verificationCount

        #expect(try await fixture.verify(Self.randomGuess(), from: "192.0.2.7") == .failure(.throttled(retryAfter: 30)))
        #expect(try await fixture.verify(fixture.imported, from: "192.0.2.7") == .failure(.throttled(retryAfter: 30)),
            "even the right token waits: a lockout that answered known values would let guesses be tested for free")
        #expect(try await fixture.verify(fixture.native, from: "192.0.2.7") == .failure(.throttled(retryAfter: 30)))
        #expect(fixture.hasher.verificationCount == checked, "no bcrypt for an address over its budget")

        guard case .success = try await fixture.verify(fixture.imported, from: "192.0.2.8") else {
            Issue.record("another address is not affected")
            return
        }
    }

    @Test func lockoutsDoubleWhileTheGuessingGoesOn() async throws {
        let fixture = try await Fixture()
        for _ in 0..<3 { _ = try await fixture.verify(Self.randomGuess(), from: "192.0.2.7") }
        for lockout: TimeInterval in [30, 60, 120, 240] {
            #expect(try await fixture.verify(Self.randomGuess(), from: "192.0.2.7") == .failure(.throttled(retryAfter: lockout)))
            fixture.clock.advance(by: lockout)
            #expect(try await fixture.verify(Self.randomGuess(), from: "192.0.2.7") == .failure(.unknown), "one guess after each lockout")
        }
    }

    @Test func parallelGuessesCannotSlipInBeforeTheFirstFailureIsCounted() async throws {
        let fixture = try await Fixture()
        let before = fixture.hasher.verificationCount
        let outcomes = try await withThrowingTaskGroup(of: Result<Identity, CredentialVerifier.Refusal>.self) { group in
            for _ in 0..<20 { group.addTask { try await fixture.verify(Self.randomGuess(), from: "192.0.2.7") } }
            return try await group.reduce(into: [Result<Identity, CredentialVerifier.Refusal>]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 == .failure(.unknown) }.count == 3)
        #expect(fixture.hasher.verificationCount - before == 3, "only the free guesses reach bcrypt")
    }

    @Test func nativeTokenGuessesCountButRepeatsOfAKnownWrongValueDoNot() async throws {
        let fixture = try await Fixture()
        let wrong = Self.randomGuess()
        for _ in 0..<10 { #expect(try await fixture.verify(wrong, from: "192.0.2.7") == .failure(.unknown)) }
        let wrongNative = "cgt_" + fixture.native.dropFirst(4).dropLast() + (fixture.native.hasSuffix("a") ? "b" : "a")
        for _ in 0..<2 { #expect(try await fixture.verify(wrongNative, from: "192.0.2.7") == .failure(.unknown)) }
        #expect(try await fixture.verify(wrongNative, from: "192.0.2.7") == .failure(.throttled(retryAfter: 30)),
            "one wrong value counted once, two native guesses: three failures")
    }

    @Test func checksWithoutAClientAreNotThrottled() async throws {
        let fixture = try await Fixture()
        for _ in 0..<5 {
            #expect(try await fixture.verifier.verify(token: Self.randomGuess()) == .failure(.unknown))
        }
    }
}

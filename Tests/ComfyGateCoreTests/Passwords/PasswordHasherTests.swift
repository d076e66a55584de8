import ComfyGateCore
import Foundation
import Testing

@Suite struct PasswordHasherTests {
    /// The seed deployment's raw token and the hashes its report handled.
    static let seedToken = "2%=tVJ6@!Nc(7#VTvj-Bh3^nm0WY-Lij"
    static let seedRepairedHash = "$2b$12$ubd9tM4L2pvqB/peVpwvyuASqddG9WVoNj0NaAPHYyH57LW.vVjr."
    static let seedOldServerHash = "$2b$12$4NWTdQ/zSFsWQ/JwCHyK/egV6jpIssX0htD16.HtoBNRWpX993mTW"
    static let seedOldDockerHash = "$2b$12$6kSChnnUFiCUPfyAllJPoHm.9O9LL9KnIlX88zomudAiJDvMRoJ3uOXa"

    let hasher = PasswordHasher(maxConcurrent: 2)

    @Test func hashesAreTwoBAndVerify() async throws {
        let hash = try await hasher.hash("correct horse", cost: 4)
        #expect(hash.hasPrefix("$2b$04$"))
        let parsed = try BcryptHash(parsing: hash)
        #expect(try await hasher.verify("correct horse", against: parsed))
        #expect(try await !hasher.verify("correct horsf", against: parsed))
    }

    @Test func twoYAndTwoAHashesVerify() async throws {
        let hash = try await hasher.hash("s3cret-value", cost: 4)
        for variant in ["$2y$", "$2a$"] {
            let rewritten = try BcryptHash(parsing: variant + hash.dropFirst(4))
            #expect(try await hasher.verify("s3cret-value", against: rewritten), "\(variant)")
        }
    }

    /// The seed report claimed this pair matched; three bcrypt implementations say it does not.
    @Test func seedRepairedHashDoesNotMatchItsRawToken() async throws {
        let repaired = try BcryptHash(parsing: Self.seedRepairedHash)
        #expect(try await !hasher.verify(Self.seedToken, against: repaired))
        let old = try BcryptHash(parsing: Self.seedOldServerHash)
        #expect(try await !hasher.verify(Self.seedToken, against: old))
    }

    @Test func seedDockerHashIsMalformedWithAReason() {
        #expect(Self.seedOldDockerHash.count == 63)
        #expect(throws: BcryptHashError.wrongLength(63)) { try BcryptHash(parsing: Self.seedOldDockerHash) }
        #expect(BcryptHashError.wrongLength(63).description.contains("60 characters"))
    }

    @Test(arguments: [
        ("", "not a bcrypt hash"),
        ("plain-text", "not a bcrypt hash"),
        ("$1$abc$defghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", "does not start"),
        ("$2x$12$ubd9tM4L2pvqB/peVpwvyuASqddG9WVoNj0NaAPHYyH57LW.vVjr.", "unsupported bcrypt variant"),
        ("$2b$99$ubd9tM4L2pvqB/peVpwvyuASqddG9WVoNj0NaAPHYyH57LW.vVjr.", "bad bcrypt cost"),
        ("$2b$12$ubd9tM4L2pvqB/peVpwvyuASqddG9WVoNj0NaAPHYyH57LW.vVj!.", "alphabet"),
    ])
    func malformedHashesExplainThemselves(_ text: String, _ reason: String) {
        do {
            _ = try BcryptHash(parsing: text)
            Issue.record("\(text) should be refused")
        } catch {
            #expect(error.description.contains(reason), "\(error.description)")
        }
    }

    @Test func secretsOver72BytesAreRefusedNotTruncated() async throws {
        let hash = try BcryptHash(parsing: try await hasher.hash(String(repeating: "a", count: 72), cost: 4))
        await #expect(throws: PasswordError.secretTooLong(73)) {
            try await hasher.verify(String(repeating: "a", count: 73), against: hash)
        }
        await #expect(throws: PasswordError.secretTooLong(80)) { try await hasher.hash(String(repeating: "é", count: 40)) }
        await #expect(throws: PasswordError.secretContainsNUL) { try await hasher.hash("a\u{0}b") }
    }

    @Test func costAboveTheLimitIsRefused() async throws {
        let bounded = PasswordHasher(maxConcurrent: 1, maxCost: 10)
        let expensive = try BcryptHash(parsing: "$2b$12$" + Self.seedRepairedHash.dropFirst(7))
        await #expect(throws: PasswordError.costAboveLimit(12, limit: 10)) {
            try await bounded.verify(Self.seedToken, against: expensive)
        }
    }

    @Test func aFullQueueRefusesInsteadOfPilingUp() async throws {
        let tiny = PasswordHasher(maxConcurrent: 1, maxWaiting: 1)
        let hash = try BcryptHash(parsing: try await tiny.hash("x-password", cost: 10))
        let outcomes = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<6 {
                group.addTask {
                    do {
                        _ = try await tiny.verify("x-password", against: hash)
                        return true
                    } catch {
                        return false
                    }
                }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(outcomes.contains(false), "some of six simultaneous checks must be refused with one slot and one waiter")
        #expect(outcomes.contains(true))
    }
}

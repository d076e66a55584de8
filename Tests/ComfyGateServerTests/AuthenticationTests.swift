import ComfyGateCore
import ComfyGateSQLite
import NIOHTTP1
import ComfyGateTestSupport
import Foundation
import Testing

@Suite struct AuthenticationTests {
    static let seedToken = "2%=tVJ6@!Nc(7#VTvj-Bh3^nm0WY-Lij"
    static let seedRepairedHash = "$2b$12$ubd9tM4L2pvqB/peVpwvyuASqddG9WVoNj0NaAPHYyH57LW.vVjr."
    static let seedOldServerHash = "$2b$12$4NWTdQ/zSFsWQ/JwCHyK/egV6jpIssX0htD16.HtoBNRWpX993mTW"
    static let seedMalformedHash = "$2b$12$6kSChnnUFiCUPfyAllJPoHm.9O9LL9KnIlX88zomudAiJDvMRoJ3uOXa"

    @Test func everyCredentialFormIsAccepted() async throws {
        try await withGateway { gate in
            let (_, token) = try await gate.makeUser("alice")
            let basic = Data("alice:\(token)".utf8).base64EncodedString()
            let forms: [(String, [(String, String)])] = [
                ("\(gate.baseURL)/system_stats", [("Authorization", "Bearer \(token)")]),
                ("\(gate.baseURL)/api/system_stats", [("Authorization", "bearer   \(token)")]),
                ("\(gate.baseURL)/system_stats?token=\(token)", []),
                ("\(gate.baseURL)/system_stats", [("Authorization", "Basic \(basic)")]),
            ]
            for (url, headers) in forms {
                let response = try await TestHTTP.send(.GET, url, headers: headers)
                #expect(response.status == 200, "\(url) \(headers)")
                #expect(try response.json()["system"] != nil)
            }
        }
    }

    @Test func missingCredentialsGetAJSON401WithAChallenge() async throws {
        try await withGateway { gate in
            let response = try await TestHTTP.send(.GET, "\(gate.baseURL)/system_stats")
            #expect(response.status == 401)
            #expect(try response.json()["error"] as? String == "authentication required")
            #expect(response.header("WWW-Authenticate")?.hasPrefix("Bearer") == true)
            #expect(gate.comfyUIRequests.isEmpty, "nothing reaches ComfyUI without authentication")
        }
    }

    @Test func wrongExpiredRevokedAndDisabledCredentialsAreRefused() async throws {
        try await withGateway { gate in
            let (alice, token) = try await gate.makeUser("alice")
            let wrong = "cgt_" + token.dropFirst(4).dropLast() + (token.hasSuffix("a") ? "b" : "a")
            let malformed = ["Bearer", "Bearer a b", "Digest abc", "Basic !!!"]
            for header in malformed {
                let response = try await TestHTTP.send(.GET, "\(gate.baseURL)/system_stats", headers: [("Authorization", header)])
                #expect(response.status == 401, "\(header)")
            }
            #expect(try await TestHTTP.send(.GET, "\(gate.baseURL)/system_stats", headers: [("Authorization", "Bearer \(wrong)")]).status == 401)

            let expiring = try await gate.accounts.createToken(userName: "alice", name: "short", expiresIn: 60)
            #expect(try await TestHTTP.send(.GET, "\(gate.baseURL)/system_stats?token=\(expiring.token)").status == 200)
            gate.clock.advance(by: 61)
            #expect(try await TestHTTP.send(.GET, "\(gate.baseURL)/system_stats?token=\(expiring.token)").status == 401)

            let revocable = try await gate.accounts.createToken(userName: "alice", name: "revocable", expiresIn: nil)
            #expect(try await TestHTTP.send(.GET, "\(gate.baseURL)/prompt?token=\(revocable.token)").status == 200)
            try await gate.accounts.revokeToken(id: revocable.record.id)
            let revoked = try await TestHTTP.send(.GET, "\(gate.baseURL)/prompt?token=\(revocable.token)")
            #expect(revoked.status == 401)
            #expect(revoked.header("WWW-Authenticate")?.contains("invalid_token") == true)

            #expect(try await TestHTTP.send(.GET, "\(gate.baseURL)/prompt?token=\(token)").status == 200)
            try await gate.accounts.setDisabled(userName: alice.name, true)
            #expect(try await TestHTTP.send(.GET, "\(gate.baseURL)/prompt?token=\(token)").status == 401)
        }
    }

    @Test func revocationsByAnotherProcessTakeEffectWithinTheCacheLifetime() async throws {
        try await withGateway { gate in
            let (alice, token) = try await gate.makeUser("alice")
            #expect(try await TestHTTP.send(.GET, "\(gate.baseURL)/prompt?token=\(token)").status == 200)
            // Written to the database under the gateway's cache, as `comfygate tokens revoke` does from another process.
            let record = try #require(try await gate.databaseStore.tokens(userID: alice.id).first)
            #expect(try await gate.databaseStore.revokeToken(id: record.id, at: Date()))
            try await Task.sleep(for: .milliseconds(1_100))
            #expect(try await TestHTTP.send(.GET, "\(gate.baseURL)/prompt?token=\(token)").status == 401)
        }
    }

    @Test func tokenUseIsRecorded() async throws {
        try await withGateway { gate in
            let (alice, token) = try await gate.makeUser("alice")
            #expect(try await gate.store.tokens(userID: alice.id).first?.lastUsedAt == nil)
            #expect(try await TestHTTP.send(.GET, "\(gate.baseURL)/prompt", headers: [("Authorization", "Bearer \(token)")]).status == 200)
            #expect(try await gate.store.tokens(userID: alice.id).first?.lastUsedAt != nil)
        }
    }

    @Test func viewersMayReadButNotWrite() async throws {
        try await withGateway { gate in
            let (_, token) = try await gate.makeUser("victor", role: .viewer)
            let auth = [("Authorization", "Bearer \(token)")]
            #expect(try await TestHTTP.send(.GET, "\(gate.baseURL)/queue", headers: auth).status == 200)
            let post = try await TestHTTP.send(.POST, "\(gate.baseURL)/interrupt", headers: auth, body: "{}")
            #expect(post.status == 403)
            #expect(try post.json()["error"] as? String == "role viewer may not POST")
            #expect(!gate.comfyUIRequests.contains { $0.path == "/interrupt" })
        }
    }

    @Test func anImportedBcryptHashAcceptsItsRawToken() async throws {
        try await withGateway { gate in
            _ = try await gate.makeUser("qwen")
            let raw = "a-raw-token-from-an-old-.env-file-%=@!(#"
            let hash = try await gate.accounts.hasher.hash(raw, cost: 4)
            _ = try await gate.accounts.importBcryptToken(userName: "qwen", hash: hash, name: "legacy")
            let encoded = raw.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            #expect(try await TestHTTP.send(.GET, "\(gate.baseURL)/system_stats", headers: [("Authorization", "Bearer \(raw)")]).status == 200)
            #expect(try await TestHTTP.send(.GET, "\(gate.baseURL)/system_stats?token=\(encoded)").status == 200)
            #expect(try await TestHTTP.send(.GET, "\(gate.baseURL)/system_stats", headers: [("Authorization", "Bearer \(raw)x")]).status == 401)
            // The upstream never sees the raw token.
            for request in gate.comfyUIRequests {
                #expect(!request.headers.contains { $0.value.contains(raw) })
                #expect(!(request.query ?? "").contains("token"))
            }
        }
    }

    /// The seed's report claimed its "repaired" hash matched the raw token. It does not, and the gateway says so
    /// by refusing the token; its malformed 63-character Docker hash cannot even be imported.
    @Test func theSeedsOwnPairIsRefused() async throws {
        try await withGateway { gate in
            _ = try await gate.makeUser("qwen")
            _ = try await gate.accounts.importBcryptToken(userName: "qwen", hash: Self.seedRepairedHash, name: "seed repaired")
            _ = try await gate.accounts.importBcryptToken(userName: "qwen", hash: Self.seedOldServerHash, name: "seed old")
            let response = try await TestHTTP.send(.GET, "\(gate.baseURL)/system_stats", headers: [("Authorization", "Bearer \(Self.seedToken)")])
            #expect(response.status == 401)
            await #expect(throws: BcryptHashError.wrongLength(63)) {
                _ = try await gate.accounts.importBcryptToken(userName: "qwen", hash: Self.seedMalformedHash, name: "seed docker")
            }
        }
    }

    @Test func bcryptRunsOncePerDistinctValueEvenUnderConcurrency() async throws {
        try await withGateway { gate in
            _ = try await gate.makeUser("qwen")
            let raw = "legacy-token-value"
            _ = try await gate.accounts.importBcryptToken(userName: "qwen", hash: try await gate.accounts.hasher.hash(raw, cost: 6), name: "a")
            _ = try await gate.accounts.importBcryptToken(userName: "qwen", hash: try await gate.accounts.hasher.hash("other", cost: 6), name: "b")
            let before = gate.accounts.hasher.verificationCount
            for value in [raw, "wrong-value"] {
                let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                    for _ in 0..<16 {
                        group.addTask {
                            try await TestHTTP.send(.GET, "\(gate.baseURL)/prompt", headers: [("Authorization", "Bearer \(value)")]).status
                        }
                    }
                    return try await group.reduce(into: [Int]()) { $0.append($1) }
                }
                #expect(Set(statuses) == [value == raw ? 200 : 401])
            }
            let checks = gate.accounts.hasher.verificationCount - before
            // At most one pass over the two imported hashes per distinct value: 2 values × 2 hashes.
            #expect(checks <= 4, "bcrypt ran \(checks) times for 32 requests with 2 distinct values")
            #expect(checks >= 3, "the right value stops at its hash or after both; the wrong one tries both")
        }
    }
}

import ComfyGateCore
import ComfyGateTestSupport
import Testing

/// ComfyGate's bcrypt against Python's `bcrypt` package, both ways, on the seed's real values.
@Suite("Secrets: bcrypt interoperability with Python")
struct SecretsBcryptInteropTests {
    let hasher = PasswordHasher(maxCost: 31)
    let raw = SeedSecretsFixture.rawToken

    @Test func theSeedReportsClaimIsFalse() async throws {
        let claimed = try BcryptHash(parsing: SeedSecretsFixture.repairedHash)
        #expect(try await hasher.verify(raw, against: claimed) == false)
        #expect(try await PythonBcrypt.verify(raw, hash: SeedSecretsFixture.repairedHash) == false)
        #expect(try await PythonBcrypt.verify(raw, hash: SeedSecretsFixture.oldServerHash) == false)
    }

    @Test func theOldDockerHashIsMalformed() {
        #expect(throws: BcryptHashError.wrongLength(63)) { try BcryptHash(parsing: SeedSecretsFixture.oldDockerHash) }
        #expect(BcryptHashError.wrongLength(63).description == "bcrypt hashes have 60 characters, this one has 63")
    }

    @Test func ourHashesVerifyInPython() async throws {
        let hash = try await hasher.hash(raw, cost: 12)
        #expect(hash.hasPrefix("$2b$12$"))
        #expect(try await PythonBcrypt.verify(raw, hash: hash))
        #expect(try await PythonBcrypt.verify(raw + "x", hash: hash) == false)
    }

    @Test(arguments: ["2b", "2a", "2y"])
    func pythonHashesVerifyHere(variant: String) async throws {
        let python = try await PythonBcrypt.hash(raw, cost: 5)
        let rewritten = "$\(variant)$" + python.dropFirst(4)
        let hash = try BcryptHash(parsing: rewritten)
        #expect(try await hasher.verify(raw, against: hash))
        #expect(try await hasher.verify("wrong", against: hash) == false)
    }

    @Test func secretsLongerThan72BytesAreRefused() async {
        await #expect(throws: PasswordError.secretTooLong(73)) {
            try await hasher.hash(String(repeating: "a", count: 73), cost: 4)
        }
    }
}

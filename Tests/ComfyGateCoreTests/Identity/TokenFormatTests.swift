import ComfyGateCore
import Foundation
import Testing

@Suite struct TokenFormatTests {
    @Test func generatedTokensHaveTheDocumentedShape() throws {
        let generated = TokenFormat.generate()
        #expect(generated.token.count == TokenFormat.tokenLength)
        #expect(generated.token.hasPrefix("cgt_"))
        #expect(generated.token.utf8.count <= 72, "must stay under bcrypt's limit")
        #expect(generated.token.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" })
        #expect(TokenFormat.id(ofPresented: generated.token) == generated.id)
        guard case .sha256(let digest) = generated.verifier else {
            Issue.record("native tokens are stored as SHA-256")
            return
        }
        #expect(digest == TokenFormat.digest(generated.token))
        #expect(!digest.contains(generated.token))
    }

    @Test func secretsCarryAtLeast256BitsAndDoNotRepeat() {
        #expect(Double(TokenFormat.secretLength) * log2(62) >= 256)
        let tokens = Set((0..<500).map { _ in TokenFormat.generate().token })
        #expect(tokens.count == 500)
    }

    @Test(arguments: [
        "", "cgt_", "Bearer x", "2%=tVJ6@!Nc(7#VTvj-Bh3^nm0WY-Lij",
        "cgt_abcdefghijkl-" + String(repeating: "a", count: 43),
        "cgt_abcdefghijk!_" + String(repeating: "a", count: 43),
        "cgt_abcdefghijkl_" + String(repeating: "a", count: 42),
        "xyz_abcdefghijkl_" + String(repeating: "a", count: 43),
        "cgt_abcdéfghijk_" + String(repeating: "a", count: 43),
    ])
    func otherValuesAreNotNativeTokens(_ value: String) {
        #expect(TokenFormat.id(ofPresented: value) == nil)
    }

    @Test func digestIsHexSHA256() {
        #expect(TokenFormat.digest("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test func constantTimeEqualityMatchesPlainEquality() {
        let cases: [([UInt8], [UInt8])] = [([], []), ([1], [1]), ([1], [2]), ([1, 2], [1]), ([1], [1, 2]), ([0], [])]
        for (left, right) in cases {
            #expect(ConstantTime.equals(left, right) == (left == right))
        }
        let strings = [("", ""), ("abc", "abc"), ("abc", "abd"), ("abc", "ab"), ("é", "é"), ("é", "e\u{301}")]
        for (left, right) in strings {
            #expect(ConstantTime.equals(left, right) == (Array(left.utf8) == Array(right.utf8)), "\(left) / \(right)")
        }
        let bridged = String(decoding: Array("ba7816bf".utf8), as: UTF8.self)
        #expect(ConstantTime.equals(bridged, "ba7816bf"))
    }

    @Test func namesAreValidated() {
        #expect(throws: IdentityError.self) { try User.validate(name: "") }
        #expect(throws: IdentityError.self) { try User.validate(name: "a b") }
        #expect(throws: IdentityError.self) { try User.validate(name: String(repeating: "a", count: 65)) }
        #expect(throws: Never.self) { try User.validate(name: "alice.o-k_1@lab") }
        #expect(throws: IdentityError.self) { try APIToken.validate(name: "bad\nlabel") }
    }
}

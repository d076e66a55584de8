import ComfyGateCore
import Foundation
import Testing

@Suite("Secrets: manifest")
struct SecretsManifestTests {
    let file = URL(fileURLWithPath: "/deploy/comfygate-secrets.toml")

    @Test func theSeedLayoutParses() throws {
        let manifest = try SecretsManifest(text: SecretsLayout.comfyUIQwen.manifestText, file: file)
        #expect(manifest.bcryptCost == 12)
        #expect(manifest.backups.keep == 5)
        #expect(manifest.backups.directory?.path == "/deploy/.secrets/backups")
        let secret = try #require(manifest.secrets.first)
        #expect(secret.name == "qwen_api_user")
        #expect(secret.source.format == .dotenv(key: "QWEN_API_USER_TOKEN"))
        #expect(secret.source.url.path == "/deploy/.secrets/.env.generated")
        #expect(secret.targets.map(\.location.format) == [.file, .dotenv(key: "COMFYUI_BEARER_TOKEN")])
        #expect(secret.targets.allSatisfy { $0.encoding == .bcrypt })
    }

    @Test func everyProblemIsListedAtOnce() {
        let text = """
            version = 2
            bcrypt_cost = 40
            colour = "blue"
            [backups]
            keep = 0
            [secrets.a]
            kind = "pin"
            length = 100
            source = { path = "s", format = "dotenv" }
            [[secrets.a.targets]]
            path = "t"
            format = "comfyui-login"
            value = "raw"
            [[secrets.a.targets]]
            format = "xml"
            value = "md5"
            [[secrets.a.targets]]
            path = "store"
            format = "comfygate-store"
            value = "bcrypt"
            """
        #expect {
            try SecretsManifest(text: text, file: file)
        } throws: { error in
            let problems = (error as? ManifestError)?.problems ?? []
            let expected = [
                "unsupported version 2", "bcrypt_cost 40 is out of range", "unknown key 'colour'",
                "keep must be at least 1",
                "kind 'pin'", "length 100 is out of range", "a dotenv target needs 'key'", "use value = \"bcrypt\"",
                "has no 'path'", "format 'xml'", "value 'md5'", "needs 'user'",
            ]
            return expected.allSatisfy { needle in problems.contains { $0.contains(needle) } }
                && problems.allSatisfy { $0.hasPrefix("/deploy/comfygate-secrets.toml: ") }
        }
    }

    @Test func tomlSyntaxErrorsNameTheLine() {
        #expect {
            try SecretsManifest(text: "version = 1\n[secrets\n", file: file)
        } throws: { error in
            (error as? ManifestError)?.problems == [
                "/deploy/comfygate-secrets.toml:2:9: not valid TOML: expected ']' to close the header, found a new line"
            ]
        }
    }

    @Test func overlappingTargetsAreRefused() {
        let text = """
            [secrets.a]
            source = { path = "s.env", format = "dotenv", key = "A" }
            [[secrets.a.targets]]
            path = "s.env"
            format = "file"
            value = "raw"
            [secrets.b]
            source = { path = "s.env", format = "dotenv", key = "A" }
            """
        #expect {
            try SecretsManifest(text: text, file: file)
        } throws: { error in
            let problems = (error as? ManifestError)?.problems ?? []
            return problems.contains { $0.contains("also written by secrets.a") }
                && problems.contains { $0.contains("both as a dotenv file and as a whole file") }
        }
    }

    @Test func generatedSecretsAreSafe() throws {
        for alphabet in SecretAlphabet.allCases {
            let value = SecretGenerator.generate(length: 72, alphabet: alphabet)
            #expect(value.utf8.count == 72)
            #expect(try DotenvDocument.render(value) == value)
            #expect(value.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) == value)
        }
        #expect(SecretGenerator.fingerprint("x").count == 8)
    }
}

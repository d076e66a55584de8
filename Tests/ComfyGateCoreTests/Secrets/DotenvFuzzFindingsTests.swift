import ComfyGateCore
import Testing

/// Inputs found by Fuzz/FuzzDotenv: edits that changed how the rest of the file reads.
@Suite("Secrets: dotenv edits found by fuzzing")
struct DotenvFuzzFindingsTests {
    @Test func anEmptyValueBeforeACommentIsReplacedRightAfterTheEqualsSign() throws {
        var document = DotenvDocument(text: "EMPTY_COMMENT= # nothing\n")
        try document.set("plain", forKey: "EMPTY_COMMENT")
        #expect(document.text == "EMPTY_COMMENT=plain # nothing\n")
        #expect(DotenvDocument(bytes: document.bytes).entry(forKey: "EMPTY_COMMENT")?.value == "plain")
    }

    @Test func aLineAnUnterminatedQuoteWouldSwallowIsRefused() {
        for (text, value) in [("A=\"x\n", "a\"b"), ("A='x\n", "x y")] {
            var document = DotenvDocument(text: text)
            #expect(throws: SecretsError.self) { try document.set(value, forKey: "NEW") }
            #expect(document == DotenvDocument(text: text))
        }
    }
}

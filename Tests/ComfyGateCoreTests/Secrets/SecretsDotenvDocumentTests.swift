import ComfyGateCore
import Testing

@Suite("Secrets: dotenv documents")
struct SecretsDotenvDocumentTests {
    @Test func readsComposeStyleValues() {
        let document = DotenvDocument(
            text: """
                # comment
                PLAIN=abc def   # trailing comment
                HASHY=a#b
                export EXPORTED = value
                SINGLE='$2b$12$x # not a comment'
                DOUBLE="line\\nnext \\"q\\" \\$HOME"
                EMPTY=
                EMPTY_COMMENT= # nothing
                RAW=2%=tVJ6@!Nc(7#VTvj-Bh3^nm0WY-Lij
                DUP=first
                DUP=second
                not a line
                """)
        #expect(document.entry(forKey: "PLAIN")?.value == "abc def")
        #expect(document.entry(forKey: "HASHY")?.value == "a#b")
        #expect(document.entry(forKey: "EXPORTED")?.value == "value")
        #expect(document.entry(forKey: "SINGLE")?.value == "$2b$12$x # not a comment")
        #expect(document.entry(forKey: "SINGLE")?.quoting == .single)
        #expect(document.entry(forKey: "DOUBLE")?.value == "line\nnext \"q\" $HOME")
        #expect(document.entry(forKey: "EMPTY")?.value == "")
        #expect(document.entry(forKey: "EMPTY_COMMENT")?.value == "")
        #expect(document.entry(forKey: "RAW")?.value == "2%=tVJ6@!Nc(7#VTvj-Bh3^nm0WY-Lij")
        #expect(document.entry(forKey: "DUP")?.value == "second")
        #expect(document.entry(forKey: "not") == nil)
    }

    @Test func replacingAValueTouchesOnlyItsBytes() throws {
        let original = "# head\r\nA=1\r\n\r\nexport  TOKEN = old   # keep me\r\nB='x'"
        var document = DotenvDocument(text: original)
        try document.set("$2b$12$abc", forKey: "TOKEN")
        #expect(document.text == "# head\r\nA=1\r\n\r\nexport  TOKEN = '$2b$12$abc'   # keep me\r\nB='x'")
        #expect(document.entry(forKey: "TOKEN")?.value == "$2b$12$abc")
    }

    @Test func appendingKeepsTheFilesLineEndings() throws {
        var crlf = DotenvDocument(text: "A=1\r\nB=2")
        try crlf.set("v", forKey: "C")
        #expect(crlf.text == "A=1\r\nB=2\r\nC=v")
        var empty = DotenvDocument(text: "")
        try empty.set("x y", forKey: "K")
        #expect(empty.text == "K='x y'\n")
    }

    @Test func quotesForCompose() throws {
        #expect(try DotenvDocument.render("abcXYZ019_-./+:,@") == "abcXYZ019_-./+:,@")
        #expect(try DotenvDocument.render("$2b$12$x") == "'$2b$12$x'")
        #expect(try DotenvDocument.render("2%=tVJ6@!Nc(7#VTvj") == "'2%=tVJ6@!Nc(7#VTvj'")
        #expect(try DotenvDocument.render("a b") == "'a b'")
        #expect(throws: SecretsError.self) { try DotenvDocument.render("it's") }
        #expect(throws: SecretsError.self) { try DotenvDocument.render("two\nlines") }
    }

    @Test func writtenValuesReadBackExactly() throws {
        for value in [
            "$2b$12$ubd9tM4L2pvqB/peVpwvyuASqddG9WVoNj0NaAPHYyH57LW.vVjr.", "2%=tVJ6@!Nc(7#VTvj-Bh3^nm0WY-Lij",
            "a \"b\" #c \\d", "plain",
        ] {
            var document = DotenvDocument(text: "X=1 # c\n")
            try document.set(value, forKey: "X")
            #expect(DotenvDocument(bytes: document.bytes).entry(forKey: "X")?.value == value)
        }
    }
}

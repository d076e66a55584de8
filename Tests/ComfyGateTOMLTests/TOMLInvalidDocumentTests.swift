import ComfyGateTOML
import Testing

/// Documents every TOML 1.0 reader must refuse, with the line and a fragment of the reason expected.
@Suite struct TOMLInvalidDocumentTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let text: String
        let line: Int
        let reason: String

        init(_ text: String, line: Int = 1, _ reason: String) {
            self.text = text
            self.line = line
            self.reason = reason
        }

        var testDescription: String { text.debugDescription }
    }

    static let syntax: [Case] = [
        Case("[[[broken", "expected a key, found '['"),
        Case("[broken", "expected ']' to close the header"),
        Case("[[broken]", "expected ']]' to close the header"),
        Case("[[a] ]", "expected ']]'"),
        Case("[]", "expected a key, found ']'"),
        Case("[a]b = 1", "expected a new line after a table header"),
        Case("=", "expected a key, found '='"),
        Case("= 1", "expected a key"),
        Case("key", "expected '=' after a key, found the end of the file"),
        Case("a = 1\nkey value", line: 2, "expected '=' after a key"),
        Case("listen = ", "expected a value, found the end of the file"),
        Case("a =\nb = 1", "expected a value, found a new line"),
        Case("a = 1 b = 2", "expected a new line after a value"),
        Case("a.= 1", "expected a key"),
        Case(".a = 1", "expected a key"),
        Case("a..b = 1", "expected a key"),
        Case("a b = 1", "expected '=' after a key"),
        Case("\"\"\"key\"\"\" = 1", "a multi-line string cannot be a key"),
        Case("a = truee", "expected a new line after a value"),
        Case("a = TRUE", "expected a value"),
        Case("a = yes", "expected a value"),
        Case("a = .5", "expected a value"),
        Case("a = 'x' # ok\nb = \"y\" c", line: 2, "expected a new line after a value"),
    ]

    static let strings: [Case] = [
        Case("a = \"unterminated", "unterminated string"),
        Case("a = 'unterminated", "unterminated string"),
        Case("a = \"line\nbreak\"", "unterminated string"),
        Case("a = \"\"\"never closed", "unterminated string"),
        Case("a = '''never closed\n", "unterminated string"),
        Case(#"a = "\x41""#, "invalid escape sequence"),
        Case(#"a = "\e""#, "invalid escape sequence"),
        Case(#"a = "\ ""#, "invalid escape sequence"),
        Case(#"a = "\u12""#, "\\u needs 4 hexadecimal digits"),
        Case(#"a = "\uD800""#, "is not a Unicode scalar value"),
        Case(#"a = "\U00110000""#, "is not a Unicode scalar value"),
        Case(#"a = "\UFFFFFFFF""#, "is not a Unicode scalar value"),
        Case(#"a = "trailing \"#, "unterminated string"),
        Case("a = \"\"\"a\"\"\"\"\"\"", "too many quotation marks"),
        Case("a = \"\"\"x\\ y\"\"\"", "invalid escape sequence"),
        Case("a = \"nul \u{0} here\"", "control character U+0000 is not allowed in a string"),
        Case("a = 'bell \u{7}'", "control character U+0007"),
        Case("a = \"del \u{7F}\"", "control character U+007F"),
        Case("a = \"\"\"cr\ralone\"\"\"", "a carriage return must be followed by a line feed"),
        Case("a = 1\r", "a carriage return must be followed by a line feed"),
        Case("# comment \u{1}", "control character U+0001 is not allowed in a comment"),
        Case("a = 1 # del \u{7F}", "control character U+007F is not allowed in a comment"),
        Case("a = 1\u{0}", "expected a new line after a value, found control character U+0000"),
        Case("\u{0}", "expected a key, found control character U+0000"),
    ]

    static let numbers: [Case] = [
        Case("a = 01", "leading zeros are not allowed"),
        Case("a = -01", "leading zeros are not allowed"),
        Case("a = 00.5", "leading zeros are not allowed"),
        Case("a = 1__0", "an underscore in a number must sit between two digits"),
        Case("a = 1_", "an underscore in a number must sit between two digits"),
        Case("a = _1", "expected a value"),
        Case("a = 1_.5", "an underscore"),
        Case("a = 1._5", "expected a digit"),
        Case("a = +0x1", "cannot have a sign"),
        Case("a = -0b1", "cannot have a sign"),
        Case("a = 0x", "expected a digit"),
        Case("a = 0x_1", "expected a digit"),
        Case("a = 0X1F", "expected a new line after a value"),
        Case("a = 0o8", "expected a digit"),
        Case("a = 0b102", "expected a new line after a value"),
        Case("a = 9223372036854775808", "integer out of range"),
        Case("a = -9223372036854775809", "integer out of range"),
        Case("a = 0x10000000000000000", "integer out of range"),
        Case("a = 1.", "expected a digit"),
        Case("a = 1e", "expected a digit"),
        Case("a = 1e+", "expected a digit"),
        Case("a = 1.5.2", "expected a new line after a value"),
        Case("a = ++1", "expected a digit"),
        Case("a = -", "expected a digit"),
        Case("a = infinity", "expected a new line after a value"),
        Case("a = NaN", "expected a value"),
    ]

    static let datesAndTimes: [Case] = [
        Case("a = 1979-13-01", "there is no month 13"),
        Case("a = 1979-02-29", "has no day 29"),
        Case("a = 1979-04-31", "has no day 31"),
        Case("a = 1979-1-01", "expected 2 digits"),
        Case("a = 1979-05-27T", "expected 2 digits"),
        Case("a = 1979-05-27T24:00:00", "invalid time"),
        Case("a = 1979-05-27T07:60:00", "invalid time"),
        Case("a = 07:32", "expected ':'"),
        Case("a = 07:32:00.", "expected digits after the decimal point"),
        Case("a = 1979-05-27T07:32:00+7:00", "expected 2 digits"),
        Case("a = 1979-05-27T07:32:00+24:00", "invalid time offset"),
        Case("a = 1979-05-27T07:32:00Zx", "expected a new line after a value"),
    ]

    static let arraysAndInlineTables: [Case] = [
        Case("a = [1, 2", "unterminated array"),
        Case("a = [1 2]", "expected ',' or ']' after an array element"),
        Case("a = [,]", "expected a value, found ','"),
        Case("a = [1,,2]", "expected a value, found ','"),
        Case("a = {", "unterminated inline table"),
        Case("a = { b = 1", "unterminated inline table"),
        Case("a = { b = 1, }", "an inline table cannot end with a comma"),
        Case("a = { b = 1\n}", "an inline table must stay on one line"),
        Case("a = {\nb = 1 }", "an inline table must stay on one line"),
        Case("a = { b = 1 c = 2 }", "expected ',' or '}' in an inline table"),
        Case("a = { b = 1, b = 2 }", "duplicate key b"),
        Case("a = { b.c = 1, b = 2 }", "duplicate key b"),
        Case("a = { b = { c = 1 }, b.d = 2 }", "b is an inline table and cannot be extended"),
    ]

    static let definitions: [Case] = [
        Case("a = 1\na = 2", line: 2, "duplicate key a"),
        Case("\"a\" = 1\na = 2", line: 2, "duplicate key a"),
        Case("a.b = 1\na.b = 2", line: 2, "duplicate key a.b"),
        Case("a = 1\na.b = 2", line: 2, "a already holds a value that is not a table"),
        Case("[a]\n[a]", line: 2, "table [a] is defined twice"),
        Case("[a.b]\n[a]\n[a.b]", line: 3, "table [a.b] is defined twice"),
        Case("[a]\nb = 1\n[a.b]", line: 3, "a.b already holds a value"),
        Case("a.b = 1\n[a]", line: 2, "table [a] was already defined with dotted keys"),
        Case("[fruit]\napple.color = 'red'\n[fruit.apple]", line: 3, "already defined with dotted keys"),
        Case("[a.b]\nc = 1\n[a]\nb.d = 2", line: 4, "table b has its own [header] and cannot be extended with dotted keys"),
        Case("a = { b = 1 }\n[a]", line: 2, "a is an inline table and cannot be extended"),
        Case("a = { b = 1 }\n[a.c]", line: 2, "a is an inline table and cannot be extended"),
        Case("a = { b = 1 }\na.c = 2", line: 2, "a is an inline table and cannot be extended"),
        Case("a = [1]\n[[a]]", line: 2, "a is an array written inline and cannot be extended"),
        Case("a = []\n[a.b]", line: 2, "a already holds a value that is not a table"),
        Case("[[a]]\n[a]", line: 2, "[a] is an array of tables"),
        Case("[a]\n[[a]]", line: 2, "[[a]] names a table, not an array of tables"),
        Case("[[a]]\nb.c = 1\n[a.b]", line: 3, "already defined with dotted keys"),
        Case("a = 1\n[[a]]", line: 2, "a already holds a value that is not an array of tables"),
        Case("[[x]]\nx.y = 1\n[x]", line: 3, "[x] is an array of tables"),
        Case("[t]\n\"a\\nb\" = 1\n\"a\\nb\" = 2", line: 3, "duplicate key \"a\\u000Ab\""),
    ]

    @Test(arguments: syntax + strings + numbers + datesAndTimes + arraysAndInlineTables + definitions)
    func isRefusedWithLineAndReason(_ example: Case) {
        #expect {
            _ = try TOML.parse(example.text)
        } throws: { error in
            guard let error = error as? TOMLError else { return false }
            return error.line == example.line && error.column >= 1 && error.reason.contains(example.reason)
        }
    }

    @Test func errorsNameLineAndColumn() {
        #expect(throws: TOMLError(line: 3, column: 7, reason: "expected '=' after a key, found ':'")) {
            try TOML.parse("a = 1\n\n  key : 1")
        }
        #expect(throws: TOMLError(line: 1, column: 10, reason: "leading zeros are not allowed in a number")) {
            try TOML.parse("\"ééé\" = \t01")
        }
        let error = TOMLError(line: 3, column: 7, reason: "expected '=' after a key")
        #expect(error.message(file: "gate.toml") == "gate.toml:3:7: not valid TOML: expected '=' after a key")
    }

    @Test func deepNestingIsRefusedNotOverflowed() {
        let deep = 100_000
        for text in [
            "a = " + String(repeating: "[", count: deep),
            "a = " + String(repeating: "{ b = ", count: deep),
            "a = " + String(repeating: "[", count: TOML.maximumDepth),
            String(repeating: "[", count: deep),
            "[" + Array(repeating: "a", count: TOML.maximumDepth + 1).joined(separator: ".") + "]",
            Array(repeating: "a", count: deep).joined(separator: ".") + " = 1",
            "[" + Array(repeating: "a", count: 100).joined(separator: ".") + "]\n"
                + Array(repeating: "b", count: 29).joined(separator: ".") + " = 1",
        ] {
            #expect(throws: TOMLError.self, "\(text.prefix(40))") { try TOML.parse(text) }
        }
    }

    @Test func invalidUTF8IsRefused() {
        for bytes: [UInt8] in [
            Array("a = \"".utf8) + [0xC3, 0x28] + Array("\"".utf8),
            Array("a = '".utf8) + [0xED, 0xA0, 0x80] + Array("'".utf8),
            Array("# ".utf8) + [0xC0, 0xAF],
            Array("a = \"".utf8) + [0xF4, 0x90, 0x80, 0x80] + Array("\"".utf8),
            Array("a = \"".utf8) + [0xE2, 0x82],
            [0xFF] + Array(" = 1".utf8),
        ] {
            #expect(throws: TOMLError.self, "\(bytes)") { try TOML.parse(utf8: bytes) }
        }
        #expect(throws: TOMLError(line: 1, column: 5, reason: "invalid UTF-8 (byte 0x80) is not allowed in a comment")) {
            try TOML.parse(utf8: Array("a=1#".utf8) + [0x80])
        }
    }

    @Test func oversizedDocumentsAreRefused() {
        let text = "a = \"" + String(repeating: "x", count: TOML.maximumSize) + "\""
        #expect(throws: TOMLError.self) { try TOML.parse(text) }
    }
}

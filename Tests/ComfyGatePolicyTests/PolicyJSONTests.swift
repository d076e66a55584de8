import ComfyGatePolicy
import Testing

@Suite struct PolicyJSONTests {
    private func parse(_ text: String) throws -> PolicyJSON {
        try PolicyJSON(parsing: Array(text.utf8))
    }

    private func text(_ value: PolicyJSON) -> String {
        String(decoding: value.serialized(), as: UTF8.self)
    }

    private func parseError(_ text: String) -> PolicyJSON.ParseError? {
        parseError(Array(text.utf8))
    }

    private func parseError(_ bytes: [UInt8]) -> PolicyJSON.ParseError? {
        do {
            _ = try PolicyJSON(parsing: bytes)
            return nil
        } catch {
            return error
        }
    }

    // MARK: Round trips

    @Test(arguments: [
        "null", "true", "false", "0", "-0", "12", "-3.25", "1e400", "1E+2", "2.50e-07",
        "123456789012345678901234567890", "0.1000000000000000055511151231257827", "\"\"", "\"text\"",
        "[]", "{}", "[1,[2,[3,{}]],\"x\",null]", #"{"b":1,"a":{"z":[true,false],"y":null},"c":"d"}"#,
    ])
    func compactTextRoundTripsByteForByte(_ source: String) throws {
        #expect(text(try parse(source)) == source)
    }

    @Test func whitespaceAroundAndBetweenTokensIsDropped() throws {
        let value = try parse(" \t\r\n{ \"a\" : [ 1 , 2 ] ,\n\"b\":\ttrue }\n ")
        #expect(text(value) == #"{"a":[1,2],"b":true}"#)
    }

    @Test func objectMembersKeepTheirOrderAndDuplicates() throws {
        let value = try parse(#"{"z":1,"a":2,"m":3,"a":4}"#)
        #expect(value.members?.map(\.key) == ["z", "a", "m", "a"])
        #expect(text(value) == #"{"z":1,"a":2,"m":3,"a":4}"#)
    }

    @Test func numbersKeepTheirLiteralText() throws {
        let value = try parse("[1.0,1,1e2,100,-0.0,9007199254740993]")
        #expect(
            value
                == .array([
                    .number("1.0"), .number("1"), .number("1e2"), .number("100"), .number("-0.0"),
                    .number("9007199254740993"),
                ]))
        #expect(PolicyJSON.number("1.0") != .number("1"))
    }

    @Test func parsesFromAnyByteCollection() throws {
        let bytes = Array(#"{"a":[1,"b"]}"#.utf8)
        let fromSlice = try PolicyJSON(parsing: bytes[...])
        let fromNonContiguous = try PolicyJSON(parsing: bytes.lazy.map { $0 })
        #expect(fromSlice == fromNonContiguous)
        #expect(fromSlice["a"] == .array([.number("1"), .string("b")]))
    }

    // MARK: Strings

    @Test func escapesAreDecoded() throws {
        let value = try parse(#""q\" b\\ s\/ \b\f\n\r\t \u0041\u00e9\u20AC""#)
        #expect(value == .string("q\" b\\ s/ \u{08}\u{0C}\n\r\t Aé€"))
    }

    @Test func surrogatePairEscapesDecodeToOneCharacter() throws {
        #expect(try parse(#""\ud83d\ude00""#) == .string("😀"))
        #expect(try parse(#""a\uD834\uDD1Eb""#) == .string("a𝄞b"))
    }

    @Test(arguments: [
        (#""\ud800""#, "\u{FFFD}"),
        (#""\udc00x""#, "\u{FFFD}x"),
        (#""\ud800\u0041""#, "\u{FFFD}A"),
        (#""\ud800\ud800\udc00""#, "\u{FFFD}\u{10000}"),
    ])
    func loneSurrogatesBecomeReplacementCharacters(_ source: String, _ expected: String) throws {
        #expect(try parse(source) == .string(expected))
    }

    @Test func rawUnicodeRoundTrips() throws {
        let source = #"{"ключ":"значение – 画像 😀","é":"\u0000"}"#
        let value = try parse(source)
        #expect(value["ключ"] == .string("значение – 画像 😀"))
        #expect(text(value) == #"{"ключ":"значение – 画像 😀","é":"\u0000"}"#)
    }

    @Test func serializationEscapesWhatRFC8259Requires() {
        let value = PolicyJSON.object([
            .init(key: "k\"\\", value: .string("a\"b\\c/d\n\r\t\u{08}\u{0C}\u{01}\u{1F} é😀"))
        ])
        #expect(text(value) == #"{"k\"\\":"a\"b\\c/d\n\r\t\b\f\u0001\u001f é😀"}"#)
    }

    @Test func serializedStringsParseBackToTheSameValue() throws {
        let original = PolicyJSON.array([
            .string((0..<0x80).map { String(UnicodeScalar(UInt8($0))) }.joined()),
            .string("\u{7F}\u{80}\u{FFFF}\u{10FFFF}"),
        ])
        #expect(try PolicyJSON(parsing: original.serialized()) == original)
    }

    // MARK: Errors

    @Test(arguments: [
        ("", 0, "expected a value, found the end of the text"),
        ("   ", 3, "expected a value, found the end of the text"),
        ("nul", 0, "expected a value"),
        ("True", 0, "expected a value"),
        ("{} x", 3, "unexpected text after the JSON value"),
        ("1 2", 2, "unexpected text after the JSON value"),
        ("[1,]", 3, "expected a value"),
        ("[1 2]", 3, "expected ',' or ']' in an array"),
        (#"{"a":1,}"#, 7, "expected a string key"),
        (#"{"a" 1}"#, 5, "expected ':' after an object key"),
        (#"{"a":1 "b":2}"#, 7, "expected ',' or '}' in an object"),
        ("{'a':1}", 1, "expected a string key"),
        ("[", 1, "expected a value, found the end of the text"),
        ("01", 1, "a number cannot start with 0 followed by digits"),
        ("-", 1, "expected a digit after a minus sign"),
        ("+1", 0, "expected a value"),
        ("1.", 2, "expected a digit after a decimal point"),
        (".5", 0, "expected a value"),
        ("1e", 2, "expected a digit after an exponent"),
        ("1e+", 3, "expected a digit after an exponent"),
        ("NaN", 0, "expected a value"),
        (#"["abc"#, 1, "unterminated string"),
        (#""a\x""#, 3, "invalid escape in a string"),
        (#""\u12G4""#, 5, "expected four hex digits after \\u"),
        ("\"a\tb\"", 2, "control characters must be escaped in a string"),
    ] as [(String, Int, String)])
    func malformedTextIsRefusedAtItsOffset(_ source: String, _ offset: Int, _ reason: String) {
        #expect(parseError(source) == PolicyJSON.ParseError(offset: offset, reason: reason))
    }

    @Test(arguments: [
        [0x22, 0x61, 0xFF, 0x22],  // never valid in UTF-8
        [0x22, 0x61, 0xC0, 0xAF, 0x22],  // overlong '/'
        [0x22, 0x61, 0xED, 0xA0, 0x80, 0x22],  // an encoded surrogate
        [0x22, 0x61, 0xF4, 0x90, 0x80, 0x80, 0x22],  // above U+10FFFF
        [0x22, 0x61, 0xE2, 0x82, 0x22],  // truncated sequence
        [0x22, 0x61, 0x80, 0x22],  // lone continuation byte
    ] as [[UInt8]])
    func invalidUTF8IsRefusedWhereItStarts(_ bytes: [UInt8]) {
        #expect(parseError(bytes) == PolicyJSON.ParseError(offset: 2, reason: "invalid UTF-8"))
    }

    @Test func nestingUpToTheDepthLimitIsAccepted() throws {
        let depth = PolicyJSON.maximumDepth
        let source = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        #expect(text(try parse(source)) == source)
    }

    @Test func nestingBeyondTheDepthLimitIsRefused() {
        let depth = PolicyJSON.maximumDepth + 1
        let arrays = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        #expect(parseError(arrays)?.offset == depth - 1)
        let objects = String(repeating: #"{"a":"#, count: depth) + "1" + String(repeating: "}", count: depth)
        #expect(parseError(objects)?.reason == "nested deeper than 512 arrays and objects")
    }

    // MARK: Access

    @Test func subscriptReadsTheLastMemberWithTheKey() throws {
        let value = try parse(#"{"a":1,"b":2,"a":3}"#)
        #expect(value["a"] == .number("3"))
        #expect(value["missing"] == nil)
        #expect(PolicyJSON.array([])["a"] == nil)
    }

    @Test func subscriptWriteReplacesTheFirstMemberAndDropsTheOthers() throws {
        var value = try parse(#"{"a":1,"b":2,"a":3,"c":4,"a":5}"#)
        value["a"] = .string("x")
        #expect(text(value) == #"{"a":"x","b":2,"c":4}"#)
    }

    @Test func subscriptWriteAppendsANewKey() throws {
        var value = try parse(#"{"b":1}"#)
        value["a"] = .null
        #expect(text(value) == #"{"b":1,"a":null}"#)
    }

    @Test func subscriptWriteOfNilRemovesEveryMemberWithTheKey() throws {
        var value = try parse(#"{"a":1,"b":2,"a":3}"#)
        value["a"] = nil
        #expect(text(value) == #"{"b":2}"#)
    }

    @Test func subscriptWriteThroughANestedObject() throws {
        var value = try parse(#"{"outer":{"x":1},"y":2}"#)
        value["outer"]?["x"] = .bool(false)
        #expect(text(value) == #"{"outer":{"x":false},"y":2}"#)
    }

    @Test func subscriptWriteOnANonObjectChangesNothing() {
        var value = PolicyJSON.array([.null])
        value["a"] = .null
        #expect(value == .array([.null]))
    }

    @Test func typedAccessorsAnswerOnlyForTheirCase() {
        #expect(PolicyJSON.string("s").stringValue == "s")
        #expect(PolicyJSON.number("1").stringValue == nil)
        #expect(PolicyJSON.array([.null]).arrayValue == [.null])
        #expect(PolicyJSON.object([]).arrayValue == nil)
        #expect(PolicyJSON.object([.init(key: "k", value: .null)]).members == [.init(key: "k", value: .null)])
        #expect(PolicyJSON.array([]).members == nil)
    }

    @Test(arguments: [
        ("null", false), ("false", false), ("true", true), ("0", false), ("-0", false), ("0.0", false),
        ("0e10", false), ("-0.000E-3", false), ("1", true), ("0.01", true), ("-2", true), ("1e-400", true),
        ("10", true), ("\"\"", false), ("\"0\"", true), ("\" \"", true), ("[]", false), ("[0]", true),
        ("{}", false), (#"{"a":null}"#, true),
    ])
    func truthinessFollowsPython(_ source: String, _ truthy: Bool) throws {
        #expect(try parse(source).isTruthy == truthy)
    }
}

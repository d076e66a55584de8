import ComfyGateTOML
import Testing

@Suite struct TOMLValidDocumentTests {
    @Test func emptyDocumentsAndCommentsAreEmptyTables() throws {
        for text in ["", "\n", "# only a comment", "  \t\n# a\r\n\n# b é ✓\n", "\u{FEFF}# after a byte order mark"] {
            #expect(try TOML.parse(text).isEmpty, "\(text.debugDescription)")
        }
    }

    @Test func keysBareQuotedAndDotted() throws {
        let table = try TOML.parse(
            """
            bare_key-1 = 1
            1234 = 2
            "quoted key" = 3
            'literal "key"' = 4
            "" = 5
            a . b."c.d" = 6
            3.14159 = "pi"
            "\\u00e9t\\u00e9" = 7
            """)
        #expect(table["bare_key-1"] == .integer(1))
        #expect(table["1234"] == .integer(2))
        #expect(table["quoted key"] == .integer(3))
        #expect(table["literal \"key\""] == .integer(4))
        #expect(table[""] == .integer(5))
        #expect(table["a"]?.table?["b"]?.table?["c.d"] == .integer(6))
        #expect(table["3"]?.table?["14159"] == .string("pi"))
        #expect(table["été"] == .integer(7))
        #expect(table.keys == ["bare_key-1", "1234", "quoted key", "literal \"key\"", "", "a", "3", "été"])
    }

    @Test func basicStringsAndEveryEscape() throws {
        let table = try TOML.parse(
            #"""
            escapes = "\b\t\n\f\r\"\\ \u00E9 \U0001F600 tab:	end"
            unicode = "ÉTÉ ✓ 😀"
            empty = ""
            """#)
        #expect(table["escapes"] == .string("\u{8}\t\n\u{C}\r\"\\ é 😀 tab:\tend"))
        #expect(table["unicode"] == .string("ÉTÉ ✓ 😀"))
        #expect(table["empty"] == .string(""))
    }

    @Test func literalStrings() throws {
        let table = try TOML.parse(#"path = 'C:\Users\nodejs\templates'"# + "\n" + #"quoted = '<\i\c*\s*>'"#)
        #expect(table["path"] == .string(#"C:\Users\nodejs\templates"#))
        #expect(table["quoted"] == .string(#"<\i\c*\s*>"#))
    }

    @Test func multilineStrings() throws {
        let table = try TOML.parse(
            "basic = \"\"\"\nRoses are red\r\nViolets are blue\"\"\"\n"
                + "folded = \"\"\"\\\n  The quick \\\n\n   brown fox.\\\n  \"\"\"\n"
                + "trailing_space = \"\"\"a \\  \n  b\"\"\"\n"
                + "quotes = \"\"\"Here are two quotation marks: \"\". Simple enough.\"\"\"\n"
                + "ending = \"\"\"\"This,\" she said, \"is just a pointless statement.\"\"\"\"\n"
                + "literal = '''\nThe first newline is\ntrimmed in raw strings.\n   \\n stays'''\n"
                + "literal_quotes = '''Here are fifteen quotation marks: \"\"\"\"\"\"\"\"\"\"\"\"\"\"\"'''\n"
                + "literal_ending = ''''That,' she said, 'is still pointless.''''\n")
        #expect(table["basic"] == .string("Roses are red\nViolets are blue"))
        #expect(table["folded"] == .string("The quick brown fox."))
        #expect(table["trailing_space"] == .string("a b"))
        #expect(table["quotes"] == .string("Here are two quotation marks: \"\". Simple enough."))
        #expect(table["ending"] == .string("\"This,\" she said, \"is just a pointless statement.\""))
        #expect(table["literal"] == .string("The first newline is\ntrimmed in raw strings.\n   \\n stays"))
        #expect(table["literal_quotes"] == .string("Here are fifteen quotation marks: " + String(repeating: "\"", count: 15)))
        #expect(table["literal_ending"] == .string("'That,' she said, 'is still pointless.'"))
    }

    @Test(arguments: [
        ("+99", 99), ("42", 42), ("0", 0), ("-17", -17), ("+0", 0), ("-0", 0), ("1_000", 1000), ("5_349_221", 5_349_221),
        ("0xDEADBEEF", 0xDEAD_BEEF), ("0xdead_beef", 0xDEAD_BEEF), ("0o01234567", 0o1234567), ("0o755", 0o755),
        ("0b11010110", 0b1101_0110), ("0x00", 0), ("9223372036854775807", Int64.max), ("-9223372036854775808", Int64.min),
    ] as [(String, Int64)])
    func integers(_ text: String, _ value: Int64) throws {
        #expect(try TOML.parse("n = \(text)")["n"] == .integer(value))
    }

    @Test(arguments: [
        ("+1.0", 1.0), ("3.1415", 3.1415), ("-0.01", -0.01), ("5e+22", 5e22), ("1e06", 1e6), ("-2E-2", -0.02),
        ("6.626e-34", 6.626e-34), ("224_617.445_991_228", 224_617.445_991_228), ("0.0", 0), ("-0.0", 0), ("0e0", 0),
        ("inf", .infinity), ("+inf", .infinity), ("-inf", -.infinity),
    ] as [(String, Double)])
    func floats(_ text: String, _ value: Double) throws {
        #expect(try TOML.parse("x = \(text)")["x"] == .float(value))
    }

    @Test func notANumber() throws {
        for text in ["nan", "+nan", "-nan"] {
            #expect(try TOML.parse("x = \(text)")["x"]?.float?.isNaN == true)
        }
    }

    @Test func booleans() throws {
        let table = try TOML.parse("yes = true\nno = false")
        #expect(table["yes"] == .boolean(true) && table["no"] == .boolean(false))
    }

    @Test(arguments: [
        ("1979-05-27T07:32:00Z", TOMLDateTime.Kind.offsetDateTime),
        ("1979-05-27T00:32:00-07:00", .offsetDateTime),
        ("1979-05-27T00:32:00.999999+07:00", .offsetDateTime),
        ("1979-05-27 07:32:00z", .offsetDateTime),
        ("1979-05-27t07:32:00", .localDateTime),
        ("1979-05-27T00:32:00.999999", .localDateTime),
        ("2000-02-29", .localDate),
        ("07:32:00", .localTime),
        ("00:32:00.999999", .localTime),
        ("1990-12-31T23:59:60Z", .offsetDateTime),
    ])
    func datesAndTimesKeepTheirText(_ text: String, _ kind: TOMLDateTime.Kind) throws {
        let value = try TOML.parse("when = \(text) # note")["when"]
        #expect(value == .dateTime(TOMLDateTime(kind: kind, text: text)))
    }

    @Test func arrays() throws {
        let table = try TOML.parse(
            """
            integers = [ 1, 2, 3 ]
            colors = [ "red", "yellow", "green", ]
            nested = [ [ 1, 2 ], ["a", 'b'], [] ]
            mixed = [ 0.1, "x", { a = 1 }, 1979-05-27 ]
            multiline = [  # comment
              1,
              # another
              2,   # trailing comma next
            ]
            empty = []
            """)
        #expect(table["integers"] == .array([.integer(1), .integer(2), .integer(3)]))
        #expect(table["colors"] == .array([.string("red"), .string("yellow"), .string("green")]))
        #expect(
            table["nested"] == .array([.array([.integer(1), .integer(2)]), .array([.string("a"), .string("b")]), .array([])]))
        #expect(table["mixed"]?.array?.count == 4)
        #expect(table["mixed"]?.array?[2].table?["a"] == .integer(1))
        #expect(table["multiline"] == .array([.integer(1), .integer(2)]))
        #expect(table["empty"] == .array([]))
    }

    @Test func inlineTables() throws {
        let table = try TOML.parse(
            """
            name = { first = "Tom", last = "Preston-Werner" }
            point = {x=1,y=2}
            animal = { type.name = "pug", list = [
              1, 2 ] }
            empty = {}
            """)
        #expect(table["name"]?.table?["last"] == .string("Preston-Werner"))
        #expect(table["point"]?.table?["y"] == .integer(2))
        #expect(table["animal"]?.table?["type"]?.table?["name"] == .string("pug"))
        #expect(table["animal"]?.table?["list"] == .array([.integer(1), .integer(2)]))
        #expect(table["empty"] == .table(TOMLTable()))
    }

    @Test func tablesAndSubTables() throws {
        let table = try TOML.parse(
            """
            top = 1
            [dog."tater.man"]
            type.name = "pug"
            [ j . "ʞ" . 'l' ]
            [x.y.z.w]
            [x]
            y.extra = true
            [fruit]
            apple.color = "red"
            apple.taste.sweet = true
            [fruit.apple.texture]
            smooth = true
            """)
        #expect(table["top"] == .integer(1))
        #expect(table["dog"]?.table?["tater.man"]?.table?["type"]?.table?["name"] == .string("pug"))
        #expect(table["j"]?.table?["ʞ"]?.table?["l"] == .table(TOMLTable()))
        #expect(table["x"]?.table?["y"]?.table?["extra"] == .boolean(true))
        #expect(table["x"]?.table?["y"]?.table?["z"]?.table?["w"] == .table(TOMLTable()))
        let apple = table["fruit"]?.table?["apple"]?.table
        #expect(apple?["color"] == .string("red"))
        #expect(apple?["taste"]?.table?["sweet"] == .boolean(true))
        #expect(apple?["texture"]?.table?["smooth"] == .boolean(true))
    }

    @Test func arraysOfTables() throws {
        let table = try TOML.parse(
            """
            [[fruits]]
            name = "apple"
            [fruits.physical]
            color = "red"
            [[fruits.varieties]]
            name = "red delicious"
            [[fruits.varieties]]
            name = "granny smith"

            [[fruits]]
            name = "banana"
            [[fruits.varieties]]
            name = "plantain"

            [[products]]
            [[products]]
            sku = 284758393
            """)
        let fruits = try #require(table["fruits"]?.array)
        #expect(fruits.count == 2)
        #expect(fruits[0].table?["physical"]?.table?["color"] == .string("red"))
        #expect(fruits[0].table?["varieties"]?.array?.compactMap { $0.table?["name"]?.string } == ["red delicious", "granny smith"])
        #expect(fruits[1].table?["varieties"]?.array?.count == 1)
        #expect(table["products"] == .array([.table(TOMLTable()), .table(try TOML.parse("sku = 284758393"))]))
    }

    @Test func windowsLineEndingsAndWhitespace() throws {
        let table = try TOML.parse("a = 1\r\n\t[t]  \r\n  b = \"x\"\t# c\r\n")
        #expect(table["a"] == .integer(1))
        #expect(table["t"]?.table?["b"] == .string("x"))
    }

    @Test func nestingUpToTheLimitIsAccepted() throws {
        let depth = TOML.maximumDepth - 1
        let text = "a = " + String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        var value = try #require(try TOML.parse(text)["a"])
        for _ in 1..<depth { value = try #require(value.array?.first) }
        #expect(value == .array([]))
        let header = (1...TOML.maximumDepth).map { "k\($0)" }.joined(separator: ".")
        #expect(try TOML.parse("[\(header)]").count == 1)
    }

    @Test func tablesIterateInDocumentOrderAndCompareWithoutIt() throws {
        let table = try TOML.parse("b = 1\na = 2\nc = 3")
        #expect(table.map(\.key) == ["b", "a", "c"])
        #expect(table == (try TOML.parse("c = 3\na = 2\nb = 1")))
    }
}

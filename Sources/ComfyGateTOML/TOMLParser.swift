/// Reads a TOML 1.0 document from its UTF-8 bytes, in one pass, by recursive descent.
///
/// Recursion happens only for nested arrays and inline tables, whose depth is checked before descending.
struct TOMLParser {
    /// One part of a dotted key, and where it starts (for messages).
    struct KeyPart {
        var name: String
        var offset: Int
    }

    private let bytes: [UInt8]
    private var position = 0
    private let root = TableNode(origin: .header)
    /// The table key/value lines go to: the root, or the one of the last header.
    private var current: TableNode
    /// How deep `current` sits (the parts of its header).
    private var currentDepth = 0

    init(bytes: [UInt8]) {
        self.bytes = bytes
        current = root
    }

    mutating func parseDocument() throws(TOMLError) -> TOMLTable {
        guard bytes.count <= TOML.maximumSize else {
            throw TOMLError(line: 1, column: 1, reason: "the document is larger than \(TOML.maximumSize) bytes")
        }
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { position = 3 }
        while position < bytes.count {
            skipWhitespace()
            switch peek() {
            case UInt8(ascii: "["):
                try parseHeader()
                try expectEndOfLine(after: "a table header")
            case UInt8(ascii: "#"), UInt8(ascii: "\n"), UInt8(ascii: "\r"), nil:
                try expectEndOfLine(after: "a comment")
            default:
                try parseKeyValue(into: current, depth: currentDepth)
                try expectEndOfLine(after: "a value")
            }
        }
        return root.freeze()
    }

    // MARK: Lines, whitespace and comments

    private func peek(_ ahead: Int = 0) -> UInt8? {
        position + ahead < bytes.count ? bytes[position + ahead] : nil
    }

    private func peekIs(_ character: Unicode.Scalar, ahead: Int = 0) -> Bool {
        peek(ahead) == UInt8(ascii: character)
    }

    private mutating func skipWhitespace() {
        while let byte = peek(), byte == .space || byte == .tab { position += 1 }
    }

    /// Consumes a line feed or CR LF if one is next; refuses a carriage return alone.
    private mutating func consumeNewline() throws(TOMLError) -> Bool {
        switch peek() {
        case .lineFeed:
            position += 1
            return true
        case .carriageReturn:
            guard peek(1) == .lineFeed else { throw failure("a carriage return must be followed by a line feed") }
            position += 2
            return true
        default:
            return false
        }
    }

    /// Skips a comment up to (not including) its line end, refusing control characters and invalid UTF-8.
    private mutating func skipComment() throws(TOMLError) {
        position += 1
        while let byte = peek(), byte != .lineFeed {
            if byte == .carriageReturn && peek(1) == .lineFeed { return }
            if byte == .tab || (0x20...0x7E).contains(byte) {
                position += 1
            } else if byte >= 0x80, let length = scalarLength(at: position) {
                position += length
            } else {
                throw failure("\(describe(at: position)) is not allowed in a comment")
            }
        }
    }

    /// After a header, a value or nothing: optional whitespace and comment, then a line end or the end of the file.
    private mutating func expectEndOfLine(after what: String) throws(TOMLError) {
        skipWhitespace()
        if peekIs("#") { try skipComment() }
        guard peek() != nil, try !consumeNewline() else { return }
        throw failure("expected a new line after \(what), found \(describe(at: position))")
    }

    /// Whitespace, comments and line ends, as allowed between array elements.
    private mutating func skipBlankSpace() throws(TOMLError) {
        while true {
            skipWhitespace()
            if peekIs("#") { try skipComment() }
            guard try consumeNewline() else { return }
        }
    }

    // MARK: Keys, headers and key/value pairs

    private mutating func parseKey() throws(TOMLError) -> [KeyPart] {
        var parts: [KeyPart] = []
        while true {
            let start = position
            let name: String
            switch peek() {
            case UInt8(ascii: "\""):
                guard !(peekIs("\"", ahead: 1) && peekIs("\"", ahead: 2)) else {
                    throw failure("a multi-line string cannot be a key")
                }
                name = try parseString(quote: UInt8(ascii: "\""), multiline: false)
            case UInt8(ascii: "'"):
                guard !(peekIs("'", ahead: 1) && peekIs("'", ahead: 2)) else {
                    throw failure("a multi-line string cannot be a key")
                }
                name = try parseString(quote: UInt8(ascii: "'"), multiline: false)
            case let byte? where byte.isBareKeyCharacter:
                while let byte = peek(), byte.isBareKeyCharacter { position += 1 }
                name = String(decoding: bytes[start..<position], as: UTF8.self)
            default:
                throw failure("expected a key, found \(describe(at: position))")
            }
            parts.append(KeyPart(name: name, offset: start))
            guard parts.count <= TOML.maximumDepth else {
                throw failure("a key has more than \(TOML.maximumDepth) parts", at: start)
            }
            skipWhitespace()
            guard peekIs(".") else { return parts }
            position += 1
            skipWhitespace()
        }
    }

    /// `[a.b]` or `[[a.b]]`: makes the named table the current one.
    private mutating func parseHeader() throws(TOMLError) {
        let start = position
        position += 1
        let isArray = peekIs("[")
        if isArray { position += 1 }
        skipWhitespace()
        let key = try parseKey()
        guard peekIs("]") else {
            throw failure("expected '\(isArray ? "]]" : "]")' to close the header, found \(describe(at: position))")
        }
        position += 1
        if isArray {
            guard peekIs("]") else { throw failure("expected ']]' to close the header, found \(describe(at: position))") }
            position += 1
        }
        current = try isArray ? openArrayOfTables(key, at: start) : openTable(key, at: start)
        currentDepth = key.count
    }

    /// `key = value`, added to `table`, which sits `depth` levels deep.
    private mutating func parseKeyValue(into table: TableNode, depth: Int) throws(TOMLError) {
        let key = try parseKey()
        guard peekIs("=") else { throw failure("expected '=' after a key, found \(describe(at: position))") }
        position += 1
        skipWhitespace()
        guard depth + key.count <= TOML.maximumDepth else {
            throw failure("tables nest deeper than \(TOML.maximumDepth) levels", at: key[0].offset)
        }
        let value = try parseValue(depth: depth + key.count)
        try add(value, at: key, into: table)
    }

    // MARK: Building the tables

    /// Adds a value under a dotted key, creating or extending the tables its first parts name.
    private func add(_ value: TOMLValue, at key: [KeyPart], into table: TableNode) throws(TOMLError) {
        var table = table
        for (index, part) in key.dropLast().enumerated() {
            let path = Self.display(key[...index])
            switch table[part.name] {
            case nil:
                let child = TableNode(origin: .dotted)
                table.add(.table(child), for: part.name)
                table = child
            case .table(let child):
                guard child.origin != .header else {
                    throw failure("table \(path) has its own [header] and cannot be extended with dotted keys", at: part.offset)
                }
                child.origin = .dotted
                table = child
            case .arrayOfTables:
                throw failure("\(path) is an array of tables and cannot be extended with dotted keys", at: part.offset)
            case .value(.table):
                throw failure("\(path) is an inline table and cannot be extended", at: part.offset)
            case .value:
                throw failure("\(path) already holds a value that is not a table", at: part.offset)
            }
        }
        let last = key[key.count - 1]
        guard table[last.name] == nil else { throw failure("duplicate key \(Self.display(key[...]))", at: last.offset) }
        table.add(.value(value), for: last.name)
    }

    /// The table a header's parent parts lead to, created as needed; arrays of tables lead to their last table.
    private func parent(of key: [KeyPart]) throws(TOMLError) -> TableNode {
        var table = root
        for (index, part) in key.dropLast().enumerated() {
            let path = Self.display(key[...index])
            switch table[part.name] {
            case nil:
                let child = TableNode(origin: .implicit)
                table.add(.table(child), for: part.name)
                table = child
            case .table(let child):
                table = child
            case .arrayOfTables(let array):
                table = array.tables[array.tables.count - 1]
            case .value(.table):
                throw failure("\(path) is an inline table and cannot be extended", at: part.offset)
            case .value:
                throw failure("\(path) already holds a value that is not a table", at: part.offset)
            }
        }
        return table
    }

    private func openTable(_ key: [KeyPart], at start: Int) throws(TOMLError) -> TableNode {
        let parent = try parent(of: key)
        let name = key[key.count - 1].name
        let path = Self.display(key[...])
        switch parent[name] {
        case nil:
            let table = TableNode(origin: .header)
            parent.add(.table(table), for: name)
            return table
        case .table(let table):
            switch table.origin {
            case .implicit:
                table.origin = .header
                return table
            case .header: throw failure("table [\(path)] is defined twice", at: start)
            case .dotted: throw failure("table [\(path)] was already defined with dotted keys", at: start)
            }
        case .arrayOfTables:
            throw failure("[\(path)] is an array of tables, defined with [[\(path)]]", at: start)
        case .value(.table):
            throw failure("\(path) is an inline table and cannot be extended", at: start)
        case .value:
            throw failure("\(path) already holds a value that is not a table", at: start)
        }
    }

    private func openArrayOfTables(_ key: [KeyPart], at start: Int) throws(TOMLError) -> TableNode {
        let parent = try parent(of: key)
        let name = key[key.count - 1].name
        let path = Self.display(key[...])
        let table = TableNode(origin: .header)
        switch parent[name] {
        case nil:
            parent.add(.arrayOfTables(ArrayOfTablesNode(first: table)), for: name)
        case .arrayOfTables(let array):
            array.tables.append(table)
        case .table:
            throw failure("[[\(path)]] names a table, not an array of tables", at: start)
        case .value(.array):
            throw failure("\(path) is an array written inline and cannot be extended with [[\(path)]]", at: start)
        case .value:
            throw failure("\(path) already holds a value that is not an array of tables", at: start)
        }
        return table
    }

    /// A key as written, for messages: bare parts as they are, others quoted, control characters escaped.
    static func display(_ key: ArraySlice<KeyPart>) -> String {
        key.map { part in
            if !part.name.isEmpty && part.name.utf8.allSatisfy(\.isBareKeyCharacter) { return part.name }
            var quoted = "\""
            for scalar in part.name.unicodeScalars {
                switch scalar {
                case "\"": quoted += "\\\""
                case "\\": quoted += "\\\\"
                case _ where scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || scalar == "\u{2028}"
                    || scalar == "\u{2029}":
                    quoted += "\\u" + hex(scalar.value, digits: 4)
                default: quoted.unicodeScalars.append(scalar)
                }
            }
            return quoted + "\""
        }.joined(separator: ".")
    }

    // MARK: Values

    /// A value whose containers sit `depth` levels deep.
    private mutating func parseValue(depth: Int) throws(TOMLError) -> TOMLValue {
        switch peek() {
        case UInt8(ascii: "\""):
            let isMultiline = peekIs("\"", ahead: 1) && peekIs("\"", ahead: 2)
            return .string(try parseString(quote: UInt8(ascii: "\""), multiline: isMultiline))
        case UInt8(ascii: "'"):
            let isMultiline = peekIs("'", ahead: 1) && peekIs("'", ahead: 2)
            return .string(try parseString(quote: UInt8(ascii: "'"), multiline: isMultiline))
        case UInt8(ascii: "t"):
            try expectWord("true")
            return .boolean(true)
        case UInt8(ascii: "f"):
            try expectWord("false")
            return .boolean(false)
        case UInt8(ascii: "i"):
            try expectWord("inf")
            return .float(.infinity)
        case UInt8(ascii: "n"):
            try expectWord("nan")
            return .float(.nan)
        case UInt8(ascii: "["):
            return .array(try parseArray(depth: depth + 1))
        case UInt8(ascii: "{"):
            return .table(try parseInlineTable(depth: depth + 1))
        case let byte? where byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-") || byte.isDecimalDigit:
            return try parseNumberOrDateTime()
        default:
            throw failure("expected a value, found \(describe(at: position))")
        }
    }

    private mutating func expectWord(_ word: String) throws(TOMLError) {
        guard bytes[position...].starts(with: word.utf8) else {
            throw failure("expected a value, found \(describe(at: position))")
        }
        position += word.utf8.count
    }

    private mutating func parseArray(depth: Int) throws(TOMLError) -> [TOMLValue] {
        guard depth <= TOML.maximumDepth else { throw failure("values nest deeper than \(TOML.maximumDepth) levels") }
        let start = position
        position += 1
        var elements: [TOMLValue] = []
        while true {
            try skipBlankSpace()
            if peekIs("]") {
                position += 1
                return elements
            }
            guard peek() != nil else { throw failure("unterminated array: expected ']'", at: start) }
            elements.append(try parseValue(depth: depth))
            try skipBlankSpace()
            switch peek() {
            case UInt8(ascii: ","):
                position += 1
            case UInt8(ascii: "]"):
                position += 1
                return elements
            case nil:
                throw failure("unterminated array: expected ']'", at: start)
            default:
                throw failure("expected ',' or ']' after an array element, found \(describe(at: position))")
            }
        }
    }

    private mutating func parseInlineTable(depth: Int) throws(TOMLError) -> TOMLTable {
        guard depth <= TOML.maximumDepth else { throw failure("values nest deeper than \(TOML.maximumDepth) levels") }
        let start = position
        position += 1
        let table = TableNode(origin: .header)
        skipWhitespace()
        if peekIs("}") {
            position += 1
            return table.freeze()
        }
        while true {
            skipWhitespace()
            try refuseLineEndInInlineTable(start: start)
            try parseKeyValue(into: table, depth: depth)
            skipWhitespace()
            switch peek() {
            case UInt8(ascii: ","):
                position += 1
                skipWhitespace()
                if peekIs("}") { throw failure("an inline table cannot end with a comma") }
            case UInt8(ascii: "}"):
                position += 1
                return table.freeze()
            default:
                try refuseLineEndInInlineTable(start: start)
                throw failure("expected ',' or '}' in an inline table, found \(describe(at: position))")
            }
        }
    }

    private func refuseLineEndInInlineTable(start: Int) throws(TOMLError) {
        switch peek() {
        case nil: throw failure("unterminated inline table: expected '}'", at: start)
        case .lineFeed, .carriageReturn, UInt8(ascii: "#"): throw failure("an inline table must stay on one line")
        default: return
        }
    }

    // MARK: Strings

    /// A string of any of TOML's four kinds, at its opening quote: basic (`"`, with escapes) or literal (`'`),
    /// on one line or multi-line (three quotes, a newline right after them trimmed, newlines normalised to `\n`).
    private mutating func parseString(quote: UInt8, multiline: Bool) throws(TOMLError) -> String {
        let start = position
        let allowsEscapes = quote == UInt8(ascii: "\"")
        let delimiter = String(decoding: repeatElement(quote, count: multiline ? 3 : 1), as: UTF8.self)
        position += multiline ? 3 : 1
        if multiline { _ = try consumeNewline() }
        var output: [UInt8] = []
        while true {
            switch peek() {
            case quote? where multiline:
                if try closesMultilineString(quote: quote, output: &output) { return String(decoding: output, as: UTF8.self) }
            case quote?:
                position += 1
                return String(decoding: output, as: UTF8.self)
            case UInt8(ascii: "\\") where allowsEscapes && multiline && isLineEndingBackslash():
                position += 1
                while true {
                    skipWhitespace()
                    guard try consumeNewline() else { break }
                }
            case UInt8(ascii: "\\") where allowsEscapes:
                try parseEscape(into: &output)
            case .lineFeed where multiline, .carriageReturn where multiline:
                _ = try consumeNewline()
                output.append(.lineFeed)
            case nil where multiline:
                throw failure("unterminated string: expected \(delimiter)", at: start)
            case nil, .lineFeed, .carriageReturn:
                throw failure("unterminated string: a \(delimiter) string must end on the line it starts", at: start)
            default:
                try copyStringCharacter(into: &output)
            }
        }
    }

    /// At a run of quotes inside a multi-line string: one or two belong to the content; three to five end the
    /// string, the extra ones belonging to the content.
    private mutating func closesMultilineString(quote: UInt8, output: inout [UInt8]) throws(TOMLError) -> Bool {
        var count = 0
        while peek(count) == quote { count += 1 }
        guard count <= 5 else { throw failure("too many quotation marks in a row in a multi-line string") }
        output.append(contentsOf: repeatElement(quote, count: count < 3 ? count : count - 3))
        position += count
        return count >= 3
    }

    /// A backslash followed by optional whitespace and a line end, which trims the line end and what follows.
    private func isLineEndingBackslash() -> Bool {
        var ahead = 1
        while let byte = peek(ahead), byte == .space || byte == .tab { ahead += 1 }
        return peek(ahead) == .lineFeed || (peek(ahead) == .carriageReturn && peek(ahead + 1) == .lineFeed)
    }

    /// Copies one character of a string, refusing control characters (other than tab) and invalid UTF-8.
    private mutating func copyStringCharacter(into output: inout [UInt8]) throws(TOMLError) {
        let byte = bytes[position]
        if byte == .tab || (0x20...0x7E).contains(byte) {
            output.append(byte)
            position += 1
        } else if byte >= 0x80, let length = scalarLength(at: position) {
            output.append(contentsOf: bytes[position..<position + length])
            position += length
        } else {
            throw failure("\(describe(at: position)) is not allowed in a string (escape it)")
        }
    }

    private mutating func parseEscape(into output: inout [UInt8]) throws(TOMLError) {
        let start = position
        position += 1
        guard let byte = peek() else { throw failure("unterminated string", at: start) }
        position += 1
        switch byte {
        case UInt8(ascii: "b"): output.append(0x08)
        case UInt8(ascii: "t"): output.append(.tab)
        case UInt8(ascii: "n"): output.append(.lineFeed)
        case UInt8(ascii: "f"): output.append(0x0C)
        case UInt8(ascii: "r"): output.append(.carriageReturn)
        case UInt8(ascii: "\""): output.append(UInt8(ascii: "\""))
        case UInt8(ascii: "\\"): output.append(UInt8(ascii: "\\"))
        case UInt8(ascii: "u"): try parseUnicodeEscape(digits: 4, start: start, into: &output)
        case UInt8(ascii: "U"): try parseUnicodeEscape(digits: 8, start: start, into: &output)
        default: throw failure("invalid escape sequence \\\(describe(at: position - 1)) in a string", at: start)
        }
    }

    private mutating func parseUnicodeEscape(digits: Int, start: Int, into output: inout [UInt8]) throws(TOMLError) {
        var value: UInt32 = 0
        for _ in 0..<digits {
            guard let byte = peek(), let digit = byte.digitValue(radix: 16) else {
                throw failure("\\\(digits == 4 ? "u" : "U") needs \(digits) hexadecimal digits", at: start)
            }
            value = value << 4 | UInt32(digit)
            position += 1
        }
        guard let scalar = Unicode.Scalar(value) else {
            throw failure("\\\(digits == 4 ? "u" : "U")\(Self.hex(value, digits: digits)) is not a Unicode scalar value", at: start)
        }
        UTF8.encode(scalar) { output.append($0) }
    }

    // MARK: Numbers, dates and times

    private mutating func parseNumberOrDateTime() throws(TOMLError) -> TOMLValue {
        if isDigits(0..<4) && peekIs("-", ahead: 4) { return .dateTime(try parseDateTime()) }
        if isDigits(0..<2) && peekIs(":", ahead: 2) {
            let start = position
            try parseTime()
            return .dateTime(TOMLDateTime(kind: .localTime, text: text(from: start)))
        }
        let start = position
        var text = ""
        if let sign = peek(), sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
            text.unicodeScalars.append(Unicode.Scalar(sign))
            position += 1
            if bytes[position...].starts(with: "inf".utf8) || bytes[position...].starts(with: "nan".utf8) {
                let isInfinity = peekIs("i")
                position += 3
                let magnitude = isInfinity ? Double.infinity : Double.nan
                return .float(sign == UInt8(ascii: "-") ? -magnitude : magnitude)
            }
        }
        if peekIs("0"), let radix = peek(1).flatMap({ Self.radixes[$0] }) {
            guard text.isEmpty else {
                throw failure("hexadecimal, octal and binary integers cannot have a sign", at: start)
            }
            position += 2
            guard let value = Int64(try scanDigits(radix: radix), radix: radix) else {
                throw failure("integer out of range (64-bit)", at: start)
            }
            return .integer(value)
        }
        let integerPart = try scanDigits(radix: 10)
        if integerPart.count > 1 && integerPart.hasPrefix("0") {
            throw failure("leading zeros are not allowed in a number", at: start)
        }
        text += integerPart
        var isFloat = false
        if peekIs(".") {
            position += 1
            text += "." + (try scanDigits(radix: 10))
            isFloat = true
        }
        if peekIs("e") || peekIs("E") {
            position += 1
            text += "e"
            if let sign = peek(), sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
                text.unicodeScalars.append(Unicode.Scalar(sign))
                position += 1
            }
            text += try scanDigits(radix: 10)
            isFloat = true
        }
        if isFloat {
            guard let value = Double(text) else { throw failure("invalid float", at: start) }
            return .float(value)
        }
        guard let value = Int64(text) else { throw failure("integer out of range (64-bit)", at: start) }
        return .integer(value)
    }

    private static let radixes: [UInt8: Int] = [UInt8(ascii: "x"): 16, UInt8(ascii: "o"): 8, UInt8(ascii: "b"): 2]

    /// Digits in `radix`, single underscores allowed between two of them; returns the digits alone.
    private mutating func scanDigits(radix: Int) throws(TOMLError) -> String {
        guard let first = peek(), first.digitValue(radix: radix) != nil else {
            throw failure("expected a digit, found \(describe(at: position))")
        }
        var digits = [first]
        position += 1
        while let byte = peek() {
            if byte.digitValue(radix: radix) != nil {
                digits.append(byte)
                position += 1
            } else if byte == UInt8(ascii: "_") {
                guard peek(1)?.digitValue(radix: radix) != nil else {
                    throw failure("an underscore in a number must sit between two digits")
                }
                position += 1
            } else {
                break
            }
        }
        return String(decoding: digits, as: UTF8.self)
    }

    /// `1979-05-27`, optionally followed by `T` (or `t`, or a space) and a time, optionally with an offset.
    private mutating func parseDateTime() throws(TOMLError) -> TOMLDateTime {
        let start = position
        let year = try fixedDigits(4, then: "-")
        let month = try fixedDigits(2, then: "-")
        let day = try fixedDigits(2)
        guard (1...12).contains(month) else { throw failure("invalid date: there is no month \(month)", at: start) }
        guard (1...Self.days(inMonth: month, year: year)).contains(day) else {
            throw failure("invalid date: month \(month) of \(year) has no day \(day)", at: start)
        }
        let hasTime =
            peekIs("T") || peekIs("t")
            || (peekIs(" ") && isDigits(1..<3) && peekIs(":", ahead: 3))
        guard hasTime else { return TOMLDateTime(kind: .localDate, text: text(from: start)) }
        position += 1
        try parseTime()
        if peekIs("Z") || peekIs("z") {
            position += 1
            return TOMLDateTime(kind: .offsetDateTime, text: text(from: start))
        }
        guard peekIs("+") || peekIs("-") else { return TOMLDateTime(kind: .localDateTime, text: text(from: start)) }
        let offsetStart = position
        position += 1
        let hours = try fixedDigits(2, then: ":")
        let minutes = try fixedDigits(2)
        guard hours <= 23 && minutes <= 59 else { throw failure("invalid time offset", at: offsetStart) }
        return TOMLDateTime(kind: .offsetDateTime, text: text(from: start))
    }

    /// `07:32:00` with optional fractional seconds.
    private mutating func parseTime() throws(TOMLError) {
        let start = position
        let hours = try fixedDigits(2, then: ":")
        let minutes = try fixedDigits(2, then: ":")
        let seconds = try fixedDigits(2)
        guard hours <= 23 && minutes <= 59 && seconds <= 60 else { throw failure("invalid time", at: start) }
        if peekIs(".") {
            position += 1
            guard peek()?.isDecimalDigit == true else { throw failure("expected digits after the decimal point") }
            while peek()?.isDecimalDigit == true { position += 1 }
        }
    }

    /// Exactly `count` decimal digits, then the separator if one is given.
    private mutating func fixedDigits(_ count: Int, then separator: Unicode.Scalar? = nil) throws(TOMLError) -> Int {
        guard isDigits(0..<count) else {
            throw failure("expected \(count) digits in a date or time, found \(describe(at: position))")
        }
        let value = Int(String(decoding: bytes[position..<position + count], as: UTF8.self))!
        position += count
        if let separator {
            guard peekIs(separator) else {
                throw failure("expected '\(separator)' in a date or time, found \(describe(at: position))")
            }
            position += 1
        }
        return value
    }

    private func isDigits(_ range: Range<Int>) -> Bool {
        range.allSatisfy { peek($0)?.isDecimalDigit == true }
    }

    private static func days(inMonth month: Int, year: Int) -> Int {
        switch month {
        case 2: year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    private func text(from start: Int) -> String {
        String(decoding: bytes[start..<position], as: UTF8.self)
    }

    // MARK: Characters and errors

    /// The length of the well-formed UTF-8 sequence at `offset`, or nil (overlong forms, surrogates and values
    /// past U+10FFFF are not well-formed).
    private func scalarLength(at offset: Int) -> Int? {
        let lead = bytes[offset]
        var secondRange: ClosedRange<UInt8> = 0x80...0xBF
        let length: Int
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0: (length, secondRange) = (3, 0xA0...0xBF)
        case 0xED: (length, secondRange) = (3, 0x80...0x9F)
        case 0xE1...0xEF: length = 3
        case 0xF0: (length, secondRange) = (4, 0x90...0xBF)
        case 0xF1...0xF3: length = 4
        case 0xF4: (length, secondRange) = (4, 0x80...0x8F)
        default: return nil
        }
        guard offset + length <= bytes.count, secondRange.contains(bytes[offset + 1]) else { return nil }
        return bytes[offset + 2..<offset + length].allSatisfy { (0x80...0xBF).contains($0) } ? length : nil
    }

    /// The character at `offset` for a message: `'x'`, `a new line`, `U+0000`, `the end of the file`, …
    private func describe(at offset: Int) -> String {
        guard offset < bytes.count else { return "the end of the file" }
        let byte = bytes[offset]
        switch byte {
        case .lineFeed: return "a new line"
        case .space: return "a space"
        case 0x21...0x7E: return "'\(Character(Unicode.Scalar(byte)))'"
        case 0x00...0x7F: return "control character U+\(Self.hex(UInt32(byte), digits: 4))"
        default:
            guard let length = scalarLength(at: offset) else { return "invalid UTF-8 (byte 0x\(Self.hex(UInt32(byte), digits: 2)))" }
            let scalar = String(decoding: bytes[offset..<offset + length], as: UTF8.self).unicodeScalars.first!
            return "U+\(Self.hex(scalar.value, digits: 4))"
        }
    }

    private static func hex(_ value: UInt32, digits: Int) -> String {
        let text = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, digits - text.count)) + text
    }

    /// An error at `offset` (default: the current position), with its line and column.
    private func failure(_ reason: String, at offset: Int? = nil) -> TOMLError {
        let end = min(offset ?? position, bytes.count)
        var line = 1
        var lineStart = 0
        for index in 0..<end where bytes[index] == .lineFeed {
            line += 1
            lineStart = index + 1
        }
        let column = bytes[lineStart..<end].count(where: { $0 & 0xC0 != 0x80 }) + 1
        return TOMLError(line: line, column: column, reason: reason)
    }
}

extension UInt8 {
    fileprivate static let tab = UInt8(ascii: "\t")
    fileprivate static let lineFeed = UInt8(ascii: "\n")
    fileprivate static let carriageReturn = UInt8(ascii: "\r")
    fileprivate static let space = UInt8(ascii: " ")

    fileprivate var isDecimalDigit: Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self) }

    /// Letters, digits, `_` and `-`.
    fileprivate var isBareKeyCharacter: Bool {
        isDecimalDigit || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(self)
            || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(self) || self == UInt8(ascii: "_")
            || self == UInt8(ascii: "-")
    }

    /// The value of this byte as a digit in `radix` (2, 8, 10 or 16), or nil.
    fileprivate func digitValue(radix: Int) -> Int? {
        let value: Int
        switch self {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): value = Int(self - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): value = Int(self - UInt8(ascii: "a")) + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): value = Int(self - UInt8(ascii: "A")) + 10
        default: return nil
        }
        return value < radix ? value : nil
    }
}

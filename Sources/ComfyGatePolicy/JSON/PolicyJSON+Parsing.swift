extension PolicyJSON {
    /// The deepest nesting of arrays and objects a parse accepts.
    public static let maximumDepth = 512

    /// Parses one JSON text (RFC 8259) in UTF-8: a single value with optional whitespace around it.
    ///
    /// Refuses invalid UTF-8, trailing bytes after the value and nesting deeper than ``maximumDepth``. An escaped
    /// lone surrogate (`"\ud800"`) becomes U+FFFD, as a Swift string cannot hold it.
    public init(parsing bytes: some Collection<UInt8>) throws(ParseError) {
        let result =
            bytes.withContiguousStorageIfAvailable(Self.parseDocument)
            ?? Array(bytes).withUnsafeBufferPointer(Self.parseDocument)
        switch result {
        case .success(let value): self = value
        case .failure(let error): throw error
        }
    }

    /// Checks that `bytes` hold one JSON text, as ``init(parsing:)`` would accept it, without building its value.
    static func validate(_ bytes: UnsafeBufferPointer<UInt8>) throws(ParseError) {
        var parser = Parser(bytes: bytes)
        try parser.validDocument()
    }

    private static func parseDocument(_ bytes: UnsafeBufferPointer<UInt8>) -> Result<PolicyJSON, ParseError> {
        var parser = Parser(bytes: bytes)
        do {
            return .success(try parser.document())
        } catch {
            return .failure(error)
        }
    }
}

/// A recursive-descent JSON reader over UTF-8 bytes.
private struct Parser {
    let bytes: UnsafeBufferPointer<UInt8>
    var index = 0
    var depth = 0
    /// Reused for strings that hold escapes.
    var unescaped: [UInt8] = []

    init(bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    mutating func document() throws(PolicyJSON.ParseError) -> PolicyJSON {
        skipWhitespace()
        let value = try value()
        skipWhitespace()
        guard index == bytes.count else { throw failure("unexpected text after the JSON value") }
        return value
    }

    /// ``document()`` without building the value.
    mutating func validDocument() throws(PolicyJSON.ParseError) {
        skipWhitespace()
        try skipValue()
        skipWhitespace()
        guard index == bytes.count else { throw failure("unexpected text after the JSON value") }
    }

    /// Steps over one value, checking it as ``value()`` would.
    private mutating func skipValue() throws(PolicyJSON.ParseError) {
        guard index < bytes.count else { throw failure("expected a value, found the end of the text") }
        switch bytes[index] {
        case ASCII.openBrace, ASCII.openBracket:
            let closing = bytes[index] == ASCII.openBrace ? ASCII.closeBrace : ASCII.closeBracket
            let isObject = closing == ASCII.closeBrace
            try enterContainer()
            skipWhitespace()
            if peek(closing) {
                index += 1
                depth -= 1
                return
            }
            while true {
                if isObject {
                    guard peek(ASCII.quote) else { throw failure("expected a string key") }
                    try scanString()
                    skipWhitespace()
                    guard peek(ASCII.colon) else { throw failure("expected ':' after an object key") }
                    index += 1
                    skipWhitespace()
                }
                try skipValue()
                skipWhitespace()
                if peek(ASCII.comma) {
                    index += 1
                    skipWhitespace()
                } else if peek(closing) {
                    index += 1
                    depth -= 1
                    return
                } else {
                    throw failure(isObject ? "expected ',' or '}' in an object" : "expected ',' or ']' in an array")
                }
            }
        case ASCII.quote: try scanString()
        case ASCII.minus, ASCII.zero...ASCII.nine: try scanNumber()
        default: _ = try value()
        }
    }

    private mutating func value() throws(PolicyJSON.ParseError) -> PolicyJSON {
        guard index < bytes.count else { throw failure("expected a value, found the end of the text") }
        switch bytes[index] {
        case ASCII.openBrace: return try object()
        case ASCII.openBracket: return try array()
        case ASCII.quote: return .string(try string())
        case ASCII.minus, ASCII.zero...ASCII.nine: return try number()
        case UInt8(ascii: "t"): return try literal("true", .bool(true))
        case UInt8(ascii: "f"): return try literal("false", .bool(false))
        case UInt8(ascii: "n"): return try literal("null", .null)
        default: throw failure("expected a value")
        }
    }

    private mutating func object() throws(PolicyJSON.ParseError) -> PolicyJSON {
        try enterContainer()
        var members: [PolicyJSON.Member] = []
        skipWhitespace()
        if peek(ASCII.closeBrace) {
            index += 1
            depth -= 1
            return .object(members)
        }
        while true {
            guard peek(ASCII.quote) else { throw failure("expected a string key") }
            let key = try string()
            skipWhitespace()
            guard peek(ASCII.colon) else { throw failure("expected ':' after an object key") }
            index += 1
            skipWhitespace()
            members.append(PolicyJSON.Member(key: key, value: try value()))
            skipWhitespace()
            if peek(ASCII.comma) {
                index += 1
                skipWhitespace()
            } else if peek(ASCII.closeBrace) {
                index += 1
                depth -= 1
                return .object(members)
            } else {
                throw failure("expected ',' or '}' in an object")
            }
        }
    }

    private mutating func array() throws(PolicyJSON.ParseError) -> PolicyJSON {
        try enterContainer()
        var elements: [PolicyJSON] = []
        skipWhitespace()
        if peek(ASCII.closeBracket) {
            index += 1
            depth -= 1
            return .array(elements)
        }
        while true {
            elements.append(try value())
            skipWhitespace()
            if peek(ASCII.comma) {
                index += 1
                skipWhitespace()
            } else if peek(ASCII.closeBracket) {
                index += 1
                depth -= 1
                return .array(elements)
            } else {
                throw failure("expected ',' or ']' in an array")
            }
        }
    }

    /// Steps over the opening bracket or brace, counting the nesting.
    private mutating func enterContainer() throws(PolicyJSON.ParseError) {
        guard depth < PolicyJSON.maximumDepth else {
            throw failure("nested deeper than \(PolicyJSON.maximumDepth) arrays and objects")
        }
        depth += 1
        index += 1
    }

    private mutating func literal(_ word: StaticString, _ value: PolicyJSON) throws(PolicyJSON.ParseError)
        -> PolicyJSON
    {
        let expected = UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
        guard bytes.count - index >= expected.count,
            UnsafeBufferPointer(rebasing: bytes[index..<index + expected.count]).elementsEqual(expected)
        else { throw failure("expected a value") }
        index += expected.count
        return value
    }

    private mutating func number() throws(PolicyJSON.ParseError) -> PolicyJSON {
        let start = index
        try scanNumber()
        return .number(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self))
    }

    /// Steps over a number literal, checking its grammar.
    private mutating func scanNumber() throws(PolicyJSON.ParseError) {
        if peek(ASCII.minus) { index += 1 }
        if peek(ASCII.zero) {
            index += 1
            if peekDigit() { throw failure("a number cannot start with 0 followed by digits") }
        } else {
            try digits(after: "a minus sign")
        }
        if peek(UInt8(ascii: ".")) {
            index += 1
            try digits(after: "a decimal point")
        }
        if peek(UInt8(ascii: "e")) || peek(UInt8(ascii: "E")) {
            index += 1
            if peek(UInt8(ascii: "+")) || peek(ASCII.minus) { index += 1 }
            try digits(after: "an exponent")
        }
    }

    private mutating func digits(after what: String) throws(PolicyJSON.ParseError) {
        guard peekDigit() else { throw failure("expected a digit after \(what)") }
        repeat { index += 1 } while peekDigit()
    }

    /// Reads a string from its opening quote. Unescaped runs are validated as UTF-8 and copied in one piece.
    private mutating func string() throws(PolicyJSON.ParseError) -> String {
        let opening = index
        guard let run = try scanString() else { return String(decoding: unescaped, as: UTF8.self) }
        return String(decoding: UnsafeBufferPointer(rebasing: bytes[(opening + 1)..<run]), as: UTF8.self)
    }

    /// Steps over a string from its opening quote, checking it. Returns where the text ends when it holds no
    /// escapes; otherwise nil, with the decoded text in `unescaped`.
    @discardableResult
    private mutating func scanString() throws(PolicyJSON.ParseError) -> Int? {
        let opening = index
        index += 1
        var runStart = index
        var hasEscapes = false
        while index < bytes.count {
            let byte = bytes[index]
            if byte == ASCII.quote {
                let end = index
                index += 1
                guard hasEscapes else { return end }
                unescaped.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<end]))
                return nil
            } else if byte == ASCII.backslash {
                if !hasEscapes {
                    hasEscapes = true
                    unescaped.removeAll(keepingCapacity: true)
                }
                unescaped.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<index]))
                try escape()
                runStart = index
            } else if byte < 0x20 {
                throw failure("control characters must be escaped in a string")
            } else if byte < 0x80 {
                index += 1
            } else {
                try multiByteCharacter()
            }
        }
        throw PolicyJSON.ParseError(offset: opening, reason: "unterminated string")
    }

    /// Decodes the escape at the backslash into `unescaped`.
    private mutating func escape() throws(PolicyJSON.ParseError) {
        index += 1
        guard index < bytes.count else { throw failure("unterminated string") }
        let simple: UInt8? =
            switch bytes[index] {
            case ASCII.quote: ASCII.quote
            case ASCII.backslash: ASCII.backslash
            case UInt8(ascii: "/"): UInt8(ascii: "/")
            case UInt8(ascii: "b"): 0x08
            case UInt8(ascii: "f"): 0x0C
            case UInt8(ascii: "n"): 0x0A
            case UInt8(ascii: "r"): 0x0D
            case UInt8(ascii: "t"): 0x09
            default: nil
            }
        if let simple {
            unescaped.append(simple)
            index += 1
            return
        }
        guard bytes[index] == UInt8(ascii: "u") else { throw failure("invalid escape in a string") }
        index += 1
        let unit = try hexCodeUnit()
        var scalar = Unicode.Scalar(unit)
        if (0xD800...0xDBFF).contains(unit), followsLowSurrogateEscape() {
            index += 2
            let low = try hexCodeUnit()
            scalar = Unicode.Scalar(0x10000 + ((UInt32(unit) - 0xD800) << 10) + (UInt32(low) - 0xDC00))
        }
        UTF8.encode(scalar ?? "\u{FFFD}") { unescaped.append($0) }
    }

    /// Whether `\u` and a low surrogate (`DC00`–`DFFF`) come next.
    private func followsLowSurrogateEscape() -> Bool {
        guard bytes.count - index >= 6, bytes[index] == ASCII.backslash, bytes[index + 1] == UInt8(ascii: "u")
        else { return false }
        var probe = self
        probe.index += 2
        guard let unit = try? probe.hexCodeUnit() else { return false }
        return (0xDC00...0xDFFF).contains(unit)
    }

    private mutating func hexCodeUnit() throws(PolicyJSON.ParseError) -> UInt16 {
        var unit: UInt16 = 0
        for _ in 0..<4 {
            guard index < bytes.count else { throw failure("expected four hex digits after \\u") }
            let byte = bytes[index]
            let digit: UInt8 =
                switch byte {
                case ASCII.zero...ASCII.nine: byte - ASCII.zero
                case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
                default: throw failure("expected four hex digits after \\u")
                }
            unit = unit << 4 | UInt16(digit)
            index += 1
        }
        return unit
    }

    /// Steps over one well-formed UTF-8 sequence of two to four bytes (Unicode table 3-7).
    private mutating func multiByteCharacter() throws(PolicyJSON.ParseError) {
        let lead = bytes[index]
        let (length, secondRange): (Int, ClosedRange<UInt8>) =
            switch lead {
            case 0xC2...0xDF: (2, 0x80...0xBF)
            case 0xE0: (3, 0xA0...0xBF)
            case 0xE1...0xEC, 0xEE...0xEF: (3, 0x80...0xBF)
            case 0xED: (3, 0x80...0x9F)
            case 0xF0: (4, 0x90...0xBF)
            case 0xF1...0xF3: (4, 0x80...0xBF)
            case 0xF4: (4, 0x80...0x8F)
            default: throw failure("invalid UTF-8")
            }
        guard bytes.count - index >= length, secondRange.contains(bytes[index + 1]) else {
            throw failure("invalid UTF-8")
        }
        for offset in 2..<length where !(0x80...0xBF).contains(bytes[index + offset]) {
            throw failure("invalid UTF-8")
        }
        index += length
    }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    private func peek(_ byte: UInt8) -> Bool {
        index < bytes.count && bytes[index] == byte
    }

    private func peekDigit() -> Bool {
        index < bytes.count && (ASCII.zero...ASCII.nine).contains(bytes[index])
    }

    private func failure(_ reason: String) -> PolicyJSON.ParseError {
        PolicyJSON.ParseError(offset: index, reason: reason)
    }
}

/// The bytes the grammar turns on.
private enum ASCII {
    static let openBrace = UInt8(ascii: "{")
    static let closeBrace = UInt8(ascii: "}")
    static let openBracket = UInt8(ascii: "[")
    static let closeBracket = UInt8(ascii: "]")
    static let colon = UInt8(ascii: ":")
    static let comma = UInt8(ascii: ",")
    static let quote = UInt8(ascii: "\"")
    static let backslash = UInt8(ascii: "\\")
    static let minus = UInt8(ascii: "-")
    static let zero = UInt8(ascii: "0")
    static let nine = UInt8(ascii: "9")
}

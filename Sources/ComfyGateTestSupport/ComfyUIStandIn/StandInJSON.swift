/// A JSON value that keeps object key order, parsed and printed the way ComfyUI's Python side does
/// (`json.dumps` defaults: `", "` and `": "` separators, non-ASCII escaped as `\uXXXX`).
public enum StandInJSON: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([StandInJSON])
    case object([(String, StandInJSON)])

    public static func == (lhs: StandInJSON, rhs: StandInJSON) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.int(let a), .int(let b)): return a == b
        case (.double(let a), .double(let b)): return a == b
        case (.string(let a), .string(let b)): return a == b
        case (.array(let a), .array(let b)): return a == b
        case (.object(let a), .object(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    /// Value of an object member (the last one with that key, as Python's dict keeps).
    public subscript(key: String) -> StandInJSON? {
        guard case .object(let members) = self else { return nil }
        return members.last(where: { $0.0 == key })?.1
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var intValue: Int? {
        switch self {
        case .int(let i): return i
        case .double(let d) where d == d.rounded() && abs(d) < 1e15: return Int(d)
        default: return nil
        }
    }

    public var arrayValue: [StandInJSON]? {
        if case .array(let a) = self { return a }
        return nil
    }

    public var objectValue: [(String, StandInJSON)]? {
        if case .object(let o) = self { return o }
        return nil
    }

    /// Python's `dict[key] = value` on object members: replaced in place, else appended.
    static func setMember(_ key: String, _ value: StandInJSON, in members: inout [(String, StandInJSON)]) {
        if let i = members.firstIndex(where: { $0.0 == key }) { members[i].1 = value } else { members.append((key, value)) }
    }

    /// Python truthiness.
    var isTruthy: Bool {
        switch self {
        case .null: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .double(let d): return d != 0
        case .string(let s): return !s.isEmpty
        case .array(let a): return !a.isEmpty
        case .object(let o): return !o.isEmpty
        }
    }

    // MARK: Printing

    /// Serialised like Python's `json.dumps(value)`.
    public var serialized: String {
        var out = ""
        Self.write(self, into: &out)
        return out
    }

    private static func write(_ value: StandInJSON, into out: inout String) {
        switch value {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d):
            if d.isNaN {
                out += "NaN"
            } else if d.isInfinite {
                out += d < 0 ? "-Infinity" : "Infinity"
            } else {
                out += "\(d)"
            }
        case .string(let s): writeString(s, into: &out)
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += ", " }
                write(item, into: &out)
            }
            out += "]"
        case .object(let members):
            out += "{"
            for (i, (k, v)) in members.enumerated() {
                if i > 0 { out += ", " }
                writeString(k, into: &out)
                out += ": "
                write(v, into: &out)
            }
            out += "}"
        }
    }

    private static func writeString(_ s: String, into out: inout String) {
        out += "\""
        for unit in s.utf16 {
            switch unit {
            case 0x22: out += "\\\""
            case 0x5C: out += "\\\\"
            case 0x0A: out += "\\n"
            case 0x0D: out += "\\r"
            case 0x09: out += "\\t"
            case 0x08: out += "\\b"
            case 0x0C: out += "\\f"
            case 0x20..<0x7F: out.unicodeScalars.append(Unicode.Scalar(UInt8(unit)))
            default:
                let hex = String(unit, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            }
        }
        out += "\""
    }

    // MARK: Parsing

    public struct ParseError: Error, Sendable {
        public let offset: Int
    }

    /// Parses JSON text (RFC 8259, plus Python's `NaN`/`Infinity`), keeping object key order.
    public static func parse(_ bytes: some Collection<UInt8>) throws -> StandInJSON {
        var parser = Parser(bytes: Array(bytes))
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        guard parser.index == parser.bytes.count else { throw ParseError(offset: parser.index) }
        return value
    }

    public static func parse(_ text: String) throws -> StandInJSON {
        try parse(Array(text.utf8))
    }

    private struct Parser {
        let bytes: [UInt8]
        var index = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        mutating func skipWhitespace() {
            while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
        }

        func fail() -> ParseError { ParseError(offset: index) }

        mutating func expect(_ literal: String) throws {
            for b in literal.utf8 {
                guard index < bytes.count, bytes[index] == b else { throw fail() }
                index += 1
            }
        }

        mutating func parseValue(depth: Int) throws -> StandInJSON {
            guard depth < 512, index < bytes.count else { throw fail() }
            switch bytes[index] {
            case UInt8(ascii: "{"):
                index += 1
                var members: [(String, StandInJSON)] = []
                skipWhitespace()
                if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
                    index += 1
                    return .object(members)
                }
                while true {
                    skipWhitespace()
                    guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw fail() }
                    let key = try parseString()
                    skipWhitespace()
                    try expect(":")
                    skipWhitespace()
                    let value = try parseValue(depth: depth + 1)
                    members.append((key, value))
                    skipWhitespace()
                    guard index < bytes.count else { throw fail() }
                    if bytes[index] == UInt8(ascii: ",") {
                        index += 1
                        continue
                    }
                    if bytes[index] == UInt8(ascii: "}") {
                        index += 1
                        return .object(members)
                    }
                    throw fail()
                }
            case UInt8(ascii: "["):
                index += 1
                var items: [StandInJSON] = []
                skipWhitespace()
                if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
                    index += 1
                    return .array(items)
                }
                while true {
                    skipWhitespace()
                    items.append(try parseValue(depth: depth + 1))
                    skipWhitespace()
                    guard index < bytes.count else { throw fail() }
                    if bytes[index] == UInt8(ascii: ",") {
                        index += 1
                        continue
                    }
                    if bytes[index] == UInt8(ascii: "]") {
                        index += 1
                        return .array(items)
                    }
                    throw fail()
                }
            case UInt8(ascii: "\""):
                return .string(try parseString())
            case UInt8(ascii: "t"):
                try expect("true")
                return .bool(true)
            case UInt8(ascii: "f"):
                try expect("false")
                return .bool(false)
            case UInt8(ascii: "n"):
                try expect("null")
                return .null
            case UInt8(ascii: "N"):
                try expect("NaN")
                return .double(.nan)
            case UInt8(ascii: "I"):
                try expect("Infinity")
                return .double(.infinity)
            default:
                return try parseNumber()
            }
        }

        mutating func parseNumber() throws -> StandInJSON {
            let start = index
            if index < bytes.count, bytes[index] == UInt8(ascii: "-") {
                index += 1
                if index < bytes.count, bytes[index] == UInt8(ascii: "I") {
                    try expect("Infinity")
                    return .double(-.infinity)
                }
            }
            var isDouble = false
            var digits = 0
            while index < bytes.count {
                let b = bytes[index]
                if b >= 0x30 && b <= 0x39 {
                    digits += 1
                } else if b == UInt8(ascii: ".") || b == UInt8(ascii: "e") || b == UInt8(ascii: "E")
                    || ((b == UInt8(ascii: "+") || b == UInt8(ascii: "-")) && isDouble)
                {
                    isDouble = true
                } else {
                    break
                }
                index += 1
            }
            guard digits > 0 else { throw ParseError(offset: start) }
            let text = String(decoding: bytes[start..<index], as: UTF8.self)
            if !isDouble, let i = Int(text) { return .int(i) }
            guard let d = Double(text) else { throw ParseError(offset: start) }
            return .double(d)
        }

        mutating func parseHex4() throws -> UInt16 {
            guard index + 4 <= bytes.count,
                let v = UInt16(String(decoding: bytes[index..<index + 4], as: UTF8.self), radix: 16)
            else { throw fail() }
            index += 4
            return v
        }

        mutating func parseString() throws -> String {
            index += 1  // opening quote
            var units: [UInt16] = []
            var raw: [UInt8] = []
            func flushRaw() {
                if !raw.isEmpty {
                    units.append(contentsOf: String(decoding: raw, as: UTF8.self).utf16)
                    raw.removeAll()
                }
            }
            while true {
                guard index < bytes.count else { throw fail() }
                let b = bytes[index]
                index += 1
                if b == UInt8(ascii: "\"") { break }
                if b < 0x20 { throw fail() }
                if b != UInt8(ascii: "\\") {
                    raw.append(b)
                    continue
                }
                flushRaw()
                guard index < bytes.count else { throw fail() }
                let e = bytes[index]
                index += 1
                switch e {
                case UInt8(ascii: "\""): units.append(0x22)
                case UInt8(ascii: "\\"): units.append(0x5C)
                case UInt8(ascii: "/"): units.append(0x2F)
                case UInt8(ascii: "b"): units.append(0x08)
                case UInt8(ascii: "f"): units.append(0x0C)
                case UInt8(ascii: "n"): units.append(0x0A)
                case UInt8(ascii: "r"): units.append(0x0D)
                case UInt8(ascii: "t"): units.append(0x09)
                case UInt8(ascii: "u"): units.append(try parseHex4())
                default: throw fail()
                }
            }
            flushRaw()
            return String(decoding: units, as: UTF16.self)
        }
    }
}

extension StandInJSON: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral, ExpressibleByFloatLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: StandInJSON...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, StandInJSON)...) { self = .object(elements) }
    public init(nilLiteral: ()) { self = .null }
    public init(floatLiteral value: Double) { self = .double(value) }
}

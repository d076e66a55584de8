/// A dotenv file as Docker Compose v2 reads it, kept byte for byte so that one value can be replaced without
/// touching anything else (comments, order, blank lines, CRLF or LF, a missing final newline).
///
/// Reading follows Compose: `KEY=value`, an optional `export ` prefix, spaces around `=`; unquoted values end
/// at a ` #` comment and lose trailing blanks; single-quoted values are literal; double-quoted values know the
/// escapes `\n`, `\r`, `\t`, `\\`, `\"`, `\'` and `\$`. When a key appears twice, the last one wins.
public struct DotenvDocument: Sendable, Equatable {
    /// How a value was written.
    public enum Quoting: Sendable, Equatable {
        case none
        case single
        case double
    }

    /// One `KEY=value` assignment.
    public struct Entry: Sendable, Equatable {
        public var key: String
        /// The value Compose sees (quotes removed, escapes decoded), before any `$` interpolation.
        public var value: String
        public var quoting: Quoting
        /// The bytes of the value as written, quotes included.
        var valueRange: Range<Int>
    }

    /// The file's bytes, unchanged.
    public private(set) var bytes: [UInt8]
    public private(set) var entries: [Entry] = []

    public init(bytes: [UInt8]) {
        self.bytes = bytes
        self.entries = Self.parse(bytes)
    }

    public init(text: String) { self.init(bytes: Array(text.utf8)) }

    /// The text of the file.
    public var text: String { String(decoding: bytes, as: UTF8.self) }

    /// The last assignment of `key`, as Compose would use it.
    public func entry(forKey key: String) -> Entry? { entries.last { $0.key == key } }

    /// Sets `key` to `value`: replaces the value of its last assignment in place (keeping any `export `,
    /// spacing and trailing comment) or appends a line using the file's own line ending (and, if the file has
    /// no final newline, without adding one).
    /// - Throws: ``SecretsError`` when the value cannot be written so that Compose reads it back exactly.
    ///   Also when the file would then read differently for any other key, as when an unterminated quote earlier
    ///   in it would swallow an appended line.
    public mutating func set(_ value: String, forKey key: String) throws(SecretsError) {
        let rendered = Array(try Self.render(value).utf8)
        var edited = bytes
        if let entry = entry(forKey: key) {
            edited.replaceSubrange(entry.valueRange, with: rendered)
        } else {
            let newline: [UInt8] = usesCRLF ? [13, 10] : [10]
            let line = Array(key.utf8) + [UInt8(ascii: "=")] + rendered
            // A file without a final newline keeps lacking one.
            if let last = edited.last, last != 10 { edited += newline + line } else { edited += line + newline }
        }
        let reread = Self.parse(edited)
        var expected = Self.values(entries)
        expected[key] = value
        guard Self.values(reread) == expected else {
            throw SecretsError("\(key) cannot be set without changing how the rest of the file reads (an unterminated quote?)")
        }
        bytes = edited
        entries = reread
    }

    /// What Compose sees: each key's last value.
    private static func values(_ entries: [Entry]) -> [String: String] {
        Dictionary(entries.map { ($0.key, $0.value) }, uniquingKeysWith: { $1 })
    }

    /// Whether the file's first line ends with CRLF.
    var usesCRLF: Bool {
        guard let newline = bytes.firstIndex(of: 10) else { return false }
        return newline > 0 && bytes[newline - 1] == 13
    }

    /// Characters written without quotes; everything else is single-quoted.
    static let plain = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-./+:,@".utf8)

    /// A value as it must appear after `KEY=` for Compose to read it back exactly: plain characters as they are,
    /// anything else inside single quotes, where Compose neither interpolates `$` nor processes escapes.
    /// - Throws: ``SecretsError`` for values containing a single quote or a line break, which this writer refuses
    ///   rather than relying on escape rules that differ between dotenv readers.
    public static func render(_ value: String) throws(SecretsError) -> String {
        let utf8 = value.utf8
        if utf8.contains(UInt8(ascii: "'")) || utf8.contains(10) || utf8.contains(13) {
            throw SecretsError(
                "a value containing a single quote or a line break cannot be written safely to a dotenv file")
        }
        if !utf8.isEmpty, utf8.allSatisfy(plain.contains) { return value }
        return "'" + value + "'"
    }

    // MARK: Parsing

    private static func isBlank(_ byte: UInt8) -> Bool { byte == 32 || byte == 9 }

    private static let keyCharacters = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-".utf8)

    private static func parse(_ bytes: [UInt8]) -> [Entry] {
        var entries: [Entry] = []
        var position = 0
        let count = bytes.count
        func skipBlanks() { while position < count, isBlank(bytes[position]) { position += 1 } }
        func skipLine() {
            while position < count, bytes[position] != 10 { position += 1 }
            if position < count { position += 1 }
        }
        func lineEnd(from start: Int) -> Int {
            var end = start
            while end < count, bytes[end] != 10 { end += 1 }
            if end > start, bytes[end - 1] == 13 { end -= 1 }
            return end
        }
        while position < count {
            skipBlanks()
            if position >= count { break }
            if bytes[position] == UInt8(ascii: "#") || bytes[position] == 10 || bytes[position] == 13 {
                skipLine()
                continue
            }
            let export = Array("export".utf8)
            if bytes[position...].starts(with: export), position + export.count < count,
                isBlank(bytes[position + export.count])
            {
                position += export.count
                skipBlanks()
            }
            let keyStart = position
            while position < count, keyCharacters.contains(bytes[position]) { position += 1 }
            let key = String(decoding: bytes[keyStart..<position], as: UTF8.self)
            skipBlanks()
            guard !key.isEmpty, position < count, bytes[position] == UInt8(ascii: "=") else {
                skipLine()
                continue
            }
            position += 1
            let afterEquals = position
            skipBlanks()
            let valueStart = position
            let quote = position < count ? bytes[position] : 0
            if quote == UInt8(ascii: "'"), let close = bytes[(position + 1)...].firstIndex(of: quote) {
                let value = String(decoding: bytes[(position + 1)..<close], as: UTF8.self)
                entries.append(Entry(key: key, value: value, quoting: .single, valueRange: valueStart..<(close + 1)))
                position = close + 1
            } else if quote == UInt8(ascii: "\""), let (value, end) = doubleQuoted(bytes, from: position + 1) {
                entries.append(Entry(key: key, value: value, quoting: .double, valueRange: valueStart..<end))
                position = end
            } else {
                var end = lineEnd(from: position)
                var scan = position
                while scan < end {
                    if bytes[scan] == UInt8(ascii: "#"), scan > 0, isBlank(bytes[scan - 1]) {
                        end = scan
                        break
                    }
                    scan += 1
                }
                while end > valueStart, isBlank(bytes[end - 1]) { end -= 1 }
                let value = String(decoding: bytes[valueStart..<end], as: UTF8.self)
                // An empty value is replaced right after `=`: before blanks, a new value would run into a ` #` comment.
                let range = end > valueStart ? valueStart..<end : afterEquals..<afterEquals
                entries.append(Entry(key: key, value: value, quoting: .none, valueRange: range))
                position = end
            }
            skipLine()
        }
        return entries
    }

    /// Decodes a double-quoted value starting after its opening quote; the end is just past the closing quote.
    private static func doubleQuoted(_ bytes: [UInt8], from start: Int) -> (String, Int)? {
        var decoded: [UInt8] = []
        var position = start
        while position < bytes.count {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                return (String(decoding: decoded, as: UTF8.self), position + 1)
            }
            if byte == UInt8(ascii: "\\"), position + 1 < bytes.count {
                let next = bytes[position + 1]
                switch next {
                case UInt8(ascii: "n"): decoded.append(10)
                case UInt8(ascii: "r"): decoded.append(13)
                case UInt8(ascii: "t"): decoded.append(9)
                case UInt8(ascii: "\\"), UInt8(ascii: "\""), UInt8(ascii: "'"), UInt8(ascii: "$"): decoded.append(next)
                default: decoded += [byte, next]
                }
                position += 2
                continue
            }
            decoded.append(byte)
            position += 1
        }
        return nil
    }
}

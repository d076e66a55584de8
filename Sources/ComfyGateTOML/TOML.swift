/// A strict, memory-safe reader of TOML 1.0 documents.
///
/// Every valid document parses; every invalid one is refused with a ``TOMLError`` naming the line, the column
/// and the reason. Nesting is capped at ``maximumDepth`` levels and documents at ``maximumSize`` bytes, so no
/// input can exhaust the stack or memory.
public enum TOML {
    /// The deepest nesting of tables and arrays a document may reach, counting every key part and bracket.
    public static let maximumDepth = 128
    /// The largest document accepted, in bytes of UTF-8.
    public static let maximumSize = 4 << 20

    /// Parses a document.
    public static func parse(_ text: String) throws(TOMLError) -> TOMLTable {
        try parse(utf8: Array(text.utf8))
    }

    /// Parses a document given as bytes, which must be valid UTF-8 (an initial byte order mark is skipped).
    public static func parse(utf8 bytes: [UInt8]) throws(TOMLError) -> TOMLTable {
        var parser = TOMLParser(bytes: bytes)
        return try parser.parseDocument()
    }
}

/// Why a document is not valid TOML, and where.
public struct TOMLError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The line of the problem, from 1.
    public var line: Int
    /// The column of the problem, from 1, counted in Unicode scalars.
    public var column: Int
    /// A plain-language reason, e.g. `expected '=' after a key`.
    public var reason: String

    public init(line: Int, column: Int, reason: String) {
        self.line = line
        self.column = column
        self.reason = reason
    }

    /// `3:7: expected '=' after a key`.
    public var description: String { "\(line):\(column): \(reason)" }

    /// The error as a command reports it: `gate.toml:3:7: not valid TOML: expected '=' after a key`.
    public func message(file: String) -> String { "\(file):\(line):\(column): not valid TOML: \(reason)" }
}

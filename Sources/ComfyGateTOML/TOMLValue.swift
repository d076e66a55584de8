/// A value of a TOML document.
public enum TOMLValue: Sendable, Equatable {
    case string(String)
    case integer(Int64)
    case float(Double)
    case boolean(Bool)
    /// An offset or local date-time, a local date or a local time, kept as written.
    case dateTime(TOMLDateTime)
    case array([TOMLValue])
    case table(TOMLTable)

    /// The string, if this is one.
    public var string: String? {
        if case .string(let value) = self { value } else { nil }
    }

    /// The integer, if this is one.
    public var integer: Int64? {
        if case .integer(let value) = self { value } else { nil }
    }

    /// The float, if this is one.
    public var float: Double? {
        if case .float(let value) = self { value } else { nil }
    }

    /// The boolean, if this is one.
    public var boolean: Bool? {
        if case .boolean(let value) = self { value } else { nil }
    }

    /// The date or time, if this is one.
    public var dateTime: TOMLDateTime? {
        if case .dateTime(let value) = self { value } else { nil }
    }

    /// The elements, if this is an array (an array of tables included).
    public var array: [TOMLValue]? {
        if case .array(let value) = self { value } else { nil }
    }

    /// The table, if this is one (an inline table included).
    public var table: TOMLTable? {
        if case .table(let value) = self { value } else { nil }
    }
}

/// A date, time or date-time, as written in the document (`1979-05-27T07:32:00Z`, `07:32:00`, …).
public struct TOMLDateTime: Sendable, Equatable, CustomStringConvertible {
    /// Which of TOML's four forms the value takes.
    public enum Kind: Sendable, Equatable {
        case offsetDateTime
        case localDateTime
        case localDate
        case localTime
    }

    public var kind: Kind
    /// The value exactly as written.
    public var text: String

    public init(kind: Kind, text: String) {
        self.kind = kind
        self.text = text
    }

    public var description: String { text }
}

/// A table: keys, in the order the document defines them, and their values.
public struct TOMLTable: Sendable, Equatable, Sequence {
    /// The keys in document order.
    public private(set) var keys: [String] = []
    private var values: [String: TOMLValue] = [:]

    public init() {}

    /// Adds `value` under a new `key`; a key already present keeps its place and takes the new value.
    public mutating func set(_ value: TOMLValue, for key: String) {
        if values.updateValue(value, forKey: key) == nil { keys.append(key) }
    }

    public subscript(key: String) -> TOMLValue? { values[key] }

    public var count: Int { keys.count }

    public var isEmpty: Bool { keys.isEmpty }

    /// Tables are equal when they hold the same keys and values, whatever their order.
    public static func == (left: TOMLTable, right: TOMLTable) -> Bool { left.values == right.values }

    public func makeIterator() -> some IteratorProtocol<(key: String, value: TOMLValue)> {
        keys.lazy.map { key in (key: key, value: values[key]!) }.makeIterator()
    }
}

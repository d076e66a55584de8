/// A JSON value that keeps object members in the order they were sent, and numbers as the text they were sent as.
///
/// ComfyUI's answers are Python dicts, ordered by insertion (history paging depends on that order), and may hold
/// the same key twice; both survive a parse and a `serialized()` round trip unchanged.
public enum PolicyJSON: Sendable, Equatable {
    case null
    case bool(Bool)
    /// A number as its literal JSON text (`-1.50e3`), so it round-trips exactly. Two numbers are equal only when
    /// their texts are. Must hold a valid JSON number literal.
    case number(String)
    case string(String)
    case array([PolicyJSON])
    /// The members in order; a key may occur more than once.
    case object([Member])

    /// One key and value of an object.
    public struct Member: Sendable, Equatable {
        public var key: String
        public var value: PolicyJSON

        public init(key: String, value: PolicyJSON) {
            self.key = key
            self.value = value
        }
    }

    /// Why a text is not JSON, and the byte offset (from 0) where that shows.
    public struct ParseError: Error, Sendable, Equatable {
        public var offset: Int
        public var reason: String

        public init(offset: Int, reason: String) {
            self.offset = offset
            self.reason = reason
        }
    }

    /// The value of an object's member named `key`, read and written with Python dict semantics.
    ///
    /// Reading gives the last member with that key (what Python keeps), or nil if there is none or this is not
    /// an object. Writing a value replaces the first member with that key and drops the others, or appends a new
    /// member; writing nil removes every member with that key. Writing to a value that is not an object does
    /// nothing.
    public subscript(key: String) -> PolicyJSON? {
        get {
            guard case .object(let members) = self else { return nil }
            return members.last { $0.key == key }?.value
        }
        set {
            guard case .object(var members) = self else { return }
            self = .null  // lets `members` be mutated in place rather than copied
            if let newValue {
                if let first = members.firstIndex(where: { $0.key == key }) {
                    members[first].value = newValue
                    members[(first + 1)...].removeAll { $0.key == key }
                } else {
                    members.append(Member(key: key, value: newValue))
                }
            } else {
                members.removeAll { $0.key == key }
            }
            self = .object(members)
        }
    }

    /// The text of a string, or nil for any other value.
    public var stringValue: String? {
        guard case .string(let text) = self else { return nil }
        return text
    }

    /// The elements of an array, or nil for any other value.
    public var arrayValue: [PolicyJSON]? {
        guard case .array(let elements) = self else { return nil }
        return elements
    }

    /// The members of an object in order, or nil for any other value.
    public var members: [Member]? {
        guard case .object(let members) = self else { return nil }
        return members
    }

    /// Whether Python would take the value as true: `false`, `null`, any zero, `""`, `[]` and `{}` are false.
    public var isTruthy: Bool {
        switch self {
        case .null: false
        case .bool(let value): value
        case .number(let literal): !Self.isZero(literal)
        case .string(let text): !text.isEmpty
        case .array(let elements): !elements.isEmpty
        case .object(let members): !members.isEmpty
        }
    }

    /// Whether a number literal denotes zero: every digit before the exponent is `0`.
    private static func isZero(_ literal: String) -> Bool {
        for byte in literal.utf8 {
            switch byte {
            case UInt8(ascii: "e"), UInt8(ascii: "E"): return true
            case UInt8(ascii: "1")...UInt8(ascii: "9"): return false
            default: continue
            }
        }
        return true
    }
}

/// The page `GET /history?max_items=…&offset=…` asks for, taken as ComfyUI 0.3.64 takes it
/// (`PromptQueue.get_history`), so the gateway can page a filtered history itself.
///
/// Oldest entries come first. A negative `offset` (or none) with a `max_items` means "the last `max_items`"; with
/// no `max_items` every entry from `offset` on is kept. A `max_items` of 0 or less still keeps one entry when the
/// offset is explicit and inside the list (ComfyUI checks the count after adding an entry), and none otherwise.
public struct HistoryPage: Sendable, Equatable {
    /// `max_items`; nil when absent (no limit).
    public var maxItems: Int?
    /// `offset`; -1 when absent, as ComfyUI defaults it.
    public var offset: Int

    /// Every entry: what ComfyUI answers with neither parameter.
    public static let all = Self(maxItems: nil, offset: -1)

    public init(maxItems: Int?, offset: Int) {
        self.maxItems = maxItems
        self.offset = offset
    }

    /// The page from the query's raw values (nil when absent), each read as Python's `int()` reads it.
    ///
    /// ComfyUI answers a value `int()` refuses (`""`, `"1.5"`, `"ten"`) with a bare 500; the gateway refuses it
    /// with 400 `{"error": "max_items must be an integer"}` (or `offset`) instead, as it is the client's mistake.
    public init(queryMaxItems: String?, queryOffset: String?) throws(PolicyRefusal) {
        maxItems = try queryMaxItems.map { text throws(PolicyRefusal) in try Self.integer(text, named: "max_items") }
        offset = try queryOffset.map { text throws(PolicyRefusal) in try Self.integer(text, named: "offset") } ?? -1
    }

    /// The positions of the entries on this page, among `count` entries.
    public func positions(among count: Int) -> Range<Int> {
        var first = offset
        if first < 0, let maxItems { first = count - maxItems }
        first = max(first, 0)
        guard first < count else { return count..<count }
        guard let maxItems else { return first..<count }
        return first..<min(count, first + max(maxItems, 1))
    }

    private static func integer(_ text: String, named name: String) throws(PolicyRefusal) -> Int {
        guard let value = PythonInteger.parse(text) else { throw .badRequest("\(name) must be an integer") }
        return value
    }
}

/// [newer] The page `GET /api/jobs?limit=…&offset=…` asks for, checked as ComfyUI's `get_jobs` checks it, so the
/// gateway can page a filtered job list itself.
public struct JobsPage: Sendable, Equatable {
    /// `limit`, at least 1; nil when absent (no limit).
    public var limit: Int?
    /// `offset`, at least 0 (ComfyUI takes a negative one as 0).
    public var offset: Int

    /// Every job: what ComfyUI answers with neither parameter.
    public static let all = Self(limit: nil, offset: 0)

    public init(limit: Int?, offset: Int) {
        self.limit = limit
        self.offset = offset
    }

    /// The page from the query's raw values (nil when absent), refused with ComfyUI's own 400 answers:
    /// `limit must be an integer`, `limit must be a positive integer`, `offset must be an integer`.
    public init(queryLimit: String?, queryOffset: String?) throws(PolicyRefusal) {
        if let queryLimit {
            guard let value = PythonInteger.parse(queryLimit) else { throw .badRequest("limit must be an integer") }
            guard value > 0 else { throw .badRequest("limit must be a positive integer") }
            limit = value
        } else {
            limit = nil
        }
        if let queryOffset {
            guard let value = PythonInteger.parse(queryOffset) else { throw .badRequest("offset must be an integer") }
            offset = max(value, 0)
        } else {
            offset = 0
        }
    }
}

/// Reads a query value as Python's `int(text)` does.
enum PythonInteger {
    /// Values beyond this magnitude (about 2.9e17) are held at it: no history or job list comes near, and neither
    /// reading digits nor page arithmetic can overflow.
    static let magnitudeLimit = 1 << 58

    /// The integer `text` spells, or nil when `int()` would raise: optional surrounding whitespace, an optional
    /// sign, then decimal digits (any script's) with single underscores allowed between them.
    static func parse(_ text: String) -> Int? {
        let scalars = Array(text.unicodeScalars)
        guard let start = scalars.firstIndex(where: { !isSpace($0) }),
            let end = scalars.lastIndex(where: { !isSpace($0) })
        else { return nil }
        var digits = scalars[start...end]
        let negative = digits.first == "-"
        if negative || digits.first == "+" { digits = digits.dropFirst() }
        guard digits.first != "_", digits.last != "_" else { return nil }
        var magnitude = 0
        var previousWasUnderscore = false
        for scalar in digits {
            if scalar == "_" {
                guard !previousWasUnderscore else { return nil }
                previousWasUnderscore = true
                continue
            }
            previousWasUnderscore = false
            guard scalar.properties.numericType == .decimal, let digit = scalar.properties.numericValue else {
                return nil
            }
            magnitude = min(magnitude * 10 + Int(digit), magnitudeLimit)
        }
        guard !digits.isEmpty else { return nil }
        return negative ? -magnitude : magnitude
    }

    /// Python's `str.isspace`: Unicode white space plus the ASCII separators U+001C…U+001F.
    private static func isSpace(_ scalar: Unicode.Scalar) -> Bool {
        scalar.properties.isWhitespace || (0x1C...0x1F).contains(scalar.value)
    }
}

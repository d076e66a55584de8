/// A JSON text checked once, then read by position: the members and elements of its objects and arrays are
/// located without building their values. A large answer (ComfyUI's whole history) is cut by a field a few levels
/// inside each item, and what is kept goes on as the very bytes ComfyUI wrote.
///
/// Every walk below relies on the check made at ``init(_:)``: the text is valid JSON, so a string ends at the first
/// unescaped quote and a container at its matching bracket.
struct JSONOutline {
    /// One member of an object: its key, and where its key literal and its value lie in ``bytes``.
    struct Member {
        let key: String
        let keyLiteral: Range<Int>
        let value: Range<Int>
    }

    /// One step down into a value: an object's member by key (the last of that name, as Python keeps it), or an
    /// array's element by position.
    enum Step {
        case key(String)
        case index(Int)
    }

    let bytes: [UInt8]
    /// The whole value, without the whitespace around it.
    let root: Range<Int>

    /// Checks `bytes` as ``PolicyJSON/init(parsing:)`` would, without building the value.
    init(_ bytes: [UInt8]) throws(PolicyJSON.ParseError) {
        let failure = bytes.withUnsafeBufferPointer { buffer -> PolicyJSON.ParseError? in
            do throws(PolicyJSON.ParseError) {
                try PolicyJSON.validate(buffer)
                return nil
            } catch {
                return error
            }
        }
        if let failure { throw failure }
        self.bytes = bytes
        var start = 0
        var end = bytes.count
        while Self.isWhitespace(bytes[start]) { start += 1 }
        while Self.isWhitespace(bytes[end - 1]) { end -= 1 }
        root = start..<end
    }

    /// The members of the object at `value`, in order; nil when it is not an object.
    func members(of value: Range<Int>) -> [Member]? {
        guard bytes[value.lowerBound] == UInt8(ascii: "{") else { return nil }
        var members: [Member] = []
        var index = skippingWhitespace(from: value.lowerBound + 1)
        while bytes[index] == UInt8(ascii: "\"") {
            let keyEnd = end(ofStringAt: index)
            let valueStart = skippingWhitespace(from: skippingWhitespace(from: keyEnd) + 1)  // past the colon
            let valueEnd = end(ofValueAt: valueStart)
            members.append(Member(key: key(index..<keyEnd), keyLiteral: index..<keyEnd, value: valueStart..<valueEnd))
            index = skippingWhitespace(from: valueEnd)
            if bytes[index] == UInt8(ascii: ",") { index = skippingWhitespace(from: index + 1) }
        }
        return members
    }

    /// The elements of the array at `value`, in order; nil when it is not an array.
    func elements(of value: Range<Int>) -> [Range<Int>]? {
        guard bytes[value.lowerBound] == UInt8(ascii: "[") else { return nil }
        var elements: [Range<Int>] = []
        var index = skippingWhitespace(from: value.lowerBound + 1)
        while bytes[index] != UInt8(ascii: "]") {
            let end = end(ofValueAt: index)
            elements.append(index..<end)
            index = skippingWhitespace(from: end)
            if bytes[index] == UInt8(ascii: ",") { index = skippingWhitespace(from: index + 1) }
        }
        return elements
    }

    /// The value reached from `value` by `path`, or nil where a step finds no such member or element.
    func find(_ path: [Step], in value: Range<Int>) -> Range<Int>? {
        var current = value
        for step in path {
            switch step {
            case .key(let key):
                guard let member = members(of: current)?.last(where: { $0.key == key }) else { return nil }
                current = member.value
            case .index(let position):
                guard let elements = elements(of: current), elements.indices.contains(position) else { return nil }
                current = elements[position]
            }
        }
        return current
    }

    /// The value at `range`, built.
    func value(_ range: Range<Int>) -> PolicyJSON {
        (try? PolicyJSON(parsing: bytes[range])) ?? .null
    }

    /// An object of these members, each written as it was sent.
    func object(of members: some Sequence<Member>) -> [UInt8] {
        var output: [UInt8] = [UInt8(ascii: "{")]
        for (position, member) in members.enumerated() {
            if position > 0 { output.append(UInt8(ascii: ",")) }
            output.append(contentsOf: bytes[member.keyLiteral])
            output.append(UInt8(ascii: ":"))
            output.append(contentsOf: bytes[member.value])
        }
        output.append(UInt8(ascii: "}"))
        return output
    }

    /// An array of these elements, each written as it was sent.
    func array(of elements: some Sequence<Range<Int>>) -> [UInt8] {
        var output: [UInt8] = [UInt8(ascii: "[")]
        for (position, element) in elements.enumerated() {
            if position > 0 { output.append(UInt8(ascii: ",")) }
            output.append(contentsOf: bytes[element])
        }
        output.append(UInt8(ascii: "]"))
        return output
    }

    // MARK: Walking

    /// The text of the key literal at `literal`.
    private func key(_ literal: Range<Int>) -> String {
        let text = bytes[(literal.lowerBound + 1)..<(literal.upperBound - 1)]
        guard text.contains(UInt8(ascii: "\\")) else { return String(decoding: text, as: UTF8.self) }
        return value(literal).stringValue ?? ""
    }

    /// Where the value starting at `start` ends.
    private func end(ofValueAt start: Int) -> Int {
        switch bytes[start] {
        case UInt8(ascii: "\""):
            return end(ofStringAt: start)
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            var depth = 0
            var index = start
            while true {
                switch bytes[index] {
                case UInt8(ascii: "\""):
                    index = end(ofStringAt: index)
                    continue
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    depth -= 1
                    if depth == 0 { return index + 1 }
                default:
                    break
                }
                index += 1
            }
        default:
            var index = start
            while index < bytes.count {
                switch bytes[index] {
                case UInt8(ascii: ","), UInt8(ascii: "]"), UInt8(ascii: "}"): return index
                case let byte where Self.isWhitespace(byte): return index
                default: index += 1
                }
            }
            return index
        }
    }

    /// Where the string whose opening quote is at `start` ends (past its closing quote).
    private func end(ofStringAt start: Int) -> Int {
        var index = start + 1
        while bytes[index] != UInt8(ascii: "\"") {
            index += bytes[index] == UInt8(ascii: "\\") ? 2 : 1
        }
        return index + 1
    }

    private func skippingWhitespace(from start: Int) -> Int {
        var index = start
        while index < bytes.count, Self.isWhitespace(bytes[index]) { index += 1 }
        return index
    }

    private static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09
    }
}

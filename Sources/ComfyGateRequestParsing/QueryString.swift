/// Byte-preserving reads and edits of a raw query string (`a=1&b=2`, no leading `?`).
///
/// Pairs are split at the bytes `&` and `=`, as ComfyUI's HTTP server splits them — never at `Character`s, which
/// would glue `&` to a combining mark after it (or a prepended mark before it) and hide a `token` pair.
public enum QueryString {
    /// The percent-decoded value of the first `name=` parameter.
    public static func firstValue(of name: String, in query: String) -> String? {
        for pair in query.utf8.split(separator: ampersand, omittingEmptySubsequences: true) {
            let (key, value) = split(pair)
            if decode(key) == name { return decode(value) }
        }
        return nil
    }

    /// The query without any `name` parameter, every other byte as sent; nil when nothing is left.
    public static func removing(_ name: String, from query: String) -> String? {
        removing(name, fromQuery: query.utf8[...])
    }

    /// A URL (absolute or a path) without any `name` parameter in its query; everything else as sent.
    public static func removing(_ name: String, fromURL url: String) -> String {
        let bytes = url.utf8
        let fragmentStart = bytes.firstIndex(of: UInt8(ascii: "#")) ?? bytes.endIndex
        guard let queryStart = bytes[..<fragmentStart].firstIndex(of: UInt8(ascii: "?")) else { return url }
        let kept = removing(name, fromQuery: bytes[bytes.index(after: queryStart)..<fragmentStart])
        let query = kept.map { "?" + $0 } ?? ""
        return String(decoding: bytes[..<queryStart], as: UTF8.self) + query + String(decoding: bytes[fragmentStart...], as: UTF8.self)
    }

    private static let ampersand = UInt8(ascii: "&")

    private static func removing(_ name: String, fromQuery query: Substring.UTF8View) -> String? {
        let kept = query.split(separator: ampersand, omittingEmptySubsequences: false).filter { decode(split($0).key) != name }
        let joined = Array(kept.joined(separator: [ampersand]))
        return joined.isEmpty ? nil : String(decoding: joined, as: UTF8.self)
    }

    private static func split(_ pair: Substring.UTF8View) -> (key: Substring.UTF8View, value: Substring.UTF8View) {
        guard let equals = pair.firstIndex(of: UInt8(ascii: "=")) else { return (pair, pair[pair.endIndex...]) }
        return (pair[..<equals], pair[pair.index(after: equals)...])
    }

    /// `+` as a space, then percent escapes; a malformed escape leaves the text as it was.
    static func decode(_ bytes: Substring.UTF8View) -> String {
        let spaced = bytes.map { $0 == UInt8(ascii: "+") ? UInt8(ascii: " ") : $0 }
        return PercentEncoding.decode(spaced) ?? String(decoding: spaced, as: UTF8.self)
    }
}

/// Percent-decoding without Foundation.
public enum PercentEncoding {
    /// The bytes with every `%XX` escape replaced, as UTF-8 text; nil for a malformed escape or invalid UTF-8.
    public static func decode(_ bytes: some Collection<UInt8>) -> String? {
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        var iterator = bytes.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                output.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(hexDigitValue), let low = iterator.next().flatMap(hexDigitValue) else { return nil }
            output.append(high << 4 | low)
        }
        return String(validating: output, as: UTF8.self)
    }

    /// Decodes a string's percent escapes; nil when one is malformed or the result is not UTF-8.
    public static func decode(_ text: String) -> String? {
        decode(Array(text.utf8))
    }

    /// The value of an ASCII hex digit (either case), or nil for any other byte.
    public static func hexDigitValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

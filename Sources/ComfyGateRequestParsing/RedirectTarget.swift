/// Where a browser may be sent after signing in: a path on this site and nothing a browser could read as
/// another site.
///
/// Browsers parse `Location` with the WHATWG URL parser, which drops tabs and newlines anywhere, reads `\` as
/// `/`, resolves dot segments and treats a leading `//` as "another host". So a target is accepted only when it
/// is printable ASCII without `\`, starts with a single `/`, and — as sent and after every round of percent
/// decoding — has no control character, no backslash, no empty or dot path segment. Anything else becomes `/`.
public enum RedirectTarget {
    /// `next` when it is a safe same-site path, else `/`.
    public static func sanitize(_ next: String?) -> String {
        guard let next, isSafe(next) else { return "/" }
        return next
    }

    /// Whether `target` is a path on this site in every browser's reading.
    public static func isSafe(_ target: String) -> Bool {
        let bytes = Array(target.utf8)
        guard bytes.first == UInt8(ascii: "/"), bytes.count <= maxLength,
            bytes.allSatisfy({ (0x21...0x7E).contains($0) && $0 != UInt8(ascii: "\\") })
        else { return false }
        var text = target
        for _ in 0..<maxDecodingRounds {
            guard isSafeDecoded(text) else { return false }
            guard text.utf8.contains(UInt8(ascii: "%")) else { return true }
            guard let decoded = PercentEncoding.decode(text) else { return false }
            if decoded == text { return true }
            text = decoded
        }
        // Still escaped after so many rounds: nobody needs that, and it could hide anything.
        return false
    }

    /// The longest target kept; longer ones go to `/`.
    static let maxLength = 2048
    static let maxDecodingRounds = 4

    /// One reading of the target: the path has no control characters, backslashes, empty segments (`//`, which a
    /// leading position makes a host) or dot segments.
    private static func isSafeDecoded(_ text: String) -> Bool {
        let scalars = text.unicodeScalars
        guard scalars.first == "/" else { return false }
        if scalars.contains(where: { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) || $0 == "\\" }) { return false }
        let pathEnd = text.firstIndex(where: { $0 == "?" || $0 == "#" }) ?? text.endIndex
        let segments = text[..<pathEnd].split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        for (index, segment) in segments.enumerated() {
            let isLast = index == segments.count - 1
            if segment.isEmpty && !isLast { return false }
            if segment == "." || segment == ".." { return false }
        }
        return true
    }
}

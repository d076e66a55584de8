/// The request target of an HTTP/1.1 request line, as the gateway accepts it.
public enum RequestTarget {
    /// Whether a target may be handled: origin form (`/path?query`), absolute form (`http://host/path`) or `*`,
    /// made of printable ASCII only, without a fragment (RFC 9112 §3.2: spaces, control characters, DEL, raw
    /// non-ASCII bytes and `#` must be percent-encoded). Anything else is answered with 400, never forwarded.
    public static func isAcceptable(_ target: String) -> Bool {
        let bytes = target.utf8
        guard bytes.allSatisfy({ (0x21...0x7E).contains($0) && $0 != UInt8(ascii: "#") }) else { return false }
        if bytes.first == UInt8(ascii: "/") || target == "*" { return true }
        let lowercased = target.lowercased()
        return lowercased.hasPrefix("http://") || lowercased.hasPrefix("https://")
    }
}

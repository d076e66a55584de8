/// A `Range: bytes=…` request header (RFC 9110 §14.1.2), read for a representation of known size.
public enum ByteRange {
    /// What a `Range` header asks of a body of `size` bytes.
    public enum Request: Sendable, Equatable {
        /// No usable range (none sent, several ranges, or not a `bytes` range): the whole body, 200.
        case whole
        /// One satisfiable range: those bytes, 206.
        case part(Range<Int>)
        /// A range the body cannot satisfy: 416.
        case unsatisfiable
    }

    /// Reads `header` (nil when absent). Multiple ranges and other units are ignored, as a server may; a malformed
    /// single range is too.
    public static func request(_ header: String?, size: Int) -> Request {
        guard let header, header.hasPrefix("bytes="), !header.contains(",") else { return .whole }
        let spec = header.dropFirst(6).split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard spec.count == 2 else { return .whole }
        let first = spec[0].trimmingSpaces, last = spec[1].trimmingSpaces
        if first.isEmpty {
            guard let suffix = Int(last), suffix >= 0 else { return .whole }
            guard suffix > 0, size > 0 else { return .unsatisfiable }
            return .part(max(0, size - suffix)..<size)
        }
        guard let start = Int(first), start >= 0 else { return .whole }
        let end: Int
        if last.isEmpty {
            end = size - 1
        } else {
            guard let stated = Int(last), stated >= start else { return .whole }
            end = min(stated, size - 1)
        }
        guard start < size else { return .unsatisfiable }
        return .part(start..<(end + 1))
    }
}

extension Substring {
    fileprivate var trimmingSpaces: Substring {
        var text = self
        while text.first == " " { text.removeFirst() }
        while text.last == " " { text.removeLast() }
        return text
    }
}

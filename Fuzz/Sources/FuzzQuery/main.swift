import ComfyGateRequestParsing
import FuzzSupport

/// Query handling, checked byte by byte as ComfyUI's HTTP server splits a query: the `token` parameter the
/// gateway reads is the one it strips, stripping keeps every other pair exactly (in a query and in a whole URL),
/// and percent-encoding round-trips.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzQuery(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = String(decoding: fuzzInput(data, size), as: UTF8.self)
    let bytes = Array(text.utf8)
    let ampersand = UInt8(ascii: "&")

    // As a query string.
    let pairs = bytes.split(separator: ampersand, omittingEmptySubsequences: false)
    let kept = Array(pairs.filter { !isTokenPair($0) }.joined(separator: [ampersand]))
    let removed = QueryString.removing("token", from: text)
    precondition(removed.map { Array($0.utf8) } == (kept.isEmpty ? nil : kept),
        "removing token from \(text.debugDescription) gave \(removed.debugDescription)")
    let presented = QueryString.firstValue(of: "token", in: text)
    precondition((presented != nil) == pairs.contains(where: isTokenPair),
        "reading token from \(text.debugDescription) gave \(presented.debugDescription)")

    // As a URL: the bytes before `?` and from `#` on stay as they are, and no token is left in between.
    let fragmentStart = bytes.firstIndex(of: UInt8(ascii: "#")) ?? bytes.endIndex
    let queryStart = bytes[..<fragmentStart].firstIndex(of: UInt8(ascii: "?")) ?? fragmentStart
    let url = Array(QueryString.removing("token", fromURL: text).utf8)
    let (base, fragment) = (bytes[..<queryStart], bytes[fragmentStart...])
    precondition(url.starts(with: base) && url.reversed().starts(with: fragment.reversed()) && url.count >= base.count + fragment.count,
        "removing token from the URL \(text.debugDescription) changed more than its query")
    let urlQuery = url[base.count..<(url.count - fragment.count)]
    precondition(urlQuery.isEmpty || (urlQuery.first == UInt8(ascii: "?")
            && !urlQuery.dropFirst().split(separator: ampersand).contains(where: isTokenPair)),
        "a token is left in the URL \(String(decoding: url, as: UTF8.self).debugDescription)")

    // Percent-encoding round-trips, and a token sent encoded is read back as it was.
    let encoded = percentEncoded(bytes)
    precondition(PercentEncoding.decode(encoded) == text, "decoding \(encoded) did not give back \(text.debugDescription)")
    if !bytes.contains(UInt8(ascii: "%")) { precondition(PercentEncoding.decode(text) == text) }
    precondition(QueryString.firstValue(of: "token", in: "a=1&token=\(encoded)&token=x") == text)
    return 0
}

/// Whether a `key=value` pair names `token` once `+` and `%XX` are decoded, as ComfyUI (aiohttp) reads it;
/// independent of the gateway's own decoder.
private func isTokenPair(_ pair: ArraySlice<UInt8>) -> Bool {
    var key: [UInt8] = []
    var rest = pair.prefix { $0 != UInt8(ascii: "=") }[...]
    while let byte = rest.popFirst() {
        if byte == UInt8(ascii: "%"), rest.count >= 2, let high = hexValue(rest[rest.startIndex]),
            let low = hexValue(rest[rest.startIndex + 1])
        {
            key.append(high << 4 | low)
            rest = rest.dropFirst(2)
        } else {
            key.append(byte == UInt8(ascii: "+") ? UInt8(ascii: " ") : byte)
        }
    }
    return key == Array("token".utf8)
}

private func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"), UInt8(ascii: "A")...UInt8(ascii: "F"): (byte | 0x20) - UInt8(ascii: "a") + 10
    default: nil
    }
}

/// Every byte as `%XX`.
private func percentEncoded(_ bytes: [UInt8]) -> String {
    let hex = Array("0123456789ABCDEF".utf8)
    return String(decoding: bytes.flatMap { [UInt8(ascii: "%"), hex[Int($0 >> 4)], hex[Int($0 & 15)]] }, as: UTF8.self)
}

runFuzzer(fuzzQuery)

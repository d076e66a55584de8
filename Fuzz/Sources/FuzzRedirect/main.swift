import ComfyGateRequestParsing
import Foundation
import FuzzSupport

/// `next` validation: whatever a client sends, the login redirect goes to `/` or to the target itself, and every
/// reading of that target — as sent, by a browser's URL parser, after each round of percent decoding, resolved
/// by Foundation against the gateway's URL — stays a path on the gateway.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzRedirect(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let next = String(decoding: fuzzInput(data, size), as: UTF8.self)
    let target = RedirectTarget.sanitize(next)
    precondition(RedirectTarget.sanitize(target) == target, "sanitize is not idempotent for \(target.debugDescription)")
    guard target != "/" else { return 0 }
    precondition(target == next && RedirectTarget.isSafe(target), "sanitize changed \(next.debugDescription) into \(target.debugDescription)")
    var reading = target
    while true {
        precondition(browserReadsAsPath(reading), "a browser reads \(target.debugDescription) (as \(reading.debugDescription)) as another site")
        guard let decoded = PercentEncoding.decode(reading), decoded != reading else { break }
        reading = decoded
    }
    let gateway = URL(string: "https://gate.example/login")!
    if let resolved = URL(string: target, relativeTo: gateway)?.absoluteURL {
        precondition(resolved.host == gateway.host, "\(target.debugDescription) resolves to \(resolved)")
    }
    return 0
}

/// Whether a WHATWG URL parser would resolve `text` against the gateway as a path on it: leading and trailing C0
/// controls and spaces dropped, tabs and newlines removed anywhere, `\` read as `/`; the rest must start with
/// exactly one `/`.
private func browserReadsAsPath(_ text: String) -> Bool {
    var bytes = text.utf8.filter { $0 != 0x09 && $0 != 0x0A && $0 != 0x0D }
    while let first = bytes.first, first <= 0x20 { bytes.removeFirst() }
    while let last = bytes.last, last <= 0x20 { bytes.removeLast() }
    let slashes = bytes.prefix(2).map { $0 == UInt8(ascii: "\\") ? UInt8(ascii: "/") : $0 }
    return slashes.first == UInt8(ascii: "/") && slashes.dropFirst().first != UInt8(ascii: "/")
}

runFuzzer(fuzzRedirect)

import ComfyGateCore
import Foundation
import HTTPTypes

/// A credential found in a request, before it is checked.
enum PresentedCredential: Equatable {
    /// An API token from `Authorization: Bearer`, `Authorization: Basic` (as the password) or `?token=`.
    case token(String)
    /// A browser session cookie value.
    case session(String)
    /// An `Authorization` header the gateway cannot read.
    case malformed

    /// Reads the first credential a request carries, in the order: `Authorization` header, `token` query
    /// parameter, session cookie.
    init?(headers: HTTPFields, query: String?, cookieName: String) {
        if let authorization = headers[.authorization] {
            self = Self.parse(authorization: authorization)
            return
        }
        if let query, let token = QueryString.firstValue(of: "token", in: query), !token.isEmpty {
            self = .token(token)
            return
        }
        if let cookie = Self.cookie(named: cookieName, in: headers) {
            self = .session(cookie)
            return
        }
        return nil
    }

    private static func parse(authorization: String) -> PresentedCredential {
        let parts = authorization.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 2 else { return .malformed }
        switch parts[0].lowercased() {
        case "bearer":
            return .token(String(parts[1]))
        case "basic":
            guard let data = Data(base64Encoded: String(parts[1])), let text = String(data: data, encoding: .utf8),
                let colon = text.firstIndex(of: ":")
            else { return .malformed }
            return .token(String(text[text.index(after: colon)...]))
        default:
            return .malformed
        }
    }

    /// The value of a cookie, from any `Cookie` header.
    static func cookie(named name: String, in headers: HTTPFields) -> String? {
        for header in headers[values: .cookie] {
            for pair in header.split(separator: ";") {
                let trimmed = pair.trimmingSpaces
                guard trimmed.utf8.count > name.utf8.count, trimmed.utf8.starts(with: name.utf8) else { continue }
                let rest = trimmed.utf8.dropFirst(name.utf8.count)
                if rest.first == UInt8(ascii: "=") { return String(Substring(rest.dropFirst())) }
            }
        }
        return nil
    }
}

/// Byte-preserving edits of a raw query string.
enum QueryString {
    /// The percent-decoded value of the first `name=` parameter.
    static func firstValue(of name: String, in query: String) -> String? {
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let (key, value) = split(pair)
            if decode(key) == name { return decode(value) }
        }
        return nil
    }

    /// The query without any `name` parameter, every other byte as sent; nil when nothing is left.
    static func removing(_ name: String, from query: String) -> String? {
        let kept = query.split(separator: "&", omittingEmptySubsequences: false).filter { decode(split($0).key) != name }
        let joined = kept.joined(separator: "&")
        return joined.isEmpty ? nil : joined
    }

    private static func split(_ pair: Substring) -> (key: Substring, value: Substring) {
        guard let equals = pair.firstIndex(of: "=") else { return (pair, "") }
        return (pair[..<equals], pair[pair.index(after: equals)...])
    }

    private static func decode(_ text: Substring) -> String {
        let spaced = text.replacingOccurrences(of: "+", with: " ")
        return spaced.removingPercentEncoding ?? spaced
    }
}

extension Substring {
    /// Without leading and trailing spaces and tabs (cookie and header list separators), without Foundation.
    var trimmingSpaces: Substring {
        let isSpace = { (character: Character) in character == " " || character == "\t" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return self[first...last]
    }
}

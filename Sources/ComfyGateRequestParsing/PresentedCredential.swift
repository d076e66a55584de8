import Foundation
public import HTTPTypes

/// A credential found in a request, before it is checked.
public enum PresentedCredential: Equatable, Sendable {
    /// An API token from `Authorization: Bearer`, `Authorization: Basic` (as the password) or `?token=`.
    case token(String)
    /// A browser session cookie value.
    case session(String)
    /// An `Authorization` header the gateway cannot read.
    case malformed

    /// Reads the first credential a request carries, in the order: `Authorization` header, `token` query
    /// parameter, session cookie.
    public init?(headers: HTTPFields, query: String?, cookieName: String) {
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
                let colon = text.utf8.firstIndex(of: UInt8(ascii: ":"))
            else { return .malformed }
            // At the byte: a password starting with a combining mark would make `:` part of another Character.
            return .token(String(Substring(text.utf8[text.utf8.index(after: colon)...])))
        default:
            return .malformed
        }
    }

    /// The value of a cookie, from any `Cookie` header.
    public static func cookie(named name: String, in headers: HTTPFields) -> String? {
        let prefix = Array((name + "=").utf8)
        for header in headers[values: .cookie] {
            for pair in cookiePairs(header) where pair.starts(with: prefix) {
                return String(Substring(pair.dropFirst(prefix.count)))
            }
        }
        return nil
    }

    /// A `Cookie` header without the cookie `name`, the other cookies joined with `; `; nil when none is left.
    /// Splits exactly as ``cookie(named:in:)`` does, so the cookie read is the cookie removed.
    public static func removingCookie(named name: String, from header: String) -> String? {
        let prefix = Array((name + "=").utf8)
        let kept = cookiePairs(header).filter { !$0.isEmpty && !$0.starts(with: prefix) }
        return kept.isEmpty ? nil : kept.map { String(Substring($0)) }.joined(separator: "; ")
    }

    /// The `;`-separated pairs of a `Cookie` header without surrounding spaces and tabs, split at bytes as any
    /// HTTP server splits them (a `Character` split glues `;` to a combining mark after it).
    private static func cookiePairs(_ header: String) -> [Substring.UTF8View] {
        let isBlank = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        return header.utf8.split(separator: UInt8(ascii: ";"), omittingEmptySubsequences: false).map { pair in
            let start = pair.firstIndex { !isBlank($0) } ?? pair.endIndex
            let end = pair.lastIndex { !isBlank($0) }.map(pair.index(after:)) ?? start
            return pair[start..<end]
        }
    }
}

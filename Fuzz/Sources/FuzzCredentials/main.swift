import ComfyGateRequestParsing
import Foundation
import FuzzSupport
import HTTPTypes

/// Credential and cookie parsing. The input's first line is an `Authorization` value (none when empty), the
/// second a query string (none when missing), each further line a `Cookie` header. Checks the precedence
/// (header, then `?token=`, then the session cookie), what each kind of header yields, that the cookie found is
/// exactly a `name=value` pair of a `Cookie` header (never a cookie whose name merely starts with the name) and
/// is gone once removed, and that Basic and Bearer credentials built from the input are read back exactly.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzCredentials(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = String(decoding: fuzzInput(data, size), as: UTF8.self)
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    let cookieName = size.isMultiple(of: 2) ? "comfygate_session" : "__Host-comfygate_session"
    var headers = HTTPFields()
    if !lines[0].isEmpty { headers[.authorization] = lines[0] }
    for line in lines.dropFirst(2) { headers.append(HTTPField(name: .cookie, value: line)) }
    let query = lines.count > 1 ? lines[1] : nil

    let credential = PresentedCredential(headers: headers, query: query, cookieName: cookieName)
    let cookie = PresentedCredential.cookie(named: cookieName, in: headers)
    precondition(cookie == expectedCookie(cookieName, in: headers[values: .cookie]),
        "cookie \(cookieName) read as \(cookie.debugDescription) from \(headers[values: .cookie])")

    for header in headers[values: .cookie] {
        let stripped = PresentedCredential.removingCookie(named: cookieName, from: header)
        precondition(expectedCookie(cookieName, in: stripped.map { [$0] } ?? []) == nil,
            "removing \(cookieName) from \(header.debugDescription) left \(stripped.debugDescription)")
    }

    if let authorization = headers[.authorization] {
        let parts = authorization.split(separator: " ")
        let scheme = parts.count == 2 ? parts[0].lowercased() : nil
        switch credential {
        case .token(let token) where scheme == "bearer":
            precondition(token == parts[1], "Bearer \(parts[1].debugDescription) read as \(token.debugDescription)")
        case .token where scheme == "basic", .malformed where scheme != "bearer":
            break
        default:
            preconditionFailure("Authorization \(authorization.debugDescription) read as \(String(describing: credential))")
        }
    } else if let query, let token = QueryString.firstValue(of: "token", in: query), !token.isEmpty {
        precondition(credential == .token(token), "?token= read as \(String(describing: credential))")
    } else {
        precondition(credential == cookie.map(PresentedCredential.session), "cookie read as \(String(describing: credential))")
    }

    // Built from the input: a Basic password (anything, even empty or with colons) and a Bearer token.
    let password = lines[0]
    let basic = "Basic " + Data("user:\(password)".utf8).base64EncodedString()
    let readBasic = PresentedCredential(headers: [.authorization: basic], query: "token=other", cookieName: cookieName)
    precondition(readBasic == .token(password), "Basic password \(password.debugDescription) read as \(String(describing: readBasic))")
    let bearer = lines[0].filter { $0.isASCII && ($0.isLetter || $0.isNumber || "_-.~+/=".contains($0)) }
    if !bearer.isEmpty {
        let readBearer = PresentedCredential(headers: [.authorization: "Bearer \(bearer)"], query: nil, cookieName: cookieName)
        precondition(readBearer == .token(bearer), "Bearer \(bearer.debugDescription) read as \(String(describing: readBearer))")
    }
    return 0
}

/// The value of the first `name=value` pair, split at `;` and trimmed of spaces and tabs byte by byte.
private func expectedCookie(_ name: String, in headers: [String]) -> String? {
    let prefix = Array((name + "=").utf8)
    for header in headers {
        for pair in Array(header.utf8).split(separator: UInt8(ascii: ";"), omittingEmptySubsequences: false) {
            let isBlank = { (byte: UInt8) in byte == 0x20 || byte == 0x09 }
            let trimmed = pair.drop(while: isBlank).reversed().drop(while: isBlank).reversed()
            if trimmed.starts(with: prefix) { return String(decoding: trimmed.dropFirst(prefix.count), as: UTF8.self) }
        }
    }
    return nil
}

runFuzzer(fuzzCredentials)

import ComfyGateRequestParsing
import Foundation
import HTTPTypes
import NIOHTTP1

/// Builds the headers ComfyUI receives: the client's own, less hop-by-hop headers and the gateway's
/// credentials, with `Host`/`Origin` made consistent for ComfyUI's origin check, the `token` parameter taken out
/// of `Referer`, and `X-Forwarded-*`, `Forwarded` and `X-Real-IP` set by the gateway (a client's own values are
/// kept only from a trusted proxy, and only in the lists it extends).
struct UpstreamRequestHeaders: Sendable {
    /// `host:port` of the upstream, as ComfyUI expects in `Host`.
    let upstreamAuthority: String
    /// `scheme://host:port` of the upstream, used in place of the browser's `Origin`.
    let upstreamOrigin: String
    let sessionCookieName: String
    let clientAddress: ClientAddressResolver
    /// The scheme browsers use (`https` behind a TLS terminator configured as `public_url`).
    let publicScheme: String?

    /// Headers never forwarded: connection-level (RFC 9110 §7.6.1), the gateway's credentials, and the
    /// `comfy-user` header that ComfyUI would otherwise trust blindly.
    static let removed: Set<HTTPField.Name> = [
        .connection, .init("Keep-Alive")!, .proxyAuthorization, .init("Proxy-Connection")!, .te, .trailer,
        .transferEncoding, .upgrade, .expect, .authorization, .comfyUser, .secFetchSite,
    ]

    /// - Parameters:
    ///   - authority: the `Host` the client addressed (HTTPTypes keeps it apart from the header fields).
    func build(from incoming: HTTPFields, authority: String?, peer: String?, isWebSocket: Bool = false) -> HTTPFields {
        let listedInConnection = UpstreamResponseHeaders.namedInConnection(incoming)
        var outgoing = HTTPFields()
        outgoing.reserveCapacity(incoming.count + 4)
        for field in incoming {
            let name = field.name
            if Self.removed.contains(name) || listedInConnection.contains(name) { continue }
            if isWebSocket && name.canonicalName.hasPrefix("sec-websocket-") { continue }
            switch name {
            case .cookie:
                // Split exactly as the session was read, so the cookie that authenticated is the cookie removed.
                if let kept = PresentedCredential.removingCookie(named: sessionCookieName, from: field.value) {
                    outgoing.append(HTTPField(name: .cookie, value: kept))
                }
            case .origin:
                outgoing.append(HTTPField(name: .origin, value: upstreamOrigin))
            case .referer:
                // A page opened with `?token=` names it in the Referer of everything it loads next.
                outgoing.append(HTTPField(name: .referer, value: QueryString.removing("token", fromURL: field.value)))
            case .xForwardedFor, .xForwardedProto, .xForwardedHost, .forwarded, .xRealIP:
                continue
            default:
                outgoing.append(field)
            }
        }
        let trusted = clientAddress.isTrusted(peer: peer)
        var forwardedFor = trusted ? incoming[values: .xForwardedFor] : []
        forwardedFor.append(peer ?? "unknown")
        outgoing[.xForwardedFor] = forwardedFor.joined(separator: ", ")
        let proto = (trusted ? incoming[.xForwardedProto] : nil) ?? publicScheme ?? "http"
        outgoing[.xForwardedProto] = proto
        let host = (trusted ? incoming[.xForwardedHost] : nil) ?? authority
        if let host { outgoing[.xForwardedHost] = host }
        outgoing[.xRealIP] = clientAddress.resolve(headers: incoming, peer: peer)
        var forwarded = trusted ? incoming[values: .forwarded] : []
        forwarded.append(Self.forwardedElement(for: peer, proto: proto, host: host))
        outgoing[.forwarded] = forwarded.joined(separator: ", ")
        return outgoing
    }

    /// This hop's `Forwarded` element (RFC 7239): `for`, `proto` and `host`, quoted where the syntax needs it.
    /// Built byte by byte: it is on every request's path.
    static func forwardedElement(for peer: String?, proto: String, host: String?) -> String {
        var element = "for="
        element.reserveCapacity(64)
        if let peer, peer.utf8.contains(UInt8(ascii: ":")) {
            appendForwardedValue("[" + peer + "]", to: &element)
        } else {
            appendForwardedValue(peer ?? "unknown", to: &element)
        }
        element += ";proto="
        appendForwardedValue(proto, to: &element)
        if let host {
            element += ";host="
            appendForwardedValue(host, to: &element)
        }
        return element
    }

    /// Appends a `Forwarded` value as a token when it is one, else as a quoted string with `"` and `\` escaped.
    private static func appendForwardedValue(_ value: String, to element: inout String) {
        var isToken = !value.isEmpty
        var needsEscapes = false
        for byte in value.utf8 where !isTokenByte(byte) {
            isToken = false
            if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { needsEscapes = true }
        }
        guard !isToken else { return element += value }
        element += "\""
        if needsEscapes {
            for scalar in value.unicodeScalars {
                if scalar == "\"" || scalar == "\\" { element.unicodeScalars.append("\\") }
                element.unicodeScalars.append(scalar)
            }
        } else {
            element += value
        }
        element += "\""
    }

    /// RFC 9110 `tchar`.
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
            UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
            UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            true
        default:
            false
        }
    }
}

/// Response headers that belong to one connection and are not passed back to the client.
enum UpstreamResponseHeaders {
    static let removed: Set<HTTPField.Name> = [
        .connection, .init("Keep-Alive")!, .init("Proxy-Connection")!, .te, .trailer, .transferEncoding, .upgrade,
    ]

    /// Headers a `Connection` header names as belonging to this hop only (RFC 9110 §7.6.1).
    static func namedInConnection(_ fields: HTTPFields) -> Set<HTTPField.Name> {
        var names = Set<HTTPField.Name>()
        for value in fields[values: .connection] {
            for token in value.split(separator: ",") {
                if let name = HTTPField.Name(token.trimmingCharacters(in: .whitespaces)) { names.insert(name) }
            }
        }
        return names
    }

    /// The headers of ComfyUI's answer as the client gets them, in one pass: connection-level headers and
    /// those `Connection` names are left out.
    static func fields(from incoming: HTTPHeaders) -> HTTPFields {
        var listedInConnection = Set<HTTPField.Name>()
        for token in incoming[canonicalForm: "connection"] {
            let lowercased = token.lowercased()
            if lowercased != "keep-alive", lowercased != "close", let name = HTTPField.Name(lowercased) { listedInConnection.insert(name) }
        }
        var fields = HTTPFields()
        fields.reserveCapacity(incoming.count)
        for (name, value) in incoming {
            guard let fieldName = HTTPField.Name(name), !removed.contains(fieldName),
                listedInConnection.isEmpty || !listedInConnection.contains(fieldName)
            else { continue }
            fields.append(HTTPField(name: fieldName, value: value))
        }
        return fields
    }
}

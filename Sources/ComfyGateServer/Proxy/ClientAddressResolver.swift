import Foundation
import HTTPTypes
import Hummingbird

/// The client's address and scheme: the socket peer, unless that peer is a configured proxy whose
/// `X-Forwarded-For`/`X-Forwarded-Proto` headers are then believed.
struct ClientAddressResolver: Sendable {
    let trustedProxies: Set<String>

    func isTrusted(peer: String?) -> Bool {
        guard let peer else { return false }
        return trustedProxies.contains(peer)
    }

    func resolve(_ request: Request, peer: String?) -> String {
        resolve(headers: request.headers, peer: peer)
    }

    /// Walks `X-Forwarded-For` from the right past trusted proxies; the first untrusted hop is the client.
    func resolve(headers: HTTPFields, peer: String?) -> String {
        guard isTrusted(peer: peer) else { return peer ?? "unknown" }
        let hops = headers[values: .xForwardedFor].flatMap { $0.split(separator: ",") }
            .map { $0.trimmingCharacters(in: .whitespaces) }
        for hop in hops.reversed() where !trustedProxies.contains(hop) { return hop }
        return hops.first ?? peer ?? "unknown"
    }
}

extension HTTPField.Name {
    static let xForwardedFor = Self("X-Forwarded-For")!
    static let xForwardedProto = Self("X-Forwarded-Proto")!
    static let xForwardedHost = Self("X-Forwarded-Host")!
    static let comfyUser = Self("comfy-user")!
    static let forwarded = Self("Forwarded")!
    static let xRealIP = Self("X-Real-IP")!
}

import ComfyGateCore
import ComfyGateRequestParsing
import Foundation
import HTTPTypes
import Logging

/// Decides who a request is from, for plain requests and websocket handshakes alike.
struct RequestAuthenticator: Sendable {
    enum Outcome: Sendable, Equatable {
        case authenticated(Identity)
        /// No credential at all.
        case anonymous
        /// A credential was presented and refused.
        case refused
        /// The credential could not be checked now (bcrypt queue full).
        case busy
        /// The client's address presented too many tokens that matched nothing; retry after the given seconds.
        case throttled(retryAfter: TimeInterval)
    }

    let verifier: CredentialVerifier
    let sessions: SessionManager
    let cookie: SessionCookie
    let clientAddress: ClientAddressResolver
    /// The Prometheus scraper's token: authenticates ``Identity/scraper``, whom the policy lets read `/metrics` only.
    let scrapeToken: ScrapeToken?
    /// Counts refused credentials (a missing one is counted by the caller, which knows whether one was needed).
    let metrics: GatewayMetrics?
    let logger: Logger

    /// How long an answer that tells the client to retry later waits (a throttled token or login attempt's 429,
    /// a 503 when the token checks' bcrypt queue is full): a flood then waits on its own connections instead of
    /// taking the CPU from everyone else's requests.
    static let retryLaterDelay = Duration.seconds(1)

    /// The JSON error message of a throttled answer (HTTP or websocket handshake, both 429).
    static let throttledMessage = "too many failed credentials, retry later"

    /// How a refused token is counted.
    static func failure(_ refusal: CredentialVerifier.Refusal) -> AuthenticationFailure {
        switch refusal {
        case .unknown: .unknownToken
        case .revoked: .revokedToken
        case .expired: .expiredToken
        case .userDisabled: .disabledUser
        case .busy: .busy
        case .throttled: .throttled
        }
    }

    /// A `Retry-After` value: whole seconds, at least 1.
    static func retryAfter(_ wait: TimeInterval) -> String { String(max(1, Int(wait.rounded(.up)))) }

    /// Who sent the request, judged from its headers and `peer`, the socket's remote address: the same decision
    /// for the application path and websocket upgrades. Token failures count against the client's address as
    /// resolved by ``ClientAddressResolver``.
    func authenticate(headers: HTTPFields, query: String?, peer: String?) async throws -> Outcome {
        guard let presented = PresentedCredential(headers: headers, query: query, cookieName: cookie.name) else {
            return .anonymous
        }
        switch presented {
        case .malformed:
            metrics?.authenticationFailed(.malformed)
            return .refused
        case .session(let value):
            guard let identity = try await sessions.resolve(cookieValue: value) else {
                metrics?.authenticationFailed(.invalidSession)
                return .refused
            }
            return .authenticated(identity)
        case .token(let value):
            if let scrapeToken, scrapeToken.matches(value) { return .authenticated(.scraper) }
            let address = clientAddress.resolve(headers: headers, peer: peer)
            switch try await verifier.verify(token: value, from: address) {
            case .success(let identity):
                return .authenticated(identity)
            case .failure(.busy):
                metrics?.authenticationFailed(.busy)
                try await Task.sleep(for: Self.retryLaterDelay)
                return .busy
            case .failure(.throttled(let wait)):
                metrics?.authenticationFailed(.throttled)
                try await Task.sleep(for: Self.retryLaterDelay)
                return .throttled(retryAfter: wait)
            case .failure(let refusal):
                logger.debug("token refused", metadata: ["reason": "\(refusal)"])
                metrics?.authenticationFailed(Self.failure(refusal))
                return .refused
            }
        }
    }
}

extension RequestAuthenticator {
    /// The identity behind the request's credential when the cache alone can tell (a native token or a
    /// session seen recently, nothing due to be written); nil means "ask ``authenticate(headers:query:peer:)``".
    func cachedIdentity(headers: HTTPFields, query: String?) -> Identity? {
        switch PresentedCredential(headers: headers, query: query, cookieName: cookie.name) {
        case .token(let value) where scrapeToken?.matches(value) == true: .scraper
        case .token(let value): verifier.cachedIdentity(token: value)
        case .session(let value): sessions.cachedIdentity(cookieValue: value)
        case .malformed, nil: nil
        }
    }
}

/// The name and attributes of the session cookie.
struct SessionCookie: Sendable {
    let secure: Bool
    let maxAge: Int

    /// `__Host-` pins the cookie to this exact origin when it can be `Secure`.
    var name: String { secure ? "__Host-comfygate_session" : "comfygate_session" }

    func setting(_ value: String) -> String {
        "\(name)=\(value); Path=/; Max-Age=\(maxAge); HttpOnly; SameSite=Lax" + (secure ? "; Secure" : "")
    }

    var clearing: String {
        "\(name)=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax" + (secure ? "; Secure" : "")
    }
}

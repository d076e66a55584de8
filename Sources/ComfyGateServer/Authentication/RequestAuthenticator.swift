import ComfyGateCore
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
    }

    let verifier: CredentialVerifier
    let sessions: SessionManager
    let cookie: SessionCookie
    let logger: Logger

    func authenticate(headers: HTTPFields, query: String?) async throws -> Outcome {
        guard let presented = PresentedCredential(headers: headers, query: query, cookieName: cookie.name) else {
            return .anonymous
        }
        switch presented {
        case .malformed:
            return .refused
        case .session(let value):
            guard let identity = try await sessions.resolve(cookieValue: value) else { return .refused }
            return .authenticated(identity)
        case .token(let value):
            switch try await verifier.verify(token: value) {
            case .success(let identity):
                return .authenticated(identity)
            case .failure(.busy):
                return .busy
            case .failure(let refusal):
                logger.debug("token refused", metadata: ["reason": "\(refusal)"])
                return .refused
            }
        }
    }
}

extension RequestAuthenticator {
    /// The identity behind the request's credential when the cache alone can tell (a native token or a
    /// session seen recently, nothing due to be written); nil means "ask ``authenticate(headers:query:)``".
    func cachedIdentity(headers: HTTPFields, query: String?) -> Identity? {
        switch PresentedCredential(headers: headers, query: query, cookieName: cookie.name) {
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

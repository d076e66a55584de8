/// The checks, in the order they run. Raw values are the stable ids of the JSON report.
public enum CheckID: String, Sendable, Codable, CaseIterable {
    case tcpConnect = "tcp_connect"
    case tls = "tls"
    case httpAnswer = "http_answer"
    case target = "target"
    case authEnforced = "auth_enforced"
    case tokenAccepted = "token_accepted"
    case wrongTokenRefused = "wrong_token_refused"
    case loginPage = "login_page"
    case webSocket = "websocket"
    case comfyUIFacts = "comfyui_facts"
    case models = "models"
    case secrets = "secrets"
    case generation = "generation"

    /// A short human title.
    public var title: String {
        switch self {
        case .tcpConnect: "Name resolution and TCP connect"
        case .tls: "TLS handshake"
        case .httpAnswer: "HTTP answer"
        case .target: "What answers"
        case .authEnforced: "Authentication enforced"
        case .tokenAccepted: "Token accepted on /system_stats"
        case .wrongTokenRefused: "Wrong token refused"
        case .loginPage: "Login page for a browser"
        case .webSocket: "Websocket with the token"
        case .comfyUIFacts: "ComfyUI facts"
        case .models: "Required model files"
        case .secrets: "Secrets consistent"
        case .generation: "Test generation"
        }
    }
}

/// Why a check failed or warned, and what to do about it.
public struct Diagnosis: Sendable, Equatable {
    /// Stable identifier of the cause (`empty_reply`, `login_token_is_raw_secret`, …), listed in docs/doctor.md.
    public var code: String
    /// The likely cause, in a sentence or two.
    public var cause: String
    /// What to do.
    public var fix: String

    public init(code: String, cause: String, fix: String) {
        self.code = code
        self.cause = cause
        self.fix = fix
    }
}

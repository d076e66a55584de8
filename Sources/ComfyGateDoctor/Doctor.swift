import AsyncHTTPClient
import ComfyUIClient
import Foundation
public import Logging
import NIOCore
import NIOHTTP1

/// Runs the checks of one doctor pass against a deployment. Logic only: rendering is done by the renderers.
public struct Doctor: Sendable {
    public let configuration: DoctorConfiguration
    let logger: Logger

    public init(configuration: DoctorConfiguration, logger: Logger = Logger(label: "comfygate-doctor")) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Parses and validates a `--url` value: an absolute http(s) URL without query or fragment.
    public static func validate(url text: String) -> String? {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme) else {
            return "--url must be an absolute http:// or https:// URL"
        }
        guard let host = url.host, !host.isEmpty else { return "--url has no host" }
        guard url.query == nil, url.fragment == nil else { return "--url must not carry a query or fragment (use --token)" }
        return nil
    }

    /// Runs every check in order and returns the report. Never throws: every failure is a check result.
    public func run() async -> DoctorReport {
        let client = HTTPClient(
            eventLoopGroupProvider: .singleton,
            configuration: .init(
                redirectConfiguration: .disallow,
                timeout: .init(connect: Self.timeAmount(configuration.timeout), read: Self.timeAmount(configuration.timeout))))
        let run = DoctorRun(configuration: configuration, httpClient: client, logger: logger)
        let report = await run.execute()
        try? await client.shutdown()
        return report
    }

    static func timeAmount(_ duration: Duration) -> TimeAmount {
        .nanoseconds(Int64(duration / .nanoseconds(1)))
    }
}

/// One pass: the checks share what earlier checks learned (the target kind, ComfyUI's stats).
final class DoctorRun {
    let configuration: DoctorConfiguration
    let httpClient: HTTPClient
    let logger: Logger
    let clock = ContinuousClock()

    let baseURL: String
    let host: String
    let port: Int
    let useTLS: Bool
    let basePath: String

    var results: [CheckResult] = []
    var target: TargetKind = .unknown
    var anonymous: HTTPAnswer?
    var stats: SystemStats?

    init(configuration: DoctorConfiguration, httpClient: HTTPClient, logger: Logger) {
        self.configuration = configuration
        self.httpClient = httpClient
        self.logger = logger
        var base = configuration.url
        while base.hasSuffix("/") { base.removeLast() }
        baseURL = base
        let url = URL(string: base)
        useTLS = url?.scheme?.lowercased() == "https"
        host = url?.host ?? ""
        port = url?.port ?? (useTLS ? 443 : 80)
        basePath = url?.path ?? ""
    }

    var token: String? { configuration.token.flatMap { $0.isEmpty ? nil : $0 } }

    func execute() async -> DoctorReport {
        let startedAt = Date()
        let start = clock.now
        if let problem = Doctor.validate(url: configuration.url) {
            record(.tcpConnect, .fail, evidence: problem, diagnosis: nil)
        } else {
            await checkConnection()
        }
        if results.allSatisfy({ $0.status != .fail }) {
            await checkTarget()
            await checkAuthentication()
            await checkTokenAccepted()
            await checkWrongTokenRefused()
            await checkLoginPage()
            await checkWebSocket()
            checkFacts()
            await checkModels()
            await checkSecrets()
            await checkGeneration()
        }
        let seen = Set(results.map(\.id))
        for id in CheckID.allCases where !seen.contains(id) {
            record(id, .skip, evidence: "not run: the server gave no usable HTTP answer")
        }
        results.sort { CheckID.allCases.firstIndex(of: $0.id)! < CheckID.allCases.firstIndex(of: $1.id)! }
        return DoctorReport(
            url: baseURL, target: target, startedAt: startedAt, duration: start.duration(to: clock.now),
            generateRequested: configuration.generate, workflow: configuration.models?.workflow, checks: results,
            comfyUI: stats.map(ComfyUIFacts.init(stats:)))
    }

    // MARK: Recording

    func record(_ id: CheckID, _ status: CheckStatus, duration: Duration = .zero, evidence: String, diagnosis: Diagnosis? = nil) {
        results.append(CheckResult(id: id, status: status, duration: duration, evidence: redact(evidence), diagnosis: diagnosis))
    }

    /// Runs `body` and records its result with the time it took.
    func measure(_ id: CheckID, _ body: () async -> (CheckStatus, String, Diagnosis?)) async {
        let start = clock.now
        let (status, evidence, diagnosis) = await body()
        record(id, status, duration: start.duration(to: clock.now), evidence: evidence, diagnosis: diagnosis)
    }

    /// Removes the token (raw and percent-encoded) from text shown to the user.
    func redact(_ text: String) -> String {
        guard let token, token.count >= 4 else { return text }
        var text = text.replacingOccurrences(of: token, with: "[token]")
        if let encoded = token.addingPercentEncoding(withAllowedCharacters: .alphanumerics), encoded != token {
            text = text.replacingOccurrences(of: encoded, with: "[token]")
        }
        return text
    }

    // MARK: HTTP

    struct HTTPAnswer {
        var status: Int
        var headers: HTTPHeaders
        var body: [UInt8]

        var text: String { String(decoding: body, as: UTF8.self) }
        func header(_ name: String) -> String? { headers.first(name: name) }
        /// `401 {"error": …}` on one line, body cut at 120 characters.
        var summary: String {
            let flat = text.replacingOccurrences(of: "\n", with: " ").trimmingCharacters(in: .whitespaces)
            let excerpt = flat.count > 120 ? String(flat.prefix(120)) + "…" : flat
            return excerpt.isEmpty ? "HTTP \(status), empty body" : "HTTP \(status) \(excerpt)"
        }
    }

    enum Auth {
        case none
        case bearer(String)
        case query(String)
    }

    /// One request to `basePath + path`, never following redirects.
    func fetch(_ path: String, auth: Auth = .none, accept: String = "application/json", method: HTTPMethod = .GET) async throws
        -> HTTPAnswer
    {
        var url = baseURL + path
        if case .query(let value) = auth {
            url += (path.contains("?") ? "&" : "?") + "token=" + (value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
        }
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(name: "Accept", value: accept)
        request.headers.add(name: "User-Agent", value: "comfygate-doctor")
        if case .bearer(let value) = auth { request.headers.add(name: "Authorization", value: "Bearer \(value)") }
        let response = try await httpClient.execute(request, timeout: Doctor.timeAmount(configuration.timeout))
        let body = try await response.body.collect(upTo: 16 << 20)
        return HTTPAnswer(status: Int(response.status.code), headers: response.headers, body: Array(body.readableBytesView))
    }

    /// A ComfyUI client speaking with the configured token (none for bare ComfyUI).
    func comfyUIClient() throws -> ComfyUIClient {
        let credential: ComfyUIClient.Credential = target == .comfyUI ? .none : token.map { .bearer($0) } ?? .none
        return try ComfyUIClient(
            baseURL: baseURL, credential: credential, httpClient: httpClient, timeout: configuration.timeout, logger: logger)
    }

    /// A request error in words, with the usual cause.
    func describe(_ error: any Error) -> (String, Diagnosis) {
        if let error = error as? HTTPClientError {
            if error == .readTimeout || error == .deadlineExceeded || error == .connectTimeout {
                return ("no answer within \(configuration.timeout.shortText)", Causes.slowAnswer(timeout: configuration.timeout))
            }
            if error == .remoteConnectionClosed {
                return ("the connection closed without an answer", Causes.emptyReply)
            }
        }
        let text = redact(String(describing: error))
        return (text, Diagnosis(code: "request_failed", cause: "The request failed: \(text).", fix: "Run again with a longer --timeout; check the server's log."))
    }
}

extension ComfyUIFacts {
    init(stats: SystemStats) {
        self.init(
            version: stats.comfyUIVersion, python: stats.pythonVersion, pytorch: stats.pytorchVersion,
            devices: stats.devices.map { Device(name: $0.name, type: $0.type, vramTotal: $0.vramTotal, vramFree: $0.vramFree) })
    }
}

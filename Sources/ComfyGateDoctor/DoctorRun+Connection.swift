import Foundation

extension DoctorRun {
    /// `tcp_connect`, `tls`, `http_answer` from one raw probe of `GET /system_stats` without credentials.
    func checkConnection() async {
        let probe = ConnectionProbe(host: host, port: port, useTLS: useTLS, path: basePath + "/system_stats", timeout: configuration.timeout)
        let start = clock.now
        let outcome: ConnectionProbe.Outcome
        do {
            outcome = try await probe.run()
        } catch {
            let elapsed = start.duration(to: clock.now)
            switch error {
            case .unresolvable(let detail):
                record(.tcpConnect, .fail, duration: elapsed, evidence: "'\(host)' does not resolve (\(detail))", diagnosis: Causes.unresolvable(host))
            case .refused(let address):
                record(.tcpConnect, .fail, duration: elapsed, evidence: "connection to \(address) refused", diagnosis: Causes.refused(address))
            case .timedOut(let address):
                record(
                    .tcpConnect, .fail, duration: elapsed, evidence: "no answer from \(address) within \(configuration.timeout.shortText)",
                    diagnosis: Causes.connectTimeout(address))
            case .other(let address, let detail):
                record(
                    .tcpConnect, .fail, duration: elapsed, evidence: "connecting to \(address) failed: \(detail)",
                    diagnosis: Diagnosis(code: "connect_failed", cause: "The connection failed: \(detail).", fix: "Check the address and the network path."))
            }
            return
        }
        record(
            .tcpConnect, .pass, duration: outcome.resolveDuration + outcome.connectDuration,
            evidence: "\(host) → \(outcome.address), connected in \(outcome.connectDuration.shortText)")

        switch outcome.tls {
        case nil where Self.isLoopback(host):
            record(.tls, .skip, evidence: "plain http on this machine")
        case nil:
            record(.tls, .warn, evidence: "plain http to \(host)", diagnosis: Causes.plainHTTPOverNetwork)
        case .established(let duration)?:
            record(.tls, .pass, duration: duration, evidence: "TLS established with \(host)")
        case .failed(let detail)?:
            record(.tls, .fail, duration: outcome.answerDuration, evidence: "TLS handshake failed: \(detail)", diagnosis: Causes.tlsFailed(detail))
            return
        }

        let duration = outcome.answerDuration
        switch outcome.answer {
        case .response(_, let statusLine, _, let body):
            let excerpt = body.replacingOccurrences(of: "\n", with: " ").prefix(80)
            record(.httpAnswer, .pass, duration: duration, evidence: "\(statusLine) \(excerpt)".trimmingCharacters(in: .whitespaces))
        case .closedWithoutResponse:
            record(
                .httpAnswer, .fail, duration: duration,
                evidence: "connection closed without any response (curl: (52) Empty reply from server)", diagnosis: Causes.emptyReply)
        case .resetWithoutResponse:
            record(.httpAnswer, .fail, duration: duration, evidence: "connection reset without any response", diagnosis: Causes.resetReply)
        case .truncated(let count):
            record(.httpAnswer, .fail, duration: duration, evidence: "connection closed after \(count) bytes, inside the headers", diagnosis: Causes.truncatedReply)
        case .timedOut(let count):
            record(
                .httpAnswer, .fail, duration: duration,
                evidence: "no complete answer within \(configuration.timeout.shortText) (\(count) bytes received)",
                diagnosis: Causes.slowAnswer(timeout: configuration.timeout))
        case .notHTTP(let bytes):
            let hex = bytes.prefix(8).map { String(format: "%02x", $0) }.joined(separator: " ")
            let isTLS = bytes.first == 0x15 || bytes.first == 0x16
            record(
                .httpAnswer, .fail, duration: duration, evidence: "not an HTTP answer (first bytes \(hex))",
                diagnosis: isTLS ? Causes.tlsOnPlainPort : Causes.notHTTP)
        case .noExchange:
            break
        }
    }

    static func isLoopback(_ host: String) -> Bool {
        let bare = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]")).lowercased()
        return bare == "localhost" || bare.hasSuffix(".localhost") || bare.hasPrefix("127.") || bare == "::1"
    }
}

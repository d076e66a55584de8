public import Foundation

/// The outcome of one check.
public enum CheckStatus: String, Sendable, Codable, CaseIterable {
    case pass
    /// Works, with a caveat worth reading; does not change the exit code.
    case warn
    /// A required property of the deployment does not hold; the exit code becomes 1.
    case fail
    /// Not run: not applicable, not requested, or an earlier check failed.
    case skip
}

/// What answers at the URL.
public enum TargetKind: String, Sendable, Codable {
    /// The ComfyGate gateway (its 401 carries `WWW-Authenticate: Bearer realm="comfygate"`).
    case comfyGate = "comfygate"
    /// ComfyUI with the ComfyUI-Login extension (`{"error": "Authentication required."}`).
    case comfyUILogin = "comfyui-login"
    /// ComfyUI with no authentication at all.
    case comfyUI = "comfyui"
    /// Something else, or nothing could be learned.
    case unknown

    /// A phrase for reports.
    public var displayName: String {
        switch self {
        case .comfyGate: "ComfyGate (authenticating proxy in front of ComfyUI)"
        case .comfyUILogin: "ComfyUI behind ComfyUI-Login"
        case .comfyUI: "bare ComfyUI (no authentication)"
        case .unknown: "unknown"
        }
    }
}

/// The result of one check: what was seen, how long it took, and on failure why and what to do.
public struct CheckResult: Sendable, Equatable {
    /// Stable identifier (`tcp_connect`, `http_answer`, …), listed in docs/doctor.md.
    public var id: CheckID
    public var status: CheckStatus
    public var duration: Duration
    /// What was observed: a status, a short body excerpt, a measurement. Never a secret.
    public var evidence: String
    /// The likely cause and its fix, for `fail` and `warn`.
    public var diagnosis: Diagnosis?

    public init(id: CheckID, status: CheckStatus, duration: Duration = .zero, evidence: String, diagnosis: Diagnosis? = nil) {
        self.id = id
        self.status = status
        self.duration = duration
        self.evidence = evidence
        self.diagnosis = diagnosis
    }
}

/// Facts ComfyUI reported about itself in `/system_stats`.
public struct ComfyUIFacts: Sendable, Equatable {
    /// One torch device.
    public struct Device: Sendable, Equatable {
        public var name: String
        public var type: String
        public var vramTotal: Int
        public var vramFree: Int
    }

    public var version: String
    public var python: String
    public var pytorch: String
    public var devices: [Device]
}

/// Everything one doctor run found.
public struct DoctorReport: Sendable, Equatable {
    /// The URL checked, without any query (a `?token=` never appears).
    public var url: String
    public var target: TargetKind
    public var startedAt: Date
    public var duration: Duration
    /// Which optional parts ran (for the report's objective).
    public var generateRequested: Bool
    public var workflow: String?
    public var checks: [CheckResult]
    public var comfyUI: ComfyUIFacts?

    public init(
        url: String, target: TargetKind, startedAt: Date, duration: Duration, generateRequested: Bool, workflow: String?,
        checks: [CheckResult], comfyUI: ComfyUIFacts?
    ) {
        self.url = url
        self.target = target
        self.startedAt = startedAt
        self.duration = duration
        self.generateRequested = generateRequested
        self.workflow = workflow
        self.checks = checks
        self.comfyUI = comfyUI
    }

    /// 0 when no check failed, 1 otherwise.
    public var exitCode: Int32 { checks.contains { $0.status == .fail } ? 1 : 0 }

    public func count(_ status: CheckStatus) -> Int { checks.filter { $0.status == status }.count }

    /// Checks that ran without failing (pass or warn) over checks that ran; nil when none ran.
    public var successRate: Double? {
        let run = checks.count - count(.skip)
        return run == 0 ? nil : Double(count(.pass) + count(.warn)) / Double(run)
    }

    /// The result of one check, if it is part of the run.
    public subscript(id: CheckID) -> CheckResult? { checks.first { $0.id == id } }
}

extension Duration {
    /// Milliseconds as a Double.
    var milliseconds: Double { Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15 }

    /// `3 ms`, `1.24 s`.
    var shortText: String {
        let ms = milliseconds
        if ms < 1 { return "<1 ms" }
        if ms < 1000 { return "\(Int(ms.rounded())) ms" }
        return String(format: "%.2f s", ms / 1000)
    }
}

public import Foundation

/// How one step of a setup run ended.
public enum StepStatus: String, Sendable, Equatable {
    case ok
    case failed
    /// Not run because the user asked so: never counted as done.
    case skipped
    /// Not run because an earlier step failed.
    case notRun = "not run"
    /// `--dry-run`: what would be done.
    case planned = "would run"
}

/// One step of a setup run, as reported.
public struct SetupStep: Sendable, Equatable {
    public var title: String
    public var status: StepStatus
    public var duration: Duration
    /// What it did or found, one line each; never a secret.
    public var details: [String]
    /// How to fix what failed, one line each.
    public var fixes: [String]

    public init(title: String, status: StepStatus, duration: Duration = .zero, details: [String] = [], fixes: [String] = []) {
        self.title = title
        self.status = status
        self.duration = duration
        self.details = details
        self.fixes = fixes
    }
}

/// Everything a setup run did, for the terminal and for `setup-report.md`.
public struct SetupReport: Sendable {
    public var plan: SetupPlan
    public var startedAt: Date
    public var duration: Duration = .zero
    public var steps: [SetupStep] = []
    /// What to do next, one line each.
    public var nextSteps: [String] = []

    public init(plan: SetupPlan, startedAt: Date) {
        self.plan = plan
        self.startedAt = startedAt
    }

    /// 0 when no step failed (skipped steps included), 1 when one did.
    public var exitCode: Int32 { steps.contains { $0.status == .failed } ? 1 : 0 }

    /// One line: complete only when every step ran and passed.
    public var verdict: String {
        let skipped = steps.filter { $0.status == .skipped }.map(\.title)
        let failed = steps.first { $0.status == .failed }
        if plan.dryRun {
            return "Dry run: nothing was changed, nothing was started."
                + (failed.map { " “\($0.title)” failed: fix it before the real run." } ?? "")
        }
        if let failed { return "FAILED at “\(failed.title)”; the steps after it did not run." }
        if !skipped.isEmpty {
            return "INCOMPLETE: no step failed, but \(skipped.count) step(s) were skipped and are not verified: "
                + skipped.joined(separator: ", ") + "."
        }
        return "Complete: every step ran and passed."
    }

    /// The Markdown report.
    public func markdown() -> String {
        let formatter = ISO8601DateFormatter()
        var lines = [
            "# ComfyGate setup report", "",
            "- **Result:** \(verdict)",
            "- **Started:** \(formatter.string(from: startedAt)), took \(Self.seconds(duration))",
            "- **Deployment:** `\(plan.directory.path)` — \(modeText)",
            "- **Command:** `\(plan.commandLine)`",
            "", "| # | Step | Result | Time | Details |", "|---|---|---|---|---|",
        ]
        for (index, step) in steps.enumerated() {
            let result = switch step.status {
            case .ok: "ok"
            case .failed: "**FAILED**"
            case .skipped: "skipped — not verified"
            case .notRun: "not run"
            case .planned: "would run"
            }
            let details = step.details.map(Self.cell).joined(separator: "<br>")
            lines.append("| \(index + 1) | \(step.title) | \(result) | \(Self.seconds(step.duration)) | \(details) |")
        }
        let fixes = steps.filter { !$0.fixes.isEmpty }
        if !fixes.isEmpty {
            lines += ["", "## How to fix what failed", ""]
            for step in fixes {
                lines.append("**\(step.title)**")
                lines += [""] + step.fixes.map { "- \($0)" } + [""]
            }
        }
        if !nextSteps.isEmpty {
            lines += ["", "## Next", ""] + nextSteps.map { "- \($0)" }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    var modeText: String {
        switch (plan.mode, plan.runsDocker) {
        case (.compose, true): "Docker Compose project (ComfyUI with the GPU, unpublished; ComfyGate in front)"
        case (.compose, false):
            "Docker Compose project written, Docker skipped (--skip-docker): tested with a gateway on this host in front of \(plan.upstream.absoluteString)"
        case (.existingComfyUI, _): "ComfyGate on this host in front of the existing ComfyUI at \(plan.upstream.absoluteString)"
        }
    }

    static func seconds(_ duration: Duration) -> String {
        let value = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        return value < 10 ? String(format: "%.2f s", value) : String(format: "%.1f s", value)
    }

    private static func cell(_ text: String) -> String {
        text.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
    }
}

import Foundation

/// The table printed on a terminal: one line per check, the cause and fix under each failure or warning.
public struct TerminalRenderer: Sendable {
    /// ANSI colours; set it only when stdout is a TTY.
    public var colour: Bool

    public init(colour: Bool) { self.colour = colour }

    public func render(_ report: DoctorReport) -> String {
        var lines = ["comfygate doctor — \(report.url) — \(report.target.displayName)", ""]
        let titleWidth = report.checks.map(\.id.title.count).max() ?? 0
        for check in report.checks {
            let label = paint(check.status.rawValue.uppercased().padding(toLength: 4, withPad: " ", startingAt: 0), check.status)
            let title = check.id.title.padding(toLength: titleWidth, withPad: " ", startingAt: 0)
            let time = (check.status == .skip ? "" : check.duration.shortText).leftPadded(to: 8)
            lines.append("  \(label)  \(title)  \(time)  \(check.evidence)")
            if let diagnosis = check.diagnosis, check.status == .fail || check.status == .warn {
                let indent = String(repeating: " ", count: 10)
                lines.append(indent + dim("cause: ") + diagnosis.cause + dim(" [\(diagnosis.code)]"))
                lines.append(indent + dim("fix:   ") + diagnosis.fix)
            }
        }
        lines.append("")
        lines.append(Self.summary(report))
        return lines.joined(separator: "\n") + "\n"
    }

    /// `9 passed, 1 warning, 1 failed, 2 skipped — success rate 91% (10 of 11 run) in 0.42 s`.
    static func summary(_ report: DoctorReport) -> String {
        var text = "\(report.count(.pass)) passed, \(report.count(.warn)) warning(s), \(report.count(.fail)) failed, \(report.count(.skip)) skipped"
        if let rate = report.successRate {
            let run = report.checks.count - report.count(.skip)
            text += " — success rate \(Int((rate * 100).rounded()))% (\(report.count(.pass) + report.count(.warn)) of \(run) run)"
        }
        return text + " in \(report.duration.shortText)"
    }

    private func paint(_ text: String, _ status: CheckStatus) -> String {
        guard colour else { return text }
        let code = switch status {
        case .pass: "32"
        case .warn: "33"
        case .fail: "1;31"
        case .skip: "2"
        }
        return "\u{1B}[\(code)m\(text)\u{1B}[0m"
    }

    private func dim(_ text: String) -> String { colour ? "\u{1B}[2m\(text)\u{1B}[0m" : text }
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}

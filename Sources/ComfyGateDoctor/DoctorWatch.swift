public import Foundation
import Synchronization
import UnixSignals

/// `--watch N`: runs the doctor every `interval` and reports only the checks whose state changed, with a timestamp.
public struct DoctorWatch: Sendable {
    public let doctor: Doctor
    public let interval: Duration
    let now: @Sendable () -> Date

    public init(doctor: Doctor, interval: Duration, now: @escaping @Sendable () -> Date = { Date() }) {
        self.doctor = doctor
        self.interval = interval
        self.now = now
    }

    /// Runs passes until `stop` returns, then returns the last complete report (nil if none finished).
    /// - Parameters:
    ///   - stop: returns when watching must end, e.g. ``untilInterrupted()``.
    ///   - emit: receives each change line (the first pass reports every check).
    public func run(until stop: @escaping @Sendable () async -> Void, emit: @escaping @Sendable (String) -> Void) async -> DoctorReport? {
        let last = LastReport()
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await stop() }
            group.addTask {
                while !Task.isCancelled {
                    let report = await doctor.run()
                    if Task.isCancelled { return }
                    let previous = last.swap(report)
                    for line in Self.changes(from: previous, to: report, at: now()) { emit(line) }
                    try? await Task.sleep(for: interval)
                }
            }
            await group.next()
            group.cancelAll()
        }
        return last.value
    }

    /// Returns at the first SIGINT or SIGTERM (the signals are trapped from the call on).
    public static func untilInterrupted() -> @Sendable () async -> Void {
        {
            for await _ in await UnixSignalsSequence(trapping: .sigint, .sigterm) { return }
        }
    }

    /// One line per check whose status differs from `previous` (every check when there is none).
    public static func changes(from previous: DoctorReport?, to report: DoctorReport, at date: Date) -> [String] {
        let stamp = ISO8601DateFormatter().string(from: date)
        var lines: [String] = []
        for check in report.checks {
            let before = previous?[check.id]?.status
            guard before != check.status else { continue }
            let transition = before.map { "\($0.rawValue) → \(check.status.rawValue)" } ?? check.status.rawValue
            var line = "\(stamp)  \(check.id.rawValue): \(transition) — \(check.evidence)"
            if let code = check.diagnosis?.code, check.status == .fail || check.status == .warn { line += " [\(code)]" }
            lines.append(line)
        }
        if previous == nil || previous?.exitCode != report.exitCode {
            lines.append("\(stamp)  overall: \(report.exitCode == 0 ? "pass" : "fail") — \(TerminalRenderer.summary(report))")
        }
        return lines
    }
}

/// The latest report of a watch, shared between the loop and the caller.
private final class LastReport: Sendable {
    private let report = Mutex<DoctorReport?>(nil)

    /// Stores `new` and returns the previous report.
    func swap(_ new: DoctorReport) -> DoctorReport? {
        report.withLock { value in
            defer { value = new }
            return value
        }
    }

    var value: DoctorReport? { report.withLock { $0 } }
}

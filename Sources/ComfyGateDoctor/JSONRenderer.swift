import Foundation

/// `--json`: the report as one JSON document, schema `comfygate.doctor/1` (documented in docs/doctor.md).
///
/// Stable: keys are only ever added; check ids and cause codes keep their meaning.
public struct JSONRenderer: Sendable {
    public static let schema = "comfygate.doctor/1"

    public init() {}

    public func render(_ report: DoctorReport) -> String {
        let document = Document(report)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        let data = (try? encoder.encode(document)) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    struct Document: Encodable {
        var schema = JSONRenderer.schema
        var url: String
        var target: String
        var startedAt: Date
        var durationMs: Double
        var outcome: String
        var exitCode: Int32
        var summary: Summary
        var checks: [Check]
        var comfyui: ComfyUI?

        enum CodingKeys: String, CodingKey {
            case schema, url, target, outcome, summary, checks, comfyui
            case startedAt = "started_at"
            case durationMs = "duration_ms"
            case exitCode = "exit_code"
        }

        init(_ report: DoctorReport) {
            url = report.url
            target = report.target.rawValue
            startedAt = report.startedAt
            durationMs = Self.round(report.duration.milliseconds)
            outcome = report.exitCode == 0 ? "pass" : "fail"
            exitCode = report.exitCode
            summary = Summary(
                pass: report.count(.pass), warn: report.count(.warn), fail: report.count(.fail), skip: report.count(.skip),
                successRate: report.successRate.map { Self.round($0 * 1000) / 1000 })
            checks = report.checks.map {
                Check(
                    id: $0.id.rawValue, title: $0.id.title, status: $0.status.rawValue, durationMs: Self.round($0.duration.milliseconds),
                    evidence: $0.evidence, cause: $0.diagnosis?.code, causeText: $0.diagnosis?.cause, fix: $0.diagnosis?.fix)
            }
            comfyui = report.comfyUI.map {
                ComfyUI(
                    version: $0.version, python: $0.python, pytorch: $0.pytorch,
                    devices: $0.devices.map { Device(name: $0.name, type: $0.type, vramTotal: $0.vramTotal, vramFree: $0.vramFree) })
            }
        }

        static func round(_ value: Double) -> Double { (value * 10).rounded() / 10 }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(schema, forKey: .schema)
            try container.encode(url, forKey: .url)
            try container.encode(target, forKey: .target)
            try container.encode(startedAt, forKey: .startedAt)
            try container.encode(durationMs, forKey: .durationMs)
            try container.encode(outcome, forKey: .outcome)
            try container.encode(exitCode, forKey: .exitCode)
            try container.encode(summary, forKey: .summary)
            try container.encode(checks, forKey: .checks)
            try container.encode(comfyui, forKey: .comfyui)
        }
    }

    struct Summary: Encodable {
        var pass: Int
        var warn: Int
        var fail: Int
        var skip: Int
        var successRate: Double?

        enum CodingKeys: String, CodingKey {
            case pass, warn, fail, skip
            case successRate = "success_rate"
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(pass, forKey: .pass)
            try container.encode(warn, forKey: .warn)
            try container.encode(fail, forKey: .fail)
            try container.encode(skip, forKey: .skip)
            try container.encode(successRate, forKey: .successRate)
        }
    }

    struct Check: Encodable {
        var id: String
        var title: String
        var status: String
        var durationMs: Double
        var evidence: String
        var cause: String?
        var causeText: String?
        var fix: String?

        enum CodingKeys: String, CodingKey {
            case id, title, status, evidence, cause, fix
            case durationMs = "duration_ms"
            case causeText = "cause_text"
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(id, forKey: .id)
            try container.encode(title, forKey: .title)
            try container.encode(status, forKey: .status)
            try container.encode(durationMs, forKey: .durationMs)
            try container.encode(evidence, forKey: .evidence)
            try container.encode(cause, forKey: .cause)
            try container.encode(causeText, forKey: .causeText)
            try container.encode(fix, forKey: .fix)
        }
    }

    struct ComfyUI: Encodable {
        var version: String
        var python: String
        var pytorch: String
        var devices: [Device]
    }

    struct Device: Encodable {
        var name: String
        var type: String
        var vramTotal: Int
        var vramFree: Int

        enum CodingKeys: String, CodingKey {
            case name, type
            case vramTotal = "vram_total"
            case vramFree = "vram_free"
        }
    }
}

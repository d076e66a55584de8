public import Foundation
public import Logging
import Synchronization

/// How log lines are written: `log_format` in the configuration.
public enum LogFormat: String, Sendable, CaseIterable {
    /// `key=value` pairs (``StructuredLogHandler/line(time:level:label:message:metadata:)``).
    case logfmt
    /// One JSON object per line (``StructuredLogHandler/jsonLine(time:level:label:message:metadata:)``).
    case json
}

/// A log handler writing one line per event, which no logged value can break or forge, as logfmt:
///
///     time=2025-01-02T03:04:05.678Z level=info label=comfygate msg="login.failed" client=127.0.0.1 user="eve\nadmin"
///
/// or as JSON:
///
///     {"time":"2025-01-02T03:04:05.678Z","level":"info","label":"comfygate","msg":"login.failed","client":"127.0.0.1","user":"eve\nadmin"}
///
/// `time`, `level`, `label` and `msg` come first, then the metadata sorted by key. In logfmt a value is written bare
/// only when it is made of letters, digits and `-._:/@+%,[]~`; otherwise it is quoted. Quoted text (every JSON
/// string) has `"` and `\` escaped and every control character (C0, DEL, C1), line or paragraph separator and
/// bidirectional control written as `\n`, `\r`, `\t` or `\uXXXX`. Metadata keys keep only letters, digits and
/// `_.-` (others become `_`), and one that would repeat a key already on the line gets a leading `_`, so a value
/// can never pose as another field. In JSON, numbers logged as such (`.stringConvertible(200)`) are numbers.
public struct StructuredLogHandler: LogHandler {
    /// Receives each finished line, without its line feed.
    public typealias Sink = @Sendable (String) -> Void

    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let format: LogFormat
    private let sink: Sink

    /// A handler for `label` writing lines in `format` to `sink` (default: standard error).
    public init(
        label: String, format: LogFormat = .logfmt, metadataProvider: Logger.MetadataProvider? = nil,
        sink: @escaping Sink = Self.standardError
    ) {
        self.label = label
        self.format = format
        self.metadataProvider = metadataProvider
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadataProvider?.get() ?? [:]
        merged.merge(metadata) { _, handler in handler }
        if let eventMetadata = event.metadata { merged.merge(eventMetadata) { _, logged in logged } }
        if let error = event.error, merged["error"] == nil { merged["error"] = "\(error)" }
        let write = format == .json ? Self.jsonLine : Self.line
        sink(write(Date(), event.level, label, event.message.description, merged))
    }

    /// Writes a line and its line feed to standard error in one piece, one line at a time.
    public static let standardError: Sink = { line in
        standardErrorLock.withLock { _ in FileHandle.standardError.write(Data((line + "\n").utf8)) }
    }

    private static let standardErrorLock = Mutex(())

    /// One event as a logfmt line.
    public static func line(time: Date, level: Logger.Level, label: String, message: String, metadata: Logger.Metadata) -> String {
        var fields = [
            "time=" + time.formatted(timeFormat), "level=" + level.rawValue, "label=" + value(label),
            "msg=" + quoted(message),
        ]
        for (name, metadataValue) in fieldNames(metadata) { fields.append(name + "=" + value(metadataValue.description)) }
        return fields.joined(separator: " ")
    }

    /// One event as a JSON object on one line.
    public static func jsonLine(time: Date, level: Logger.Level, label: String, message: String, metadata: Logger.Metadata) -> String {
        var fields = [
            #""time":"# + quoted(time.formatted(timeFormat)), #""level":"# + quoted(level.rawValue), #""label":"# + quoted(label),
            #""msg":"# + quoted(message),
        ]
        for (name, metadataValue) in fieldNames(metadata) { fields.append(quoted(name) + ":" + json(metadataValue)) }
        return "{" + fields.joined(separator: ",") + "}"
    }

    /// The metadata sorted by key, each key made safe and distinct from the fixed fields and from each other.
    private static func fieldNames(_ metadata: Logger.Metadata) -> [(String, Logger.Metadata.Value)] {
        var used: Set<String> = ["time", "level", "label", "msg"]
        return metadata.sorted(by: { $0.key < $1.key }).map { key, metadataValue in
            var name = self.key(key)
            while !used.insert(name).inserted { name = "_" + name }
            return (name, metadataValue)
        }
    }

    /// A metadata value as JSON: numbers as numbers, lists as arrays, dictionaries as objects (keys sorted),
    /// everything else as a string.
    private static func json(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let text): quoted(text)
        case .stringConvertible(let number as any BinaryInteger): "\(number)"
        case .stringConvertible(let number as Double) where number.isFinite: "\(number)"
        case .stringConvertible(let other): quoted(other.description)
        case .array(let items): "[" + items.map(json).joined(separator: ",") + "]"
        case .dictionary(let entries):
            "{" + entries.sorted(by: { $0.key < $1.key }).map { quoted($0.key) + ":" + json($0.value) }.joined(separator: ",") + "}"
        }
    }

    private static let timeFormat = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    /// A key made only of letters, digits and `_.-`.
    static func key(_ text: String) -> String {
        let kept = String(text.unicodeScalars.map { isKeyScalar($0) ? Character($0) : "_" })
        return kept.isEmpty ? "_" : kept
    }

    /// The text bare when every character is safe, else quoted and escaped.
    static func value(_ text: String) -> String {
        !text.isEmpty && text.unicodeScalars.allSatisfy(isBareValueScalar) ? text : quoted(text)
    }

    /// The text between double quotes, escaped so the line stays one line and the quotes cannot be closed early.
    static func quoted(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where mustEscape(scalar):
                let hex = String(scalar.value, radix: 16, uppercase: true)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }

    /// C0 and C1 controls, DEL, line and paragraph separators, and the bidirectional controls that reorder text.
    private static func mustEscape(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F, 0x2028, 0x2029, 0x061C, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: true
        default: false
        }
    }

    private static func isKeyScalar(_ scalar: Unicode.Scalar) -> Bool {
        scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || "_.-".unicodeScalars.contains(scalar))
    }

    private static func isBareValueScalar(_ scalar: Unicode.Scalar) -> Bool {
        scalar.isASCII
            && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || "-._:/@+%,[]~".unicodeScalars.contains(scalar))
    }
}

public import Foundation
public import Logging
import Synchronization

/// A log handler writing one logfmt line per event, which no logged value can break or forge:
///
///     time=2025-01-02T03:04:05.678Z level=info label=comfygate msg="login.failed" client=127.0.0.1 user="eve\nadmin"
///
/// `time`, `level`, `label` and `msg` come first, then the metadata sorted by key. A value is written bare only
/// when it is made of letters, digits and `-._:/@+%,[]~`; otherwise it is quoted, with `"` and `\` escaped and
/// every control character (C0, DEL, C1), line or paragraph separator and bidirectional control written as
/// `\n`, `\r`, `\t` or `\uXXXX`. Metadata keys keep only letters, digits and `_.-` (others become `_`), and one
/// that would repeat a key already on the line gets a leading `_`, so a value can never pose as another field.
public struct StructuredLogHandler: LogHandler {
    /// Receives each finished line, without its line feed.
    public typealias Sink = @Sendable (String) -> Void

    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let sink: Sink

    /// A handler for `label` writing to `sink` (default: standard error).
    public init(label: String, metadataProvider: Logger.MetadataProvider? = nil, sink: @escaping Sink = Self.standardError) {
        self.label = label
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
        sink(Self.line(time: Date(), level: event.level, label: label, message: event.message.description, metadata: merged))
    }

    /// Writes a line and its line feed to standard error in one piece, one line at a time.
    public static let standardError: Sink = { line in
        standardErrorLock.withLock { _ in FileHandle.standardError.write(Data((line + "\n").utf8)) }
    }

    private static let standardErrorLock = Mutex(())

    /// One event as a logfmt line.
    public static func line(time: Date, level: Logger.Level, label: String, message: String, metadata: Logger.Metadata) -> String {
        var used: Set<String> = ["time", "level", "label", "msg"]
        var fields = [
            "time=" + time.formatted(timeFormat), "level=" + level.rawValue, "label=" + value(label),
            "msg=" + quoted(message),
        ]
        for (key, metadataValue) in metadata.sorted(by: { $0.key < $1.key }) {
            var name = self.key(key)
            while !used.insert(name).inserted { name = "_" + name }
            fields.append(name + "=" + value(metadataValue.description))
        }
        return fields.joined(separator: " ")
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

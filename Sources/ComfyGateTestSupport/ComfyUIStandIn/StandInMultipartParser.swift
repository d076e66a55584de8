import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Incremental `multipart/form-data` parser. Small fields are kept in memory; file parts (those with a
/// `filename`) are written to a temporary file as they arrive, so an upload is never held whole in memory.
struct StandInMultipartParser {
    struct Part {
        var name: String
        var filename: String?
        var value: [UInt8] = []
        var tempPath: String?
        var size = 0
    }

    enum ParseError: Error { case malformed }

    private enum Phase { case preamble, afterDelimiter, headers, body, done }

    private let delimiter: [UInt8]  // "\r\n--" + boundary
    private var buffer: [UInt8]
    private var phase = Phase.preamble
    private var current: Part?
    private var handle: FileHandle?
    private let tempDirectory: String
    private(set) var parts: [Part] = []
    private static let smallFieldLimit = 1 << 20

    init(boundary: String, tempDirectory: String) {
        self.delimiter = Array("\r\n--\(boundary)".utf8)
        self.buffer = [0x0D, 0x0A]  // lets the first boundary match the delimiter form
        self.tempDirectory = tempDirectory
    }

    static func boundary(fromContentType contentType: String) -> String? {
        guard contentType.lowercased().hasPrefix("multipart/form-data") else { return nil }
        for parameter in contentType.split(separator: ";").dropFirst() {
            let pair = parameter.split(separator: "=", maxSplits: 1)
            guard pair.count == 2, pair[0].trimmingCharacters(in: .whitespaces).lowercased() == "boundary" else { continue }
            var value = pair[1].trimmingCharacters(in: .whitespaces)
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = String(value.dropFirst().dropLast()) }
            return value.isEmpty ? nil : value
        }
        return nil
    }

    /// Finds `needle` in `buffer` starting at `from`, using memchr for the first byte.
    private func find(_ needle: [UInt8], from: Int) -> Int? {
        guard buffer.count - from >= needle.count else { return nil }
        return buffer.withUnsafeBytes { raw -> Int? in
            let base = raw.baseAddress!
            var start = from
            let last = buffer.count - needle.count
            while start <= last {
                guard let hit = memchr(base + start, Int32(needle[0]), last - start + 1) else { return nil }
                let position = base.distance(to: UnsafeRawPointer(hit))
                if memcmp(base + position, needle, needle.count) == 0 { return position }
                start = position + 1
            }
            return nil
        }
    }

    mutating func feed(_ bytes: UnsafeRawBufferPointer) throws {
        buffer.append(contentsOf: bytes)
        try process()
    }

    mutating func finish() throws {
        try process()
        closeFile()
        guard phase == .done else { throw ParseError.malformed }
    }

    private mutating func closeFile() {
        try? handle?.close()
        handle = nil
    }

    private mutating func emit(_ range: Range<Int>) throws {
        guard !range.isEmpty, current != nil else { return }
        current!.size += range.count
        if let handle {
            try buffer.withUnsafeBytes { try handle.write(contentsOf: Data($0[range])) }
        } else if current!.value.count + range.count <= Self.smallFieldLimit {
            current!.value.append(contentsOf: buffer[range])
        }
    }

    private mutating func process() throws {
        var consumed = 0
        defer { if consumed > 0 { buffer.removeFirst(consumed) } }
        while true {
            switch phase {
            case .done:
                consumed = buffer.count
                return
            case .preamble:
                guard let at = find(delimiter, from: consumed) else {
                    consumed = max(consumed, buffer.count - delimiter.count)
                    return
                }
                consumed = at + delimiter.count
                phase = .afterDelimiter
            case .afterDelimiter:
                guard buffer.count - consumed >= 2 else { return }
                if buffer[consumed] == 0x2D, buffer[consumed + 1] == 0x2D {
                    phase = .done
                    continue
                }
                // optional transport padding then CRLF
                guard let crlf = find([0x0D, 0x0A], from: consumed) else { return }
                consumed = crlf + 2
                phase = .headers
            case .headers:
                guard let end = find([0x0D, 0x0A, 0x0D, 0x0A], from: consumed) else {
                    if buffer.count - consumed > 64 * 1024 { throw ParseError.malformed }
                    return
                }
                let text = String(decoding: buffer[consumed..<end], as: UTF8.self)
                consumed = end + 4
                var part = Part(name: "")
                for line in text.split(separator: "\r\n") {
                    guard let colon = line.firstIndex(of: ":") else { continue }
                    guard line[..<colon].lowercased() == "content-disposition" else { continue }
                    let params = Self.dispositionParameters(String(line[line.index(after: colon)...]))
                    part.name = params["name"] ?? ""
                    part.filename = params["filename"]
                }
                if part.filename != nil {
                    let path = tempDirectory + "/upload-" + UUID().uuidString.lowercased()
                    _ = FileManager.default.createFile(atPath: path, contents: nil)
                    handle = FileHandle(forWritingAtPath: path)
                    part.tempPath = path
                }
                current = part
                phase = .body
            case .body:
                if let at = find(delimiter, from: consumed) {
                    try emit(consumed..<at)
                    consumed = at + delimiter.count
                    closeFile()
                    parts.append(current!)
                    current = nil
                    phase = .afterDelimiter
                } else {
                    let safe = max(consumed, buffer.count - delimiter.count + 1)
                    try emit(consumed..<safe)
                    consumed = safe
                    return
                }
            }
        }
    }

    /// Parses `form-data; name="image"; filename="a.png"` parameters.
    static func dispositionParameters(_ value: String) -> [String: String] {
        var result: [String: String] = [:]
        var chars = Substring(value)
        while !chars.isEmpty {
            while let f = chars.first, f == ";" || f == " " || f == "\t" { chars.removeFirst() }
            let semi = chars.firstIndex(of: ";")
            guard let eq = chars.firstIndex(of: "="), semi.map({ eq < $0 }) ?? true else {
                // a bare token such as `form-data`
                if let semi { chars = chars[semi...] } else { chars = "" }
                continue
            }
            let key = chars[..<eq].trimmingCharacters(in: .whitespaces).lowercased()
            chars = chars[chars.index(after: eq)...]
            var val = ""
            if chars.first == "\"" {
                chars.removeFirst()
                while let c = chars.first {
                    chars.removeFirst()
                    if c == "\\", let n = chars.first {
                        val.append(n)
                        chars.removeFirst()
                    } else if c == "\"" {
                        break
                    } else {
                        val.append(c)
                    }
                }
            } else {
                let end = chars.firstIndex(of: ";") ?? chars.endIndex
                val = chars[..<end].trimmingCharacters(in: .whitespaces)
                chars = chars[end...]
            }
            if key == "filename*", val.lowercased().hasPrefix("utf-8''") {
                result["filename"] = String(val.dropFirst(7)).removingPercentEncoding ?? val
            } else if result[key] == nil || key != "filename" {
                result[key] = val
            }
        }
        return result
    }

    /// Removes temp files of parts not moved away.
    func cleanUp() {
        for part in parts { if let path = part.tempPath { try? FileManager.default.removeItem(atPath: path) } }
    }
}

import Foundation

/// Reads the token from `--token-file`: the whole file (trimmed) or, with a key, one variable of a dotenv file.
public enum TokenSource {
    /// A token file could not be used; the message names the file and key, never the value.
    public struct Failure: Error, Equatable, CustomStringConvertible {
        public let description: String
    }

    /// - Throws: ``Failure`` when the file cannot be read, is empty, or lacks `key`.
    public static func read(file path: String, key: String?) throws(Failure) -> String {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw Failure(description: "cannot read token file \(path): \(error.localizedDescription)")
        }
        if let key {
            guard let value = dotenv(text)[key] else { throw Failure(description: "\(path) has no variable \(key)") }
            guard !value.isEmpty else { throw Failure(description: "\(key) is empty in \(path)") }
            return value
        }
        let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty else { throw Failure(description: "token file \(path) is empty") }
        return token
    }

    /// Parses dotenv text: `KEY=value`, optional `export `, `#` comments (at line start, or after a space in an
    /// unquoted value), single quotes taken literally, double quotes with `\n`, `\"`, `\\` escapes. No interpolation.
    public static func dotenv(_ text: String) -> [String: String] {
        var values: [String: String] = [:]
        for rawLine in text.split(omittingEmptySubsequences: true, whereSeparator: \.isNewline) {
            var line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("export ") { line = String(line.dropFirst("export ".count)).trimmingCharacters(in: .whitespaces) }
            guard let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces)
            var value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if value.hasPrefix("'"), let end = value.dropFirst().firstIndex(of: "'") {
                value = String(value[value.index(after: value.startIndex)..<end])
            } else if value.hasPrefix("\"") {
                var result = ""
                var escaped = false
                for character in value.dropFirst() {
                    if escaped {
                        result.append(character == "n" ? "\n" : character)
                        escaped = false
                    } else if character == "\\" {
                        escaped = true
                    } else if character == "\"" {
                        break
                    } else {
                        result.append(character)
                    }
                }
                value = result
            } else if let comment = value.range(of: " #") ?? value.range(of: "\t#") {
                value = value[..<comment.lowerBound].trimmingCharacters(in: .whitespaces)
            }
            values[key] = value
        }
        return values
    }
}

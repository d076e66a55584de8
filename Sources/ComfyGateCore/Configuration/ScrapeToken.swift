import Foundation

/// The token a Prometheus scraper sends (`Authorization: Bearer …`) to read `GET /metrics`, read once at start
/// from the file `metrics_token_file` names. The file must be readable by its owner only (mode 0600 or stricter).
/// The token itself never appears in a description, a log line or an error.
public struct ScrapeToken: Sendable, Equatable, CustomStringConvertible {
    private let value: String

    /// Fewer characters than this cannot be a token worth guarding `/metrics` with.
    public static let minimumLength = 16

    /// Reads the token from `path`: its first line, without surrounding white space.
    /// - Throws: one line naming the file and what is wrong with it (never the token).
    public init(file path: String) throws(SecretsError) {
        let url = URL(fileURLWithPath: path)
        switch try SecretFile.inspect(url) {
        case .regular(let mode, _, _) where mode & 0o077 != 0:
            throw SecretsError(
                "\(path) has mode \(SecretFile.octal(mode)): the scrape token file must be readable by its owner only (chmod 600 \(path))")
        case .regular:
            break
        case .missing:
            throw SecretsError("\(path) does not exist")
        case .directory, .symlink, .other:
            throw SecretsError("\(path) is not a regular file")
        }
        let text = String(decoding: try SecretFile.read(url), as: UTF8.self)
        let token = text.split(whereSeparator: \.isNewline).first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        guard token.count >= Self.minimumLength, token.allSatisfy({ $0.isASCII && !$0.isWhitespace && !$0.isNewline }) else {
            throw SecretsError("\(path) does not hold a token of at least \(Self.minimumLength) printable ASCII characters on its first line")
        }
        value = token
    }

    /// Whether `presented` is the token, compared in constant time.
    public func matches(_ presented: String) -> Bool {
        ConstantTime.equals(presented, value)
    }

    public var description: String { "(scrape token)" }
}

/// The characters a generated secret is drawn from. All of them are safe unquoted in URLs, shells and dotenv
/// files.
public enum SecretAlphabet: String, Sendable, CaseIterable {
    /// `0-9A-Za-z`.
    case base62
    /// `0-9A-Za-z`, `-` and `_` (RFC 4648 URL-safe base64 alphabet).
    case urlsafe
    /// `0-9a-f`.
    case hex

    var characters: [UInt8] {
        switch self {
        case .base62: Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)
        case .urlsafe: Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_".utf8)
        case .hex: Array("0123456789abcdef".utf8)
        }
    }
}

/// Generates random secrets from the system's secure random generator.
public enum SecretGenerator {
    /// The longest secret generated: bcrypt reads at most 72 bytes.
    public static let maxLength = PasswordHasher.maxSecretBytes

    /// `length` characters drawn uniformly from `alphabet` (rejection sampling, no modulo bias).
    public static func generate(length: Int, alphabet: SecretAlphabet) -> String {
        precondition((1...maxLength).contains(length))
        let characters = alphabet.characters
        let limit = 256 - 256 % characters.count
        var generator = SystemRandomNumberGenerator()
        var result = [UInt8]()
        result.reserveCapacity(length)
        while result.count < length {
            let byte = Int(UInt8.random(in: .min ... .max, using: &generator))
            if byte < limit { result.append(characters[byte % characters.count]) }
        }
        return String(decoding: result, as: UTF8.self)
    }

    /// The first 8 hex digits of the SHA-256 of a value: enough to tell values apart, useless to recover them.
    public static func fingerprint(_ value: some StringProtocol) -> String {
        String(TokenFormat.digest(value).prefix(8))
    }
}

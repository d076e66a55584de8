/// A syntactically valid bcrypt hash: `$2a$`, `$2b$` or `$2y$`, a two-digit cost, 22 characters of salt and
/// 31 of checksum, 60 characters in all.
public struct BcryptHash: Sendable, Equatable, CustomStringConvertible {
    /// The full 60-character hash string.
    public let string: String
    /// `2a`, `2b` or `2y`.
    public let variant: String
    /// log2 of the number of rounds.
    public let cost: Int

    static let alphabet = Set("./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8)

    /// Parses a hash, explaining what is wrong with a malformed one.
    public init(parsing text: some StringProtocol) throws(BcryptHashError) {
        let text = String(text)
        let bytes = Array(text.utf8)
        guard bytes.first == UInt8(ascii: "$") else { throw .notBcrypt("it does not start with '$2'") }
        guard bytes.count >= 7, bytes[1] == UInt8(ascii: "2"), bytes[3] == UInt8(ascii: "$"), bytes[6] == UInt8(ascii: "$")
        else { throw .notBcrypt("it does not start with '$2a$', '$2b$' or '$2y$' and a cost") }
        let variant = String(decoding: bytes[1...2], as: UTF8.self)
        guard ["2a", "2b", "2y"].contains(variant) else {
            throw .unsupportedVariant(variant)
        }
        guard let cost = Int(String(decoding: bytes[4...5], as: UTF8.self)), (4...31).contains(cost) else {
            throw .badCost(String(decoding: bytes[4...5], as: UTF8.self))
        }
        guard bytes.count == 60 else { throw .wrongLength(bytes.count) }
        if let bad = bytes[7...].first(where: { !Self.alphabet.contains($0) }) {
            throw .badCharacter(Character(Unicode.Scalar(bad)))
        }
        self.string = text
        self.variant = variant
        self.cost = cost
    }

    public var description: String { "bcrypt $\(variant)$ cost \(cost)" }

    /// The same hash with a `$2b$` prefix: `$2a$`, `$2b$` and `$2y$` hashes of ASCII-safe secrets are computed
    /// identically, and the bcrypt implementation we call knows only `$2a$`/`$2b$`.
    var normalized: String {
        variant == "2y" ? "$2b$" + string.dropFirst(4) : string
    }
}

/// Why a string is not a usable bcrypt hash.
public enum BcryptHashError: Error, Equatable, CustomStringConvertible {
    case notBcrypt(String)
    case unsupportedVariant(String)
    case badCost(String)
    case wrongLength(Int)
    case badCharacter(Character)

    public var description: String {
        switch self {
        case .notBcrypt(let why): "not a bcrypt hash: \(why)"
        case .unsupportedVariant(let variant): "unsupported bcrypt variant '$\(variant)$' (expected $2a$, $2b$ or $2y$)"
        case .badCost(let cost): "bad bcrypt cost '\(cost)' (expected two digits from 04 to 31)"
        case .wrongLength(let count): "bcrypt hashes have 60 characters, this one has \(count)"
        case .badCharacter(let character): "character '\(character)' is not in bcrypt's alphabet"
        }
    }
}

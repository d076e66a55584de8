import Crypto
import Foundation

/// The shape of ComfyGate API tokens: `cgt_<id>_<secret>`.
///
/// - `cgt_` makes the token recognisable to people and secret scanners;
/// - `<id>` is 12 base62 characters, public, used to find the stored record;
/// - `<secret>` is 43 base62 characters: 256 bits from the system's secure random generator.
///
/// The whole token is 60 characters of `[A-Za-z0-9_]`: safe in URLs, shells and dotenv files, and under
/// bcrypt's 72-byte limit.
public enum TokenFormat {
    public static let prefix = "cgt_"
    public static let idLength = 12
    public static let secretLength = 43
    public static let tokenLength = prefix.count + idLength + 1 + secretLength

    static let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)

    /// A freshly generated token and its public id.
    public struct Generated: Sendable {
        public let id: String
        public let token: String
        /// What is stored: the SHA-256 digest of `token`.
        public var verifier: APIToken.Verifier { .sha256(TokenFormat.digest(token)) }
    }

    /// Makes a new random token.
    public static func generate() -> Generated {
        let id = randomBase62(count: idLength)
        let secret = randomBase62(count: secretLength)
        return Generated(id: id, token: "\(prefix)\(id)_\(secret)")
    }

    /// A random identifier in the token id alphabet (used for imported tokens and other records).
    public static func randomID() -> String { randomBase62(count: idLength) }

    /// The id part of a presented value, if it has the shape of a ComfyGate token.
    ///
    /// Byte comparisons and range checks rather than string operations: this runs for every request that
    /// carries a token.
    public static func id(ofPresented value: some StringProtocol) -> String? {
        let utf8 = value.utf8
        guard utf8.count == tokenLength else { return nil }
        let bytes = utf8.withContiguousStorageIfAvailable { Array($0) } ?? Array(utf8)
        let idStart = prefixBytes.count
        let separator = idStart + idLength
        guard bytes[..<idStart].elementsEqual(prefixBytes), bytes[separator] == UInt8(ascii: "_") else { return nil }
        let isBase62 = { (byte: UInt8) in
            (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
        }
        guard bytes[idStart..<separator].allSatisfy(isBase62), bytes[(separator + 1)...].allSatisfy(isBase62)
        else { return nil }
        return String(decoding: bytes[idStart..<separator], as: UTF8.self)
    }

    private static let prefixBytes = Array(prefix.utf8)

    /// Hex-encoded SHA-256 of a value.
    public static func digest(_ value: some StringProtocol) -> String {
        var hasher = SHA256()
        if value.utf8.withContiguousStorageIfAvailable({ hasher.update(bufferPointer: UnsafeRawBufferPointer($0)) }) == nil {
            hasher.update(data: Array(value.utf8))
        }
        return hasher.finalize().withUnsafeBytes(hex)
    }

    /// Lower-case hexadecimal, written straight into the string's storage: it runs for every request that
    /// carries a token or a session (`String(_:radix:)` per nibble cost tens of microseconds per digest).
    static func hex(_ bytes: UnsafeRawBufferPointer) -> String {
        String(unsafeUninitializedCapacity: bytes.count * 2) { text in
            for (index, byte) in bytes.enumerated() {
                text[2 * index] = hexDigits[Int(byte >> 4)]
                text[2 * index + 1] = hexDigits[Int(byte & 0x0F)]
            }
            return bytes.count * 2
        }
    }

    /// Uniform random base62 characters by rejection sampling (no modulo bias); also used for passwords.
    public static func randomBase62(count: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        var result = [UInt8]()
        result.reserveCapacity(count)
        while result.count < count {
            let byte = UInt8.random(in: .min ... .max, using: &generator)
            if byte < 248 { result.append(alphabet[Int(byte % 62)]) }
        }
        return String(decoding: result, as: UTF8.self)
    }
}

private let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

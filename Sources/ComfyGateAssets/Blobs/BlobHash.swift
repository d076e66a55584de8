/// The name of a blob: its BLAKE3 hash, written `blake3:` followed by 64 lowercase hexadecimal digits.
public struct BlobHash: Sendable, Hashable, LosslessStringConvertible {
    /// The scheme prefix of the text form.
    public static let prefix = "blake3:"

    /// The 64 lowercase hexadecimal digits of the 32-byte digest.
    public let hex: String

    /// The hash with this 32-byte BLAKE3 digest.
    public init(digest: [UInt8]) {
        precondition(digest.count == 32, "a BLAKE3 digest has 32 bytes, not \(digest.count)")
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(64)
        for byte in digest {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        hex = String(decoding: text, as: UTF8.self)
    }

    /// Parses `blake3:<64 lowercase hex digits>`; anything else (another prefix, another length, uppercase or
    /// other characters) gives nil.
    public init?(_ description: String) {
        guard description.hasPrefix(Self.prefix) else { return nil }
        let hex = description.utf8.dropFirst(Self.prefix.utf8.count)
        guard hex.count == 64, hex.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) else {
            return nil
        }
        self.hex = String(decoding: hex, as: UTF8.self)
    }

    /// The 32 bytes of the digest.
    public var digest: [UInt8] {
        let digits = Array(hex.utf8)
        return stride(from: 0, to: digits.count, by: 2).map { hexValue(digits[$0]) << 4 | hexValue(digits[$0 + 1]) }
    }

    /// `blake3:` and the hexadecimal digest.
    public var description: String { Self.prefix + hex }

    /// The value of a lowercase hexadecimal digit, which `hex` holds only.
    private func hexValue(_ digit: UInt8) -> UInt8 {
        digit <= 0x39 ? digit - 0x30 : digit - 0x61 + 10
    }
}

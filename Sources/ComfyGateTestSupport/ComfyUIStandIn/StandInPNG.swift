/// A minimal PNG encoder (8-bit RGB, no filter, zlib with *stored* deflate blocks) and the checksums it needs.
/// Written here so the stand-in needs no zlib; tests use ``StandInPNG/crc32(_:)`` to check chunk CRCs.
public enum StandInPNG {
    /// The 8-byte PNG signature.
    public static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    private static let crcTable: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    /// CRC-32 (ISO 3309 / PNG) of `bytes`.
    public static func crc32(_ bytes: some Sequence<UInt8>) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = crcTable[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }

    /// Adler-32 of `bytes`.
    public static func adler32(_ bytes: some Sequence<UInt8>) -> UInt32 {
        var a: UInt32 = 1
        var b: UInt32 = 0
        var pending = 0
        for byte in bytes {
            a += UInt32(byte)
            b += a
            pending += 1
            if pending == 5552 {
                a %= 65521
                b %= 65521
                pending = 0
            }
        }
        return ((b % 65521) << 16) | (a % 65521)
    }

    /// Encodes a solid-colour RGB image. `color` is packed `0xRRGGBB`, as EmptyImage's `color` input.
    /// Extra chunks (e.g. `tEXt` metadata) go between IHDR and IDAT.
    public static func solidImage(width: Int, height: Int, color: Int, textChunks: [(String, String)] = []) -> [UInt8] {
        let r = UInt8((color >> 16) & 0xFF), g = UInt8((color >> 8) & 0xFF), bl = UInt8(color & 0xFF)
        var row: [UInt8] = [0]  // filter type 0 (None)
        row.reserveCapacity(1 + width * 3)
        for _ in 0..<width { row.append(contentsOf: [r, g, bl]) }
        var raw: [UInt8] = []
        raw.reserveCapacity(row.count * height)
        for _ in 0..<height { raw.append(contentsOf: row) }

        var ihdr: [UInt8] = []
        ihdr.appendBigEndian(UInt32(width))
        ihdr.appendBigEndian(UInt32(height))
        ihdr.append(contentsOf: [8, 2, 0, 0, 0])  // bit depth 8, colour type 2 (RGB), deflate, filter 0, no interlace

        var png = signature
        appendChunk("IHDR", ihdr, to: &png)
        for (key, text) in textChunks {
            appendChunk("tEXt", Array(key.utf8) + [0] + Array(text.utf8), to: &png)
        }
        appendChunk("IDAT", zlibStored(raw), to: &png)
        appendChunk("IEND", [], to: &png)
        return png
    }

    /// zlib stream (RFC 1950) holding `data` in stored (uncompressed) deflate blocks (RFC 1951 §3.2.4).
    public static func zlibStored(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]  // CM=8, CINFO=7, FLEVEL=0; 0x7801 % 31 == 0
        var offset = 0
        repeat {
            let length = min(65535, data.count - offset)
            let final: UInt8 = offset + length == data.count ? 1 : 0
            out.append(final)  // BFINAL + BTYPE=00
            out.append(UInt8(length & 0xFF))
            out.append(UInt8(length >> 8))
            out.append(UInt8(~length & 0xFF))
            out.append(UInt8((~length >> 8) & 0xFF))
            out.append(contentsOf: data[offset..<offset + length])
            offset += length
        } while offset < data.count
        out.appendBigEndian(adler32(data))
        return out
    }

    private static func appendChunk(_ type: String, _ data: [UInt8], to png: inout [UInt8]) {
        png.appendBigEndian(UInt32(data.count))
        let typeAndData = Array(type.utf8) + data
        png.append(contentsOf: typeAndData)
        png.appendBigEndian(crc32(typeAndData))
    }
}

extension Array where Element == UInt8 {
    mutating func appendBigEndian(_ value: UInt32) {
        append(UInt8(value >> 24))
        append(UInt8((value >> 16) & 0xFF))
        append(UInt8((value >> 8) & 0xFF))
        append(UInt8(value & 0xFF))
    }
}

import NIOCore

/// Deterministic content of the stand-in's virtual large files.
///
/// The byte at offset `i` is `UInt8(i % 251)` (251 is prime, so the pattern does not line up with
/// power-of-two chunk boundaries). The content is generated on the fly in chunks; a whole file is
/// never held in memory.
public enum StandInVirtualFile {
    /// Pattern period.
    public static let period = 251

    /// The byte at `offset` of every virtual file.
    public static func byte(at offset: Int) -> UInt8 { UInt8(offset % period) }

    /// `count` bytes starting at `offset`.
    public static func bytes(offset: Int, count: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count)
        while out.count < count {
            let start = (offset + out.count) % period
            let take = Swift.min(count - out.count, pattern.count - start)
            out.append(contentsOf: pattern[start..<start + take])
        }
        return out
    }

    /// Chunk size used when streaming a virtual file.
    static let chunkSize = 64 * 1024

    /// `period + chunkSize` bytes of pattern, so any chunk is one slice of it.
    static let pattern: [UInt8] = (0..<(period + chunkSize)).map { UInt8($0 % period) }

    /// The chunk `[offset, offset + length)`, `length <= chunkSize`.
    static func chunk(offset: Int, length: Int, allocator: ByteBufferAllocator) -> ByteBuffer {
        let start = offset % period
        var buffer = allocator.buffer(capacity: length)
        pattern.withUnsafeBufferPointer { p in
            _ = buffer.writeBytes(UnsafeBufferPointer(rebasing: p[start..<start + length]))
        }
        return buffer
    }
}

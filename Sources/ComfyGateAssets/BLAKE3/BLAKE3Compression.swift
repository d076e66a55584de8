/// The building blocks of BLAKE3 (https://github.com/BLAKE3-team/BLAKE3-specs): the compression function and
/// the fixed-size values it works on, each held in separate `UInt32` fields so that a compression works on local
/// values and allocates nothing.
enum BLAKE3 {
    /// Bytes of one block, the unit the compression function consumes.
    static let blockLength = 64
    /// Bytes of one chunk, a leaf of the hash tree: sixteen blocks.
    static let chunkLength = 1024
    /// Blocks in a full chunk.
    static let blocksPerChunk = chunkLength / blockLength

    /// 64 bytes in a layout Swift guarantees to be contiguous: a block waiting for compression or one block of
    /// output.
    typealias BlockBytes = (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64)

    /// A block of zero bytes.
    static let zeroBlock: BlockBytes = (0, 0, 0, 0, 0, 0, 0, 0)

    /// Domain separation flags, set in the last state word of a compression.
    enum Flag {
        static let chunkStart: UInt32 = 1 << 0
        static let chunkEnd: UInt32 = 1 << 1
        static let parent: UInt32 = 1 << 2
        static let root: UInt32 = 1 << 3
    }

    /// Eight words: the key of the hash function, or what a chunk or parent node passes up the tree.
    struct ChainingValue: Sendable {
        var h0, h1, h2, h3, h4, h5, h6, h7: UInt32

        /// The initialisation vector (SHA-256's), the key of the unkeyed hash mode.
        @inline(__always)
        static var initial: ChainingValue {
            ChainingValue(
                h0: 0x6A09_E667, h1: 0xBB67_AE85, h2: 0x3C6E_F372, h3: 0xA54F_F53A,
                h4: 0x510E_527F, h5: 0x9B05_688C, h6: 0x1F83_D9AB, h7: 0x5BE0_CD19)
        }

        /// Writes the eight words as 32 little-endian bytes at `base`, which needs no particular alignment.
        @inline(__always)
        func store(to base: UnsafeMutableRawPointer) {
            base.storeBytes(of: h0.littleEndian, toByteOffset: 0, as: UInt32.self)
            base.storeBytes(of: h1.littleEndian, toByteOffset: 4, as: UInt32.self)
            base.storeBytes(of: h2.littleEndian, toByteOffset: 8, as: UInt32.self)
            base.storeBytes(of: h3.littleEndian, toByteOffset: 12, as: UInt32.self)
            base.storeBytes(of: h4.littleEndian, toByteOffset: 16, as: UInt32.self)
            base.storeBytes(of: h5.littleEndian, toByteOffset: 20, as: UInt32.self)
            base.storeBytes(of: h6.littleEndian, toByteOffset: 24, as: UInt32.self)
            base.storeBytes(of: h7.littleEndian, toByteOffset: 28, as: UInt32.self)
        }
    }

    /// Sixteen message words, read from 64 bytes in little-endian order.
    struct MessageBlock {
        var m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12, m13, m14, m15: UInt32

        /// The words reordered for the next round, by the fixed permutation of the specification.
        @inline(__always)
        var permuted: MessageBlock {
            MessageBlock(
                m0: m2, m1: m6, m2: m3, m3: m10, m4: m7, m5: m0, m6: m4, m7: m13,
                m8: m1, m9: m11, m10: m12, m11: m5, m12: m9, m13: m14, m14: m15, m15: m8)
        }
    }

    /// The sixteen words a compression turns over.
    private struct State {
        var v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13, v14, v15: UInt32

        @inline(__always)
        static func rotateRight(_ word: UInt32, by count: UInt32) -> UInt32 {
            (word >> count) | (word << (32 - count))
        }

        /// The quarter-round: mixes two message words into one column or diagonal of the state.
        @inline(__always)
        static func mix(
            _ a: inout UInt32, _ b: inout UInt32, _ c: inout UInt32, _ d: inout UInt32, _ x: UInt32, _ y: UInt32
        ) {
            a = a &+ b &+ x
            d = rotateRight(d ^ a, by: 16)
            c = c &+ d
            b = rotateRight(b ^ c, by: 12)
            a = a &+ b &+ y
            d = rotateRight(d ^ a, by: 8)
            c = c &+ d
            b = rotateRight(b ^ c, by: 7)
        }

        /// One round: the four columns, then the four diagonals.
        @inline(__always)
        mutating func round(_ m: MessageBlock) {
            Self.mix(&v0, &v4, &v8, &v12, m.m0, m.m1)
            Self.mix(&v1, &v5, &v9, &v13, m.m2, m.m3)
            Self.mix(&v2, &v6, &v10, &v14, m.m4, m.m5)
            Self.mix(&v3, &v7, &v11, &v15, m.m6, m.m7)
            Self.mix(&v0, &v5, &v10, &v15, m.m8, m.m9)
            Self.mix(&v1, &v6, &v11, &v12, m.m10, m.m11)
            Self.mix(&v2, &v7, &v8, &v13, m.m12, m.m13)
            Self.mix(&v3, &v4, &v9, &v14, m.m14, m.m15)
        }
    }

    /// The compression function: seven rounds over `chainingValue`, the first half of the IV, the counter, the
    /// block length and the flags. Returns the sixteen output words as two halves; the first alone is the
    /// chaining value passed up the tree, both together are 64 bytes of root output.
    @inline(__always)
    static func compress(
        _ chainingValue: ChainingValue, _ block: MessageBlock, counter: UInt64, blockLength: UInt32, flags: UInt32
    ) -> (low: ChainingValue, high: ChainingValue) {
        let iv = ChainingValue.initial
        var state = State(
            v0: chainingValue.h0, v1: chainingValue.h1, v2: chainingValue.h2, v3: chainingValue.h3,
            v4: chainingValue.h4, v5: chainingValue.h5, v6: chainingValue.h6, v7: chainingValue.h7,
            v8: iv.h0, v9: iv.h1, v10: iv.h2, v11: iv.h3,
            v12: UInt32(truncatingIfNeeded: counter), v13: UInt32(truncatingIfNeeded: counter >> 32),
            v14: blockLength, v15: flags)
        let round2 = block.permuted
        let round3 = round2.permuted
        let round4 = round3.permuted
        let round5 = round4.permuted
        let round6 = round5.permuted
        state.round(block)
        state.round(round2)
        state.round(round3)
        state.round(round4)
        state.round(round5)
        state.round(round6)
        state.round(round6.permuted)
        let low = ChainingValue(
            h0: state.v0 ^ state.v8, h1: state.v1 ^ state.v9, h2: state.v2 ^ state.v10, h3: state.v3 ^ state.v11,
            h4: state.v4 ^ state.v12, h5: state.v5 ^ state.v13, h6: state.v6 ^ state.v14, h7: state.v7 ^ state.v15)
        let high = ChainingValue(
            h0: state.v8 ^ chainingValue.h0, h1: state.v9 ^ chainingValue.h1, h2: state.v10 ^ chainingValue.h2,
            h3: state.v11 ^ chainingValue.h3, h4: state.v12 ^ chainingValue.h4, h5: state.v13 ^ chainingValue.h5,
            h6: state.v14 ^ chainingValue.h6, h7: state.v15 ^ chainingValue.h7)
        return (low, high)
    }
}

extension BLAKE3.MessageBlock {
    /// The block at `base`, which needs 64 readable bytes and no particular alignment.
    @inline(__always)
    init(loadingFrom base: UnsafeRawPointer) {
        @inline(__always) func word(_ index: Int) -> UInt32 {
            UInt32(littleEndian: base.loadUnaligned(fromByteOffset: index &* 4, as: UInt32.self))
        }
        self.init(
            m0: word(0), m1: word(1), m2: word(2), m3: word(3), m4: word(4), m5: word(5), m6: word(6), m7: word(7),
            m8: word(8), m9: word(9), m10: word(10), m11: word(11), m12: word(12), m13: word(13), m14: word(14),
            m15: word(15))
    }

    /// The block of a parent node: its two children's chaining values side by side.
    @inline(__always)
    init(left: BLAKE3.ChainingValue, right: BLAKE3.ChainingValue) {
        self.init(
            m0: left.h0, m1: left.h1, m2: left.h2, m3: left.h3, m4: left.h4, m5: left.h5, m6: left.h6, m7: left.h7,
            m8: right.h0, m9: right.h1, m10: right.h2, m11: right.h3, m12: right.h4, m13: right.h5, m14: right.h6,
            m15: right.h7)
    }
}

/// BLAKE3 in its unkeyed hash mode, fed incrementally, with output of any length.
///
/// How the input is split into `update` calls never changes the digest. `finalize` does not consume the
/// hasher: more input may follow and a later `finalize` covers all of it.
public struct BLAKE3Hasher: Sendable {
    /// Chaining values of the completed subtrees not yet merged, the largest (leftmost) first.
    private var subtrees: [BLAKE3.ChainingValue] = []
    /// The chaining value of the chunk under way, after the blocks of it compressed so far.
    private var chunkChainingValue = BLAKE3.ChainingValue.initial
    /// The index of the chunk under way: how many chunks came before it.
    private var chunkCounter: UInt64 = 0
    /// How many blocks of the chunk under way are compressed.
    private var compressedBlocks = 0
    /// Input not compressed yet, at most one block, kept until more input shows whether it is the last block.
    /// Bytes past `pendingCount` are zero.
    private var pending = BLAKE3.zeroBlock
    private var pendingCount = 0

    /// A hasher that has seen no input.
    public init() {}

    /// Adds `bytes` to the input.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard var next = bytes.baseAddress, !bytes.isEmpty else { return }
        var remaining = bytes.count
        if pendingCount > 0 {
            let offset = pendingCount
            let taken = min(BLAKE3.blockLength - offset, remaining)
            withUnsafeMutableBytes(of: &pending) {
                $0.baseAddress!.advanced(by: offset).copyMemory(from: next, byteCount: taken)
            }
            pendingCount += taken
            next += taken
            remaining -= taken
            if remaining == 0 { return }
            absorb(withUnsafeBytes(of: pending) { BLAKE3.MessageBlock(loadingFrom: $0.baseAddress!) })
            pending = BLAKE3.zeroBlock
            pendingCount = 0
        }
        while remaining > BLAKE3.blockLength {
            absorb(BLAKE3.MessageBlock(loadingFrom: next))
            next += BLAKE3.blockLength
            remaining -= BLAKE3.blockLength
        }
        let count = remaining
        withUnsafeMutableBytes(of: &pending) { $0.baseAddress!.copyMemory(from: next, byteCount: count) }
        pendingCount = count
    }

    /// Adds `bytes` to the input, in place when the collection has contiguous storage.
    public mutating func update(_ bytes: some Collection<UInt8>) {
        let updated: Void? = bytes.withContiguousStorageIfAvailable { update(UnsafeRawBufferPointer($0)) }
        if updated != nil { return }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: BLAKE3.chunkLength) { buffer in
            var count = 0
            for byte in bytes {
                buffer[count] = byte
                count += 1
                if count == buffer.count {
                    update(UnsafeRawBufferPointer(buffer))
                    count = 0
                }
            }
            update(UnsafeRawBufferPointer(start: buffer.baseAddress, count: count))
        }
    }

    /// The first `outputLength` bytes of the extendable output of everything added so far; the default 32 bytes
    /// are the BLAKE3 hash, and any longer output begins with them.
    public func finalize(outputLength: Int = 32) -> [UInt8] {
        precondition(outputLength >= 0, "a negative output length")
        var node = BLAKE3.Node(
            input: chunkChainingValue,
            block: withUnsafeBytes(of: pending) { BLAKE3.MessageBlock(loadingFrom: $0.baseAddress!) },
            counter: chunkCounter, blockLength: UInt32(pendingCount),
            flags: (compressedBlocks == 0 ? BLAKE3.Flag.chunkStart : 0) | BLAKE3.Flag.chunkEnd)
        for left in subtrees.reversed() {
            node = .parent(left: left, right: node.chainingValue)
        }
        return node.rootOutput(length: outputLength)
    }

    /// The BLAKE3 output of `bytes`, 32 bytes unless `outputLength` says otherwise.
    public static func hash(_ bytes: some Collection<UInt8>, outputLength: Int = 32) -> [UInt8] {
        var hasher = BLAKE3Hasher()
        hasher.update(bytes)
        return hasher.finalize(outputLength: outputLength)
    }

    /// Compresses a full block known not to be the last of the input; the last block of a chunk also completes
    /// the chunk.
    @inline(__always)
    private mutating func absorb(_ block: BLAKE3.MessageBlock) {
        let endsChunk = compressedBlocks == BLAKE3.blocksPerChunk - 1
        let flags = (compressedBlocks == 0 ? BLAKE3.Flag.chunkStart : 0) | (endsChunk ? BLAKE3.Flag.chunkEnd : 0)
        chunkChainingValue = BLAKE3.compress(
            chunkChainingValue, block, counter: chunkCounter, blockLength: UInt32(BLAKE3.blockLength), flags: flags
        ).low
        if endsChunk {
            completeChunk()
        } else {
            compressedBlocks += 1
        }
    }

    /// Adds the finished chunk to the tree. Each trailing zero bit of the new chunk count closes a subtree: its
    /// left half is the newest pending subtree, merged with what was just completed.
    private mutating func completeChunk() {
        var completed = chunkChainingValue
        chunkCounter += 1
        var count = chunkCounter
        while count & 1 == 0 {
            completed = BLAKE3.Node.parent(left: subtrees.removeLast(), right: completed).chainingValue
            count >>= 1
        }
        subtrees.append(completed)
        chunkChainingValue = .initial
        compressedBlocks = 0
    }
}

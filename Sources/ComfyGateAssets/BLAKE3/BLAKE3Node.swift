extension BLAKE3 {
    /// A chunk or parent node ready for its last compression, which either yields the chaining value passed to
    /// its parent or, for the root of the tree, any number of output bytes.
    struct Node {
        var input: ChainingValue
        var block: MessageBlock
        var counter: UInt64
        var blockLength: UInt32
        var flags: UInt32

        /// The parent of two subtrees, given their chaining values.
        static func parent(left: ChainingValue, right: ChainingValue) -> Node {
            Node(
                input: .initial, block: MessageBlock(left: left, right: right), counter: 0,
                blockLength: UInt32(BLAKE3.blockLength), flags: Flag.parent)
        }

        /// What this node passes to its parent.
        var chainingValue: ChainingValue {
            compress(input, block, counter: counter, blockLength: blockLength, flags: flags).low
        }

        /// The first `length` bytes of this node's output as the root: 64 bytes per compression, the output
        /// block's index as the counter.
        func rootOutput(length: Int) -> [UInt8] {
            [UInt8](unsafeUninitializedCapacity: length) { output, initializedCount in
                var outputBlock = zeroBlock
                var outputCounter: UInt64 = 0
                var offset = 0
                while offset < length {
                    let words = compress(
                        input, block, counter: outputCounter, blockLength: blockLength, flags: flags | Flag.root)
                    let count = min(BLAKE3.blockLength, length - offset)
                    withUnsafeMutableBytes(of: &outputBlock) { bytes in
                        words.low.store(to: bytes.baseAddress!)
                        words.high.store(to: bytes.baseAddress! + 32)
                        output.baseAddress!.advanced(by: offset).initialize(
                            from: bytes.assumingMemoryBound(to: UInt8.self).baseAddress!, count: count)
                    }
                    offset += count
                    outputCounter += 1
                }
                initializedCount = length
            }
        }
    }
}

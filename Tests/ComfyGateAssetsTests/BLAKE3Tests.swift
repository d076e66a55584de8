import ComfyGateAssets
import Testing

/// Lowercase hexadecimal, two digits a byte.
func hex(_ bytes: [UInt8]) -> String {
    bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
}

@Suite struct BLAKE3Tests {
    /// Feeds `input` in pieces whose sizes cycle through `pieceSizes`, alternating the raw-buffer and collection
    /// entry points.
    private func digest(of input: [UInt8], pieceSizes: [Int]) -> String {
        var hasher = BLAKE3Hasher()
        var start = 0
        var piece = 0
        while start < input.count {
            let end = min(input.count, start + pieceSizes[piece % pieceSizes.count])
            if piece.isMultiple(of: 2) {
                input[start..<end].withUnsafeBytes { hasher.update($0) }
            } else {
                hasher.update(input[start..<end])
            }
            start = end
            piece += 1
        }
        return hex(hasher.finalize(outputLength: 131))
    }

    @Test(arguments: blake3TestVectors)
    func officialVector(_ vector: BLAKE3TestVector) {
        var hasher = BLAKE3Hasher()
        hasher.update(vector.input)
        #expect(hex(hasher.finalize()) == vector.defaultLengthHash)
        #expect(hex(hasher.finalize(outputLength: 131)) == vector.hash)
        #expect(hex(BLAKE3Hasher.hash(vector.input)) == vector.defaultLengthHash)
        #expect(hex(BLAKE3Hasher.hash(vector.input, outputLength: 131)) == vector.hash)
    }

    @Test(arguments: blake3TestVectors)
    func everySplitOfTheInputGivesTheSameOutput(_ vector: BLAKE3TestVector) {
        var patterns: [[Int]] = [[2], [3, 5], [7], [13, 61], [63, 64, 65], [127], [1021, 1031], [4093]]
        if vector.inputLength <= 8192 { patterns.append([1]) }
        for pieceSizes in patterns {
            #expect(digest(of: vector.input, pieceSizes: pieceSizes) == vector.hash, "pieces \(pieceSizes)")
        }
    }

    @Test func emptyUpdatesChangeNothing() {
        let vector = blake3TestVectors.first { $0.inputLength == 1025 }!
        var hasher = BLAKE3Hasher()
        hasher.update([])
        hasher.update(vector.input[..<1024])
        hasher.update(UnsafeRawBufferPointer(start: nil, count: 0))
        hasher.update(vector.input[1024...])
        hasher.update([])
        #expect(hex(hasher.finalize(outputLength: 131)) == vector.hash)
    }

    @Test func collectionsWithoutContiguousStorageAreHashedAlike() {
        let vector = blake3TestVectors.first { $0.inputLength == 3073 }!
        let input = (0..<vector.inputLength).lazy.map { UInt8($0 % 251) }
        #expect(hex(BLAKE3Hasher.hash(input, outputLength: 131)) == vector.hash)
    }

    @Test func finalizingLeavesTheHasherUsable() {
        var hasher = BLAKE3Hasher()
        hasher.update(Array("abc".utf8))
        #expect(hasher.finalize() == BLAKE3Hasher.hash(Array("abc".utf8)))
        hasher.update(Array("def".utf8))
        #expect(hasher.finalize() == BLAKE3Hasher.hash(Array("abcdef".utf8)))
    }

    @Test func shorterOutputsArePrefixesOfLongerOnes() {
        let hasher = BLAKE3Hasher()
        let long = hasher.finalize(outputLength: 200)
        for length in [0, 1, 31, 32, 33, 63, 64, 65, 128, 199] {
            #expect(hasher.finalize(outputLength: length) == Array(long.prefix(length)))
        }
    }
}

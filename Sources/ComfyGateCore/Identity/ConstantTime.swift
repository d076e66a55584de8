/// Comparison whose running time depends only on the lengths of its inputs, never on where they differ.
public enum ConstantTime {
    /// Whether two byte sequences are equal, examining every byte of both.
    /// Inlinable so that callers get a version specialised to their collection types (an unspecialised
    /// generic loop costs microseconds per token check).
    @inlinable
    public static func equals(_ lhs: some Collection<UInt8>, _ rhs: some Collection<UInt8>) -> Bool {
        var difference = UInt8(truncatingIfNeeded: lhs.count ^ rhs.count)
        var rightIterator = rhs.makeIterator()
        for left in lhs {
            let right = rightIterator.next() ?? 0
            difference |= left ^ right
        }
        if lhs.count != rhs.count { difference |= 1 }
        return difference == 0
    }

    /// Whether two strings have the same UTF-8 bytes, examining every byte of both. Compares the contiguous
    /// storage: walking `String.UTF8View` index by index costs several times the comparison itself.
    @inlinable
    public static func equals(_ lhs: String, _ rhs: String) -> Bool {
        var lhs = lhs
        var rhs = rhs
        lhs.makeContiguousUTF8()
        rhs.makeContiguousUTF8()
        let result = lhs.utf8.withContiguousStorageIfAvailable { left in
            rhs.utf8.withContiguousStorageIfAvailable { right in equals(left, right) }
        }
        return (result ?? nil) ?? equals(Array(lhs.utf8), Array(rhs.utf8))
    }
}

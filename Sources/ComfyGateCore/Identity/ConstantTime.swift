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
}

/// A table while the document is read. How it came to exist decides how it may still grow:
/// a `[header]` may claim a table that earlier headers only implied, never one already defined;
/// dotted keys may extend tables they or headers' paths created, never one a `[header]` defined.
final class TableNode {
    enum Origin {
        /// Created only as a parent of a header such as `[a.b]` (for `a`).
        case implicit
        /// Defined by its own `[header]` or `[[header]]`, or an inline table.
        case header
        /// Created or claimed by a dotted key such as `a.b = 1` (for `a`).
        case dotted
    }

    /// What a key holds while the document is read.
    enum Entry {
        /// A finished value: scalars, arrays written inline and inline tables, none of which can grow.
        case value(TOMLValue)
        case table(TableNode)
        case arrayOfTables(ArrayOfTablesNode)
    }

    var origin: Origin
    private var keys: [String] = []
    private var entries: [String: Entry] = [:]

    init(origin: Origin) { self.origin = origin }

    subscript(key: String) -> Entry? { entries[key] }

    /// Adds an entry under a key the table does not hold yet.
    func add(_ entry: Entry, for key: String) {
        keys.append(key)
        entries[key] = entry
    }

    /// The finished table. Recursion is bounded by ``TOML/maximumDepth``.
    func freeze() -> TOMLTable {
        var table = TOMLTable()
        for key in keys {
            switch entries[key]! {
            case .value(let value): table.set(value, for: key)
            case .table(let node): table.set(.table(node.freeze()), for: key)
            case .arrayOfTables(let array): table.set(.array(array.tables.map { .table($0.freeze()) }), for: key)
            }
        }
        return table
    }
}

/// The tables of a `[[header]]`, one per occurrence.
final class ArrayOfTablesNode {
    var tables: [TableNode]

    init(first: TableNode) { tables = [first] }
}

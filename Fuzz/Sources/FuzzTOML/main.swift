import ComfyGateTOML
import FuzzSupport

/// The TOML reader. Any text gives a table or a `TOMLError` pointing into the text with a reason — never a trap —
/// and a table, written back as TOML (every key quoted, every table inline), reads back as the same table.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzTOML(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = String(decoding: fuzzInput(data, size), as: UTF8.self)
    let table: TOMLTable
    do {
        table = try TOML.parse(text)
    } catch {
        let lines = text.utf8.split(separator: 10, omittingEmptySubsequences: false)
        precondition(!error.reason.isEmpty && (1...lines.count).contains(error.line), "error \(error) outside the text")
        let columns = Substring(lines[error.line - 1]).unicodeScalars.count + 1
        precondition((1...columns).contains(error.column), "error \(error) outside its line")
        return 0
    }
    // Inline tables nest one level deeper than `[header]` tables; stay clear of the depth cap.
    guard depth(.table(table)) * 2 <= TOML.maximumDepth else { return 0 }
    let document = table.map { "\(quoted($0.key)) = \(written($0.value))\n" }.joined()
    do {
        let reread = try TOML.parse(document)
        // Compared as text: NaN is never equal to itself.
        precondition(writtenTable(reread) == writtenTable(table), "\(document.debugDescription) reads back differently")
    } catch {
        preconditionFailure("\(document.debugDescription), written from a valid document, does not read back: \(error)")
    }
    return 0
}

private func writtenTable(_ table: TOMLTable) -> String {
    "{ " + table.map { "\(quoted($0.key)) = \(written($0.value))" }.joined(separator: ", ") + " }"
}

/// A value as TOML text.
private func written(_ value: TOMLValue) -> String {
    switch value {
    case .string(let string): quoted(string)
    case .integer(let integer): String(integer)
    case .float(let float): float.isNaN ? "nan" : String(float)
    case .boolean(let boolean): String(boolean)
    case .dateTime(let dateTime): dateTime.text
    case .array(let array): "[" + array.map(written).joined(separator: ", ") + "]"
    case .table(let table): writtenTable(table)
    }
}

/// A basic string with `"`, `\` and control characters escaped.
private func quoted(_ string: String) -> String {
    var result = "\""
    for scalar in string.unicodeScalars {
        switch scalar {
        case "\"": result += "\\\""
        case "\\": result += "\\\\"
        case _ where scalar.value < 0x20 || scalar.value == 0x7F:
            let hex = String(scalar.value, radix: 16)
            result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: result.unicodeScalars.append(scalar)
        }
    }
    return result + "\""
}

/// How many arrays and tables nest in `value`, itself included.
private func depth(_ value: TOMLValue) -> Int {
    switch value {
    case .array(let array): 1 + (array.map(depth).max() ?? 0)
    case .table(let table): 1 + (table.map { depth($0.value) }.max() ?? 0)
    default: 0
    }
}

runFuzzer(fuzzTOML)

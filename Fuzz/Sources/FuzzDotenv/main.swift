import ComfyGateCore
import FuzzSupport

/// The dotenv reader and writer. Any bytes are kept as they are and give entries with well-formed keys; setting
/// a value (of an existing key or a new one, the value taken from the input) either is refused, leaving the
/// document as it was, or re-reads as exactly that value while every other key keeps its value.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzDotenv(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(fuzzInput(data, size))
    let document = DotenvDocument(bytes: bytes)
    precondition(document.bytes == bytes, "reading changed the bytes")
    for entry in document.entries {
        precondition(!entry.key.isEmpty && entry.key.utf8.allSatisfy(isKeyByte), "bad key \(entry.key.debugDescription)")
    }
    let keys = Set(document.entries.map(\.key))
    for key in keys { precondition(document.entry(forKey: key) == document.entries.last { $0.key == key }, "\(key) is not its last assignment") }

    // The value is the input's last line; the key one of the file's (chosen by the input's size) or a new one.
    let value = String(decoding: bytes.split(separator: 10, omittingEmptySubsequences: false).last ?? [], as: UTF8.self)
    let ordered = document.entries.map(\.key)
    let key = size % 3 == 0 || ordered.isEmpty ? "FUZZ_NEW_KEY" : ordered[size % ordered.count]
    var edited = document
    do {
        try edited.set(value, forKey: key)
    } catch {
        // Refused: a value that cannot be written, or a file whose quotes would read differently after the edit.
        let renderable = !value.utf8.contains { $0 == UInt8(ascii: "'") || $0 == 10 || $0 == 13 }
        precondition(!renderable || bytes.contains(UInt8(ascii: "'")) || bytes.contains(UInt8(ascii: "\"")),
            "set refused \(value.debugDescription) in a file without quotes: \(error)")
        precondition(edited == document, "a refused set changed the document")
        return 0
    }
    let reread = DotenvDocument(bytes: edited.bytes)
    precondition(reread == edited, "set left entries that differ from a fresh read")
    precondition(reread.entry(forKey: key)?.value == value,
        "\(key)=\(value.debugDescription) reads back as \(reread.entry(forKey: key)?.value.debugDescription ?? "nothing")")
    for other in keys where other != key {
        precondition(reread.entry(forKey: other)?.value == document.entry(forKey: other)?.value,
            "setting \(key) changed \(other) in \(String(decoding: edited.bytes, as: UTF8.self).debugDescription)")
    }
    precondition(Set(reread.entries.map(\.key)) == keys.union([key]), "setting \(key) changed which keys exist")
    return 0
}

/// What a dotenv key is made of: ASCII letters, digits, `_`, `.` and `-`.
private func isKeyByte(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
    default: byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-")
    }
}

runFuzzer(fuzzDotenv)

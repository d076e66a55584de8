/// One part's header block, read the way aiohttp reads it for ComfyUI; a block aiohttp could read otherwise is
/// refused rather than guessed at.
///
/// The part's name comes from `Content-Disposition`'s `name`, unquoted as aiohttp does (leading `\` and `/`
/// dropped, `\x` read as `x`). `name*` parameters, which aiohttp prefers to `name`, are refused; so are folded or
/// repeated headers and any disposition aiohttp would fail on. The two guarded fields must be plain text; file
/// names (`filename`, `filename*` in UTF-8) must not name a folder.
struct FormPartHeaders {
    static let subfolderField = "subfolder"
    static let originalReferenceField = "original_ref"

    /// The field's name.
    let name: String

    /// Reads a header block that ends with its blank line, its lines ending in CRLF.
    init(block: [UInt8]) throws(PolicyRefusal) {
        var disposition: ArraySlice<UInt8>?
        var contentType: ArraySlice<UInt8>?
        var hasContentCoding = false
        for line in block.split(separator: FormByte.lineFeed) {
            let line = line.dropLast()
            guard !line.isEmpty else { continue }
            guard line.first != FormByte.space, line.first != FormByte.tab else {
                throw .badRequest("a part's header is folded over two lines")
            }
            guard let colon = line.firstIndex(of: FormByte.colon), FormByte.isToken(line[..<colon]) else {
                throw .badRequest("a part's header is not a name and a value")
            }
            let value = FormByte.trimmed(line[(colon + 1)...])
            switch FormByte.lowercased(line[..<colon]) {
            case "content-disposition":
                guard disposition == nil else { throw .badRequest("a part has two Content-Disposition headers") }
                disposition = value
            case "content-type":
                guard contentType == nil else { throw .badRequest("a part has two Content-Type headers") }
                contentType = value
            case "content-transfer-encoding", "content-encoding", "content-length":
                hasContentCoding = true
            default:
                break
            }
        }
        guard let disposition else { throw .badRequest("a form part has no Content-Disposition header") }
        let parameters = try Self.parameters(ofDisposition: disposition)
        guard let name = parameters["name"] else { throw .badRequest("a form part has no name") }
        self.name = String(decoding: name, as: UTF8.self)

        let fileNameKeys = parameters.keys.filter { $0 == "filename" || $0.hasPrefix("filename*") }
        if self.name == Self.subfolderField || self.name == Self.originalReferenceField {
            guard fileNameKeys.isEmpty, !hasContentCoding, contentType.map(Self.isPlainText) ?? true else {
                throw .badRequest("the \(self.name) field must be plain UTF-8 text")
            }
        }
        for key in fileNameKeys {
            try Self.checkFileName(key: key, value: parameters[key] ?? [])
        }
    }

    /// The parameters of a `form-data` disposition by lower-case key, as aiohttp's `parse_content_disposition`
    /// reads them: split at every `;`, a quoted value joined across one `;`. Values of `*` keys stay as sent.
    private static func parameters(ofDisposition value: ArraySlice<UInt8>) throws(PolicyRefusal) -> [String: [UInt8]] {
        let malformed = PolicyRefusal.badRequest("a part's Content-Disposition is not one ComfyUI reads")
        let items = value.split(separator: FormByte.semicolon, omittingEmptySubsequences: false)
        guard FormByte.isToken(items[0]), FormByte.lowercased(items[0]) == "form-data" else { throw malformed }
        var parameters: [String: [UInt8]] = [:]
        var index = 1
        while index < items.count {
            let item = items[index]
            index += 1
            guard let equals = item.firstIndex(of: FormByte.equals) else { throw malformed }
            let rawKey = FormByte.trimmed(item[..<equals])
            let key = FormByte.lowercased(rawKey)
            guard FormByte.isToken(rawKey), parameters[key] == nil else { throw malformed }
            let value = item[(equals + 1)...].drop { $0 == FormByte.space || $0 == FormByte.tab }
            if key.hasPrefix("name*") {
                throw .badRequest("a form part's name is in an extended parameter, which is not supported")
            }
            if isContinuation(key) || key.hasSuffix("*") {
                parameters[key] = Array(value)
            } else if isQuoted(value) {
                parameters[key] = unquoted(value)
            } else if FormByte.isToken(value) {
                parameters[key] = Array(value)
            } else if index < items.count, case let joined = value + [FormByte.semicolon] + items[index],
                isQuoted(joined)
            {
                parameters[key] = unquoted(joined)
                index += 1
            } else {
                throw malformed
            }
        }
        return parameters
    }

    /// Whether a key continues a parameter over several (`filename*0`, `filename*1*`).
    private static func isContinuation(_ key: String) -> Bool {
        guard let star = key.firstIndex(of: "*") else { return false }
        var tail = key[key.index(after: star)...]
        if tail.hasSuffix("*") { tail = tail.dropLast() }
        return !tail.isEmpty && tail.allSatisfy { ("0"..."9").contains($0) }
    }

    /// Whether aiohttp takes a value as quoted: it starts and ends with `"` (a lone `"` included).
    private static func isQuoted(_ value: some BidirectionalCollection<UInt8>) -> Bool {
        value.first == FormByte.quote && value.last == FormByte.quote
    }

    /// A quoted value's text: quotes removed, then leading `\` and `/`, then `\` before an ASCII byte.
    private static func unquoted(_ value: some BidirectionalCollection<UInt8>) -> [UInt8] {
        let inner = Array(value.dropFirst().dropLast()).drop { $0 == FormByte.backslash || $0 == FormByte.slash }
        var text: [UInt8] = []
        var index = inner.startIndex
        while index < inner.endIndex {
            if inner[index] == FormByte.backslash, index + 1 < inner.endIndex, inner[index + 1] < 0x80 {
                index += 1
            }
            text.append(inner[index])
            index += 1
        }
        return text
    }

    /// Whether a content type is `text/plain`, in UTF-8 or ASCII if it says.
    private static func isPlainText(_ contentType: ArraySlice<UInt8>) -> Bool {
        let items = contentType.split(separator: FormByte.semicolon, omittingEmptySubsequences: false)
        guard FormByte.lowercased(FormByte.trimmed(items[0])) == "text/plain", items.count <= 2 else { return false }
        guard items.count == 2 else { return true }
        let parameter = FormByte.lowercased(FormByte.trimmed(items[1])).split(separator: "=", maxSplits: 1)
        return parameter.count == 2 && parameter[0] == "charset"
            && ["utf-8", "utf8", "us-ascii"].contains(parameter[1].filter { $0 != "\"" })
    }

    /// Refuses a file name ComfyUI would join as a path: one holding `/` or `\`, or `.` or `..`. A `filename*` is
    /// checked as aiohttp decodes it and must be UTF-8; names continued over several parameters are refused.
    private static func checkFileName(key: String, value: [UInt8]) throws(PolicyRefusal) {
        let name: [UInt8]
        switch key {
        case "filename":
            name = value
        case "filename*":
            let pieces = value.split(separator: FormByte.apostrophe, maxSplits: 2, omittingEmptySubsequences: false)
            guard FormByte.isToken(value), pieces.count == 3, !pieces[2].contains(FormByte.apostrophe) else { return }
            guard ["", "utf-8", "utf8"].contains(FormByte.lowercased(pieces[0])) else {
                throw .badRequest("an uploaded file's name is in a character set other than UTF-8")
            }
            name = FormByte.percentDecoded(pieces[2])
        default:
            throw .badRequest("an uploaded file's name is continued over several parameters, which is not supported")
        }
        let namesFolder =
            name.contains(FormByte.slash) || name.contains(FormByte.backslash) || name == [FormByte.dot]
            || name == [FormByte.dot, FormByte.dot]
        if namesFolder { throw .badRequest("an uploaded file's name names a folder") }
    }
}

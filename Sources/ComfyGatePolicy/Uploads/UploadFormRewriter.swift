#if canImport(Darwin)
    import Darwin
#elseif canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Keeps a non-admin user's upload (`POST /upload/image`, `/upload/mask`) inside their own folder, rewriting the
/// `multipart/form-data` body as it streams.
///
/// Every `subfolder` field becomes `<user folder>/<normalised value>` (one holding the user's folder is added
/// before the closing boundary when the form has none), every `original_ref` must name the user's own file, and
/// no file name may name a folder. Everything else passes through byte for byte; file contents are never held,
/// only part headers and the two small text fields.
///
/// The form is read the way ComfyUI's aiohttp reads it, and any form the two could read differently is refused:
/// a part the gateway took for something other than ComfyUI does could carry a folder past it.
public struct UploadFormRewriter: Sendable {
    /// The longest `subfolder` or `original_ref` value accepted, in bytes.
    public static let maximumFieldValueLength = 4096
    /// The longest header block of one part accepted, in bytes.
    public static let maximumPartHeaderLength = 16384

    /// `--` and the boundary: a boundary line at the start of the body or after a line feed of the preamble.
    private let dashBoundary: [UInt8]
    /// CRLF, `--` and the boundary: where each part ends.
    private let delimiter: [UInt8]
    private let space: UserSpace
    private let ownsFile: @Sendable (_ type: String, _ subfolder: String, _ name: String) -> Bool

    private var state = State.preamble(atLineStart: true)
    /// Bytes received but not yet sent or taken in: at most a possible start of a delimiter between chunks.
    private var pending: [UInt8] = []
    /// The header block of the current part, from after its boundary line through the blank line.
    private var partHeaders: [UInt8] = []
    /// The value of the text field being held.
    private var fieldValue: [UInt8] = []
    private var sawSubfolder = false

    private enum State {
        /// Before the first boundary line; whether the next byte starts a line.
        case preamble(atLineStart: Bool)
        /// Just after a boundary (not yet sent): `--` next makes it the closing one.
        case boundary(isFirst: Bool)
        /// The rest of a boundary line: optional spaces or tabs, then CRLF (or the end of the body once closing).
        case boundaryLine(closing: Bool, sawCarriageReturn: Bool)
        case partHeaders
        /// A part passed through as it comes.
        case partContent
        /// A text field held until its end, then rewritten.
        case heldField(HeldField)
        case epilogue
        case refused(PolicyRefusal)
    }

    private enum HeldField {
        case subfolder
        case originalReference
    }

    /// Nil when the content type is not `multipart/form-data` with one usable boundary (RFC 2046: 1–70
    /// characters, quoted or bare); the upload is then to be refused.
    ///
    /// The content type is read as aiohttp reads it (parameters split at every `;`, quotes trimmed, the first
    /// `boundary` wins), and anything it could read otherwise is refused: a second `boundary`, characters other
    /// than printable ASCII, spaces and tabs, or a boundary aiohttp would trim.
    public init?(
        contentType: String,
        space: UserSpace,
        ownsFile: @escaping @Sendable (_ type: String, _ subfolder: String, _ name: String) -> Bool
    ) {
        guard let boundary = Self.boundary(inContentType: Array(contentType.utf8)) else { return nil }
        dashBoundary = Array("--".utf8) + boundary
        delimiter = Array("\r\n--".utf8) + boundary
        self.space = space
        self.ownsFile = ownsFile
    }

    /// Bytes to send on now for the next chunk of the body. After a refusal, every call throws it again.
    public mutating func consume(_ chunk: some Collection<UInt8>) throws(PolicyRefusal) -> [UInt8] {
        pending.append(contentsOf: chunk)
        return try advance(atEnd: false)
    }

    /// The remaining bytes once the body has ended; throws when the body was not a complete form.
    public mutating func finish() throws(PolicyRefusal) -> [UInt8] {
        let output = try advance(atEnd: true)
        let unfinished: String? =
            switch state {
            case .epilogue, .boundaryLine(closing: true, _): nil
            case .preamble: "the form has no boundary line"
            case .boundary, .boundaryLine: "the form ends inside a boundary line"
            case .partHeaders: "the form ends inside a part's headers"
            case .partContent, .heldField: "the form ends without its closing boundary"
            case .refused(let refusal): refusal.message
            }
        if let unfinished {
            let refusal = PolicyRefusal.badRequest(unfinished)
            state = .refused(refusal)
            throw refusal
        }
        return output
    }

    /// Reads as far as the pending bytes allow and returns what may be sent.
    private mutating func advance(atEnd: Bool) throws(PolicyRefusal) -> [UInt8] {
        if case .refused(let refusal) = state { throw refusal }
        var output: [UInt8] = []
        output.reserveCapacity(pending.count)
        var cursor = 0
        do {
            while try step(from: &cursor, into: &output, atEnd: atEnd) {}
        } catch {
            state = .refused(error)
            pending = []
            throw error
        }
        pending.removeFirst(cursor)
        return output
    }

    /// Takes one step of the form from `cursor`; false when it needs more bytes.
    private mutating func step(
        from cursor: inout Int,
        into output: inout [UInt8],
        atEnd: Bool
    ) throws(PolicyRefusal) -> Bool {
        switch state {
        case .preamble(atLineStart: true):
            let available = min(pending.count - cursor, dashBoundary.count)
            guard pending[cursor..<(cursor + available)].elementsEqual(dashBoundary[..<available]) else {
                state = .preamble(atLineStart: false)
                return true
            }
            guard available == dashBoundary.count else { return false }
            cursor += available
            state = .boundary(isFirst: true)
            return true

        case .preamble(atLineStart: false):
            guard let lineFeed = pending[cursor...].firstIndex(of: FormByte.lineFeed) else {
                output.append(contentsOf: pending[cursor...])
                cursor = pending.count
                return false
            }
            output.append(contentsOf: pending[cursor...lineFeed])
            cursor = lineFeed + 1
            state = .preamble(atLineStart: true)
            return true

        case .boundary(let isFirst):
            guard pending.count - cursor >= 2 || atEnd else { return false }
            let closing =
                pending.count - cursor >= 2 && pending[cursor] == FormByte.dash && pending[cursor + 1] == FormByte.dash
            if closing {
                guard !isFirst else { throw .badRequest("the form has no parts") }
                if !sawSubfolder { appendSubfolderPart(to: &output) }
                output.append(contentsOf: delimiter)
                output.append(contentsOf: pending[cursor..<(cursor + 2)])
                cursor += 2
            } else {
                output.append(contentsOf: isFirst ? dashBoundary : delimiter)
            }
            state = .boundaryLine(closing: closing, sawCarriageReturn: false)
            return true

        case .boundaryLine(let closing, let sawCarriageReturn):
            guard cursor < pending.count else { return false }
            let byte = pending[cursor]
            switch (byte, sawCarriageReturn) {
            case (FormByte.space, false), (FormByte.tab, false): break
            case (FormByte.carriageReturn, false): state = .boundaryLine(closing: closing, sawCarriageReturn: true)
            case (FormByte.lineFeed, true):
                state = closing ? .epilogue : .partHeaders
                partHeaders.removeAll(keepingCapacity: true)
            default: throw .badRequest("a boundary line of the form holds more than the boundary")
            }
            output.append(byte)
            cursor += 1
            return true

        case .partHeaders:
            guard try takeHeaderBytes(from: &cursor) else { return false }
            let headers = try FormPartHeaders(block: partHeaders)
            switch headers.name {
            case FormPartHeaders.subfolderField:
                sawSubfolder = true
                state = .heldField(.subfolder)
            case FormPartHeaders.originalReferenceField:
                state = .heldField(.originalReference)
            default:
                output.append(contentsOf: partHeaders)
                state = .partContent
            }
            return true

        case .partContent:
            let (end, isComplete) = delimiterPosition(from: cursor)
            output.append(contentsOf: pending[cursor..<end])
            cursor = end
            guard isComplete else { return false }
            cursor += delimiter.count
            state = .boundary(isFirst: false)
            return true

        case .heldField(let field):
            let (end, isComplete) = delimiterPosition(from: cursor)
            fieldValue.append(contentsOf: pending[cursor..<end])
            cursor = end
            guard fieldValue.count <= Self.maximumFieldValueLength else {
                throw .badRequest(
                    "a subfolder or original_ref field is longer than \(Self.maximumFieldValueLength) bytes")
            }
            guard isComplete else { return false }
            output.append(contentsOf: partHeaders)
            switch field {
            case .subfolder: output.append(contentsOf: try UploadPaths.confinedSubfolder(fieldValue, in: space))
            case .originalReference:
                try UploadPaths.checkOriginalReference(fieldValue, in: space, ownsFile: ownsFile)
                output.append(contentsOf: fieldValue)
            }
            fieldValue.removeAll(keepingCapacity: true)
            cursor += delimiter.count
            state = .boundary(isFirst: false)
            return true

        case .epilogue:
            output.append(contentsOf: pending[cursor...])
            cursor = pending.count
            return false

        case .refused(let refusal):
            throw refusal
        }
    }

    /// Moves header bytes from `pending` to `partHeaders`; true once the blank line that ends them is in.
    private mutating func takeHeaderBytes(from cursor: inout Int) throws(PolicyRefusal) -> Bool {
        while cursor < pending.count {
            let byte = pending[cursor]
            let previous = partHeaders.last
            if previous == FormByte.carriageReturn, byte != FormByte.lineFeed {
                throw .badRequest("a part's headers hold a carriage return without a line feed")
            }
            if byte == FormByte.lineFeed, previous != FormByte.carriageReturn {
                throw .badRequest("a part's headers hold a line feed without a carriage return")
            }
            partHeaders.append(byte)
            cursor += 1
            guard partHeaders.count <= Self.maximumPartHeaderLength else {
                throw .badRequest("a part's headers are longer than \(Self.maximumPartHeaderLength) bytes")
            }
            let endsBlankLine =
                byte == FormByte.lineFeed
                && (partHeaders.count == 2 || partHeaders[partHeaders.count - 3] == FormByte.lineFeed)
            if endsBlankLine { return true }
        }
        return false
    }

    /// Where the next delimiter in `pending` starts at or after `start`, and whether all of it is there; the end
    /// of `pending` when no part of one is. Only a possible start of a delimiter is ever left unsent.
    private func delimiterPosition(from start: Int) -> (position: Int, isComplete: Bool) {
        pending.withUnsafeBufferPointer { haystack in
            delimiter.withUnsafeBufferPointer { needle in
                guard let base = haystack.baseAddress, let needleBase = needle.baseAddress else {
                    return (haystack.count, false)
                }
                var from = start
                while from < haystack.count,
                    let found = memchr(base + from, Int32(FormByte.carriageReturn), haystack.count - from)
                {
                    let position = UnsafeRawPointer(found) - UnsafeRawPointer(base)
                    let compared = min(needle.count, haystack.count - position)
                    if memcmp(base + position, needleBase, compared) == 0 {
                        return (position, compared == needle.count)
                    }
                    from = position + 1
                }
                return (haystack.count, false)
            }
        }
    }

    /// A `subfolder` part holding the user's folder, followed by the delimiter that ends it.
    private func appendSubfolderPart(to output: inout [UInt8]) {
        output.append(contentsOf: delimiter)
        output.append(contentsOf: "\r\nContent-Disposition: form-data; name=\"subfolder\"\r\n\r\n".utf8)
        output.append(contentsOf: space.folder.utf8)
    }

    /// The boundary of a `multipart/form-data` content type, or nil.
    private static func boundary(inContentType contentType: [UInt8]) -> [UInt8]? {
        guard contentType.allSatisfy({ (0x20...0x7E).contains($0) || $0 == FormByte.tab }) else { return nil }
        let items = contentType.split(separator: FormByte.semicolon, omittingEmptySubsequences: false)
        guard FormByte.lowercased(FormByte.trimmed(items[0])) == "multipart/form-data" else { return nil }
        var boundary: [UInt8]?
        for item in items.dropFirst() {
            let equals = item.firstIndex(of: FormByte.equals) ?? item.endIndex
            guard FormByte.lowercased(FormByte.trimmed(item[..<equals])) == "boundary" else { continue }
            guard boundary == nil, equals < item.endIndex else { return nil }
            boundary = Self.boundaryValue(FormByte.trimmed(item[(equals + 1)...]))
            guard boundary != nil else { return nil }
        }
        return boundary
    }

    /// A boundary parameter's value, bare or quoted, if it is one aiohttp reads the same (no quotes or spaces
    /// to trim inside).
    private static func boundaryValue(_ raw: ArraySlice<UInt8>) -> [UInt8]? {
        let isQuoted = raw.count >= 2 && raw.first == FormByte.quote && raw.last == FormByte.quote
        let value = isQuoted ? raw.dropFirst().dropLast() : raw
        guard (1...70).contains(value.count), value.first != FormByte.space, value.last != FormByte.space,
            value.allSatisfy({ FormByte.isBoundaryCharacter($0) && (isQuoted || $0 != FormByte.space) })
        else { return nil }
        return Array(value)
    }
}

extension PolicyJSON {
    /// The value as compact JSON text in UTF-8: no whitespace, members in order, numbers as their literal text,
    /// strings escaped as RFC 8259 requires (`"`, `\` and control characters) and otherwise written as UTF-8.
    public func serialized() -> [UInt8] {
        var output: [UInt8] = []
        write(to: &output, spaced: false)
        return output
    }

    /// The value as ComfyUI's websocket messages are written (Python's `json.dumps`): `", "` between elements and
    /// `": "` after keys, otherwise as ``serialized()``.
    public func serializedAsComfyUI() -> [UInt8] {
        var output: [UInt8] = []
        write(to: &output, spaced: true)
        return output
    }

    private func write(to output: inout [UInt8], spaced: Bool) {
        switch self {
        case .null: output.append(contentsOf: "null".utf8)
        case .bool(let value): output.append(contentsOf: (value ? "true" : "false").utf8)
        case .number(let literal): output.append(contentsOf: literal.utf8)
        case .string(let text): Self.write(text, to: &output)
        case .array(let elements):
            output.append(UInt8(ascii: "["))
            for (position, element) in elements.enumerated() {
                if position > 0 { output.append(contentsOf: spaced ? Array(", ".utf8) : [UInt8(ascii: ",")]) }
                element.write(to: &output, spaced: spaced)
            }
            output.append(UInt8(ascii: "]"))
        case .object(let members):
            output.append(UInt8(ascii: "{"))
            for (position, member) in members.enumerated() {
                if position > 0 { output.append(contentsOf: spaced ? Array(", ".utf8) : [UInt8(ascii: ",")]) }
                Self.write(member.key, to: &output)
                output.append(contentsOf: spaced ? Array(": ".utf8) : [UInt8(ascii: ":")])
                member.value.write(to: &output, spaced: spaced)
            }
            output.append(UInt8(ascii: "}"))
        }
    }

    private static func write(_ text: String, to output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        var text = text
        text.withUTF8 { bytes in
            var runStart = 0
            for (index, byte) in bytes.enumerated() where byte < 0x20 || byte == 0x22 || byte == 0x5C {
                output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<index]))
                appendEscape(of: byte, to: &output)
                runStart = index + 1
            }
            output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart...]))
        }
        output.append(UInt8(ascii: "\""))
    }

    private static func appendEscape(of byte: UInt8, to output: inout [UInt8]) {
        let short: UInt8? =
            switch byte {
            case 0x22: UInt8(ascii: "\"")
            case 0x5C: UInt8(ascii: "\\")
            case 0x08: UInt8(ascii: "b")
            case 0x0C: UInt8(ascii: "f")
            case 0x0A: UInt8(ascii: "n")
            case 0x0D: UInt8(ascii: "r")
            case 0x09: UInt8(ascii: "t")
            default: nil
            }
        output.append(UInt8(ascii: "\\"))
        if let short {
            output.append(short)
        } else {
            let hexDigits = Array("0123456789abcdef".utf8)
            output.append(contentsOf: "u00".utf8)
            output.append(hexDigits[Int(byte >> 4)])
            output.append(hexDigits[Int(byte & 0xF)])
        }
    }
}

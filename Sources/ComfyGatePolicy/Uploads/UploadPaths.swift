/// The folder checks of an upload form's two guarded text fields.
enum UploadPaths {
    /// The `subfolder` value ComfyUI gets for one a user sent: the user's folder, then the sent value normalised
    /// as `os.path.normpath` does (empty and `.` components dropped, `..` taking the one before it away).
    ///
    /// Refused with 400, as ComfyUI refuses escapes: text that is not UTF-8, backslashes, and absolute values or
    /// values whose `..` climb out of where they start.
    static func confinedSubfolder(_ value: [UInt8], in space: UserSpace) throws(PolicyRefusal) -> [UInt8] {
        guard String(validating: value, as: UTF8.self) != nil else { throw .badRequest("subfolder is not UTF-8 text") }
        guard !value.contains(FormByte.backslash) else { throw .badRequest("subfolder may not hold backslashes") }
        guard value.first != FormByte.slash, let components = normalisedComponents(of: value) else {
            throw .badRequest("subfolder leaves your folder")
        }
        var confined = Array(space.folder.utf8)
        for component in components {
            confined.append(FormByte.slash)
            confined.append(contentsOf: component)
        }
        return confined
    }

    /// Refuses an `original_ref` (the `/upload/mask` field naming the image whose alpha is replaced) unless it
    /// names the user's own file: one in their folder, or one `ownsFile` knows as theirs.
    ///
    /// The file is found as ComfyUI finds it: `filename` may carry a folder and a ` [input]`, ` [output]` or
    /// ` [temp]` annotation that overrides `type` (default `output`); `subfolder` comes before it. 400 when the
    /// value is not such a JSON object; 403 for anything else, `..` and absolute paths included.
    static func checkOriginalReference(
        _ value: [UInt8],
        in space: UserSpace,
        ownsFile: (_ type: String, _ subfolder: String, _ name: String) -> Bool
    ) throws(PolicyRefusal) {
        guard let reference = try? PolicyJSON(parsing: value), reference.members != nil else {
            throw .badRequest("original_ref is not a JSON object")
        }
        guard var fileName = reference["filename"]?.stringValue else {
            throw .badRequest("original_ref has no filename")
        }
        var type: String
        if let (annotation, length) = annotation(of: fileName) {
            type = annotation
            fileName = String(String.UnicodeScalarView(fileName.unicodeScalars.dropLast(length)))
        } else {
            guard let sent = reference["type"].map(\.stringValue) ?? "output",
                ["input", "output", "temp"].contains(sent)
            else { throw .badRequest("original_ref has a type other than input, output or temp") }
            type = sent
        }
        guard let subfolder = reference["subfolder"].map(\.stringValue) ?? "" else {
            throw .badRequest("original_ref has a subfolder that is not text")
        }

        let notYours = PolicyRefusal.forbidden("original_ref names a file that is not yours")
        let path = Array(subfolder.utf8) + [FormByte.slash] + Array(fileName.utf8)
        let components = path.split(separator: FormByte.slash).filter { $0 != [FormByte.dot] }
        guard subfolder.utf8.first != FormByte.slash, fileName.utf8.first != FormByte.slash,
            !path.contains(FormByte.backslash), !components.contains([FormByte.dot, FormByte.dot]),
            !subfolder.unicodeScalars.contains("\u{FFFD}"), !fileName.unicodeScalars.contains("\u{FFFD}"),
            let name = components.last
        else { throw notYours }
        let folder = String(decoding: Array(components.dropLast().joined(separator: [FormByte.slash])), as: UTF8.self)
        guard space.contains(folder: folder) || ownsFile(type, folder, String(decoding: name, as: UTF8.self)) else {
            throw notYours
        }
    }

    /// The type a file name's annotation names, and how many characters ComfyUI drops for it (the annotation and
    /// the one before it, meant to be a space).
    private static func annotation(of fileName: String) -> (type: String, length: Int)? {
        for type in ["output", "input", "temp"]
        where fileName.unicodeScalars.reversed().starts(with: "[\(type)]".unicodeScalars.reversed()) {
            return (type, type.unicodeScalars.count + 3)
        }
        return nil
    }

    /// The components of a relative `/`-separated path with empty and `.` components dropped and each `..`
    /// removing the component before it; nil when a `..` has none to remove.
    private static func normalisedComponents(of path: [UInt8]) -> [ArraySlice<UInt8>]? {
        var components: [ArraySlice<UInt8>] = []
        for component in path.split(separator: FormByte.slash) where component != [FormByte.dot] {
            if component == [FormByte.dot, FormByte.dot] {
                guard components.popLast() != nil else { return nil }
            } else {
                components.append(component)
            }
        }
        return components
    }
}

import Foundation

/// The stand-in's input/output/temp directories: real files under a private temporary root,
/// removed when the stand-in stops. Virtual large files live only as (name, size) entries.
final class StandInFileStore: Sendable {
    let root: String
    let virtualFiles: [String: Int]

    init(virtualFiles: [String: Int]) throws {
        let root = FileManager.default.temporaryDirectory.path + "/comfyui-standin-" + UUID().uuidString.lowercased()
        for type in ComfyUIStandIn.FileType.allCases {
            try FileManager.default.createDirectory(atPath: root + "/" + type.rawValue, withIntermediateDirectories: true)
        }
        self.root = root
        self.virtualFiles = virtualFiles
    }

    func removeAll() {
        try? FileManager.default.removeItem(atPath: root)
    }

    func directory(_ type: ComfyUIStandIn.FileType) -> String { root + "/" + type.rawValue }

    /// `folder_paths.get_user_directory()`.
    var userDirectory: String { root + "/user" }

    /// `folder_paths.get_annotated_filepath`: a `[output]`/`[input]`/`[temp]` suffix picks the directory (input
    /// otherwise) and is cut off with the character before it; the rest is joined on (an absolute value replaces the
    /// directory). `confined` adds the [newer] guard: nil when the result leaves the directory.
    func annotatedFilePath(_ name: String, confined: Bool) -> String? {
        var name = name
        var base = directory(.input)
        if let type = ComfyUIStandIn.FileType.allCases.first(where: { name.hasSuffix("[\($0.rawValue)]") }) {
            name = String(name.dropLast(type.rawValue.count + 3))
            base = directory(type)
        }
        if confined { return Self.confined(base: base, sub: name) }
        return name.hasPrefix("/") ? name : base + "/" + name
    }

    /// Python's `os.path.normpath` for the POSIX cases the guards need.
    static func normalize(_ path: String) -> String {
        let absolute = path.hasPrefix("/")
        var parts: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == ".." {
                if let last = parts.last, last != ".." {
                    parts.removeLast()
                } else if !absolute {
                    parts.append(part)
                }
                continue
            }
            parts.append(part)
        }
        let joined = parts.joined(separator: "/")
        if absolute { return "/" + joined }
        return joined.isEmpty ? "." : joined
    }

    /// `os.path.join(base, sub)` then `abspath`; nil when the result leaves `base` (the commonpath check).
    static func confined(base: String, sub: String) -> String? {
        let joined = sub.hasPrefix("/") ? sub : base + "/" + sub
        let normalized = normalize(joined)
        guard normalized == base || normalized.hasPrefix(base + "/") else { return nil }
        return normalized
    }

    func isRegularFile(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && !isDir.boolValue
    }

    func size(_ path: String) -> Int? {
        (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? nil
    }

    /// Files directly in `type`'s directory (plus virtual files for output), sorted.
    func list(_ type: ComfyUIStandIn.FileType, subfolder: String = "") -> [String] {
        let dir = subfolder.isEmpty ? directory(type) : directory(type) + "/" + subfolder
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        var files = names.filter { isRegularFile(dir + "/" + $0) }
        if type == .output, subfolder.isEmpty { files += virtualFiles.keys }
        return files.sorted()
    }

    func write(_ bytes: [UInt8], type: ComfyUIStandIn.FileType, subfolder: String, name: String) throws {
        let dir = subfolder.isEmpty ? directory(type) : directory(type) + "/" + subfolder
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try Data(bytes).write(to: URL(fileURLWithPath: dir + "/" + name))
    }

    func read(type: ComfyUIStandIn.FileType, subfolder: String, name: String) -> [UInt8]? {
        let path = (subfolder.isEmpty ? directory(type) : directory(type) + "/" + subfolder) + "/" + name
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return [UInt8](data)
    }

    /// Whether two files have identical content (compared in chunks, never whole in memory).
    static func sameContent(_ a: String, _ b: String) -> Bool {
        guard let ha = FileHandle(forReadingAtPath: a), let hb = FileHandle(forReadingAtPath: b) else { return false }
        defer {
            try? ha.close()
            try? hb.close()
        }
        while true {
            let da = (try? ha.read(upToCount: 1 << 20)) ?? Data()
            let db = (try? hb.read(upToCount: 1 << 20)) ?? Data()
            if da != db { return false }
            if da.isEmpty { return true }
        }
    }

    /// Next free `<prefix>_<counter:05>_` counter in `dir`, as ComfyUI's `get_save_image_path`.
    func nextCounter(dir: String, prefix: String) -> Int {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        var highest = 0
        for name in names where name.hasPrefix(prefix + "_") {
            let rest = name.dropFirst(prefix.count + 1)
            if let digits = rest.split(separator: "_", omittingEmptySubsequences: false).first, let n = Int(digits) {
                highest = max(highest, n)
            }
        }
        return highest + 1
    }
}

/// Guess a MIME type from a file name, as Python's `mimetypes.guess_type` does for common types.
func standInGuessContentType(_ name: String) -> String? {
    guard let dot = name.lastIndex(of: ".") else { return nil }
    switch name[name.index(after: dot)...].lowercased() {
    case "png": return "image/png"
    case "jpg", "jpeg": return "image/jpeg"
    case "webp": return "image/webp"
    case "gif": return "image/gif"
    case "bmp": return "image/bmp"
    case "svg": return "image/svg+xml"
    case "mp4": return "video/mp4"
    case "webm": return "video/webm"
    case "mp3": return "audio/mpeg"
    case "wav": return "audio/x-wav"
    case "flac": return "audio/flac"
    case "json": return "application/json"
    case "txt": return "text/plain"
    case "html", "htm": return "text/html"
    case "js", "mjs": return "text/javascript"
    case "css": return "text/css"
    case "ico": return "image/vnd.microsoft.icon"
    case "woff": return "font/woff"
    case "woff2": return "font/woff2"
    case "ttf": return "font/ttf"
    case "otf": return "font/otf"
    case "zip": return "application/zip"
    case "bin": return "application/octet-stream"
    default: return nil
    }
}

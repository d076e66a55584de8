import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import NIOCore
import NIOPosix

/// `POST /upload/image` (A.8) and `GET /view` (A.7).
enum StandInFileRoutes {
    // MARK: upload

    static func upload(_ request: Request, state: StandInState) async throws -> Response {
        let limit = state.options.maxUploadSize
        guard let boundary = request.headers[.contentType].flatMap(StandInMultipartParser.boundary(fromContentType:)) else {
            // request.post() of a non-form body yields no fields → `image` missing → 400
            _ = try await standInReadBody(request, limit: limit)
            return StandInResponses.bare(.badRequest)
        }
        var parser = StandInMultipartParser(boundary: boundary, tempDirectory: state.files.root)
        var total = 0
        var parseFailed = false
        for try await chunk in request.body {
            total += chunk.readableBytes
            if total > limit || parseFailed { continue }
            do { try chunk.withUnsafeReadableBytes { try parser.feed($0) } } catch { parseFailed = true }
        }
        defer { parser.cleanUp() }
        if total > limit {
            throw StandInHTTPError(
                status: .contentTooLarge, body: "Maximum request body size \(limit) exceeded, actual body size \(total)")
        }
        if parseFailed { throw StandInRoutes.Unhandled() }
        try parser.finish()

        func field(_ name: String) -> StandInMultipartParser.Part? { parser.parts.first { $0.name == name } }
        func text(_ name: String) -> String? { field(name).map { String(decoding: $0.value, as: UTF8.self) } }

        let typeName = text("type") ?? "input"
        guard let type = ComfyUIStandIn.FileType(rawValue: typeName) else { throw StandInRoutes.Unhandled() }  // UnboundLocalError
        guard let image = field("image") else { return StandInResponses.bare(.badRequest) }
        guard let filename = image.filename, !filename.isEmpty, let tempPath = image.tempPath else {
            // a plain (non-file) field: "" is falsy → 400, anything else has no `.file` → 500
            if image.value.isEmpty { return StandInResponses.bare(.badRequest) }
            throw StandInRoutes.Unhandled()
        }
        let subfolder = text("subfolder") ?? ""
        let uploadDir = state.files.directory(type)
        let folder = StandInFileStore.normalize(uploadDir + "/" + StandInFileStore.normalize(subfolder))
        var filepath = StandInFileStore.normalize(folder + "/" + filename)
        guard filepath.hasPrefix(uploadDir + "/") else { return StandInResponses.bare(.badRequest) }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var finalName = filename
        var duplicate = false
        let overwrite = text("overwrite")
        if overwrite != "true" && overwrite != "1" {
            let (stem, ext) = splitExtension(filename)
            var i = 1
            while FileManager.default.fileExists(atPath: filepath) {
                if StandInFileStore.sameContent(filepath, tempPath) {
                    duplicate = true
                    break
                }
                finalName = "\(stem) (\(i))\(ext)"
                filepath = folder + "/" + finalName
                i += 1
            }
        }
        if !duplicate {
            try? FileManager.default.removeItem(atPath: filepath)
            try FileManager.default.moveItem(atPath: tempPath, toPath: filepath)
        }
        return StandInResponses.json(["name": .string(finalName), "subfolder": .string(subfolder), "type": .string(type.rawValue)])
    }

    /// Python's `os.path.splitext`.
    static func splitExtension(_ name: String) -> (String, String) {
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex,
            name[..<dot].contains(where: { $0 != "." })
        else { return (name, "") }
        return (String(name[..<dot]), String(name[dot...]))
    }

    // MARK: view

    static func view(_ request: Request, context: StandInContext, state: StandInState) async throws -> Response {
        guard var filename = StandInLoginMiddleware.queryValue(request, "filename") else { return StandInResponses.bare(.notFound) }
        var outputDir: String?
        for type in ComfyUIStandIn.FileType.allCases where filename.hasSuffix(" [\(type.rawValue)]") {
            filename = String(filename.dropLast(type.rawValue.count + 3))
            outputDir = state.files.directory(type)
        }
        guard !filename.isEmpty else { return StandInResponses.bare(.badRequest) }
        if filename.hasPrefix("/") || filename.contains("..") { return StandInResponses.bare(.badRequest) }
        if outputDir == nil {
            let typeName = StandInLoginMiddleware.queryValue(request, "type") ?? "output"
            outputDir = ComfyUIStandIn.FileType(rawValue: typeName).map { state.files.directory($0) }
        }
        guard var directory = outputDir else { return StandInResponses.bare(.badRequest) }
        let base = directory
        if let subfolder = StandInLoginMiddleware.queryValue(request, "subfolder") {
            guard let confined = StandInFileStore.confined(base: base, sub: subfolder.isEmpty ? "." : subfolder) else {
                return StandInResponses.bare(.forbidden)
            }
            directory = confined
        }
        let name = filename.split(separator: "/", omittingEmptySubsequences: false).last.map(String.init) ?? filename
        let path = directory + "/" + name

        var contentType = standInGuessContentType(name) ?? "application/octet-stream"
        if ["text/html", "text/html-sandboxed", "application/xhtml+xml", "text/javascript", "text/css"].contains(contentType) {
            contentType = "application/octet-stream"
        }
        var headers = HTTPFields()
        headers[.contentDisposition] = "filename=\"\(name)\""
        headers[.contentType] = contentType
        headers[.acceptRanges] = "bytes"

        let virtualSize = directory == state.files.directory(.output) ? state.files.virtualFiles[name] : nil
        let size: Int
        if let virtualSize {
            size = virtualSize
        } else if state.files.isRegularFile(path), let fileSize = state.files.size(path) {
            size = fileSize
        } else {
            return StandInResponses.bare(.notFound)
        }

        var range = 0..<size
        var status = HTTPResponse.Status.ok
        if let rangeHeader = request.headers[.range] {
            guard let parsed = parseRange(rangeHeader, size: size) else {
                headers[.contentRange] = "bytes */\(size)"
                return Response(status: .rangeNotSatisfiable, headers: headers)
            }
            range = parsed
            status = .partialContent
            headers[.contentRange] = "bytes \(range.lowerBound)-\(range.upperBound - 1)/\(size)"
        }
        headers[.contentLength] = String(range.count)
        if range.isEmpty { return Response(status: status, headers: headers, body: .init()) }

        let byteRange = range
        if virtualSize != nil {
            let body = ResponseBody(contentLength: byteRange.count) { writer in
                let allocator = ByteBufferAllocator()
                var offset = byteRange.lowerBound
                while offset < byteRange.upperBound {
                    let length = min(StandInVirtualFile.chunkSize, byteRange.upperBound - offset)
                    try await writer.write(StandInVirtualFile.chunk(offset: offset, length: length, allocator: allocator))
                    offset += length
                }
                try await writer.finish(nil)
            }
            return Response(status: status, headers: headers, body: body)
        }
        let body = try await FileIO(threadPool: .singleton).loadFile(
            path: path, range: range.lowerBound...(range.upperBound - 1), context: context, chunkLength: 64 * 1024)
        return Response(status: status, headers: headers, body: body)
    }

    /// A single `bytes=` range; nil when unsatisfiable or malformed.
    static func parseRange(_ header: String, size: Int) -> Range<Int>? {
        guard header.hasPrefix("bytes="), !header.contains(",") else { return nil }
        let spec = header.dropFirst(6).split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard spec.count == 2 else { return nil }
        if spec[0].isEmpty {
            guard let suffix = Int(spec[1]), suffix > 0 else { return nil }
            return max(0, size - suffix)..<size
        }
        guard let start = Int(spec[0]), start < size else { return nil }
        let end = spec[1].isEmpty ? size - 1 : min(Int(spec[1]) ?? -1, size - 1)
        guard end >= start else { return nil }
        return start..<(end + 1)
    }
}

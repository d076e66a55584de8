import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOPosix

/// The front end served from ComfyUI's web root (A.1): aiohttp's `web.static('/', web_root)`, registered after every
/// route, answers the GET and HEAD requests that no route takes, and sends files as aiohttp's `FileResponse` does.
enum StandInStaticFiles {
    /// The router's last middleware, added after every route: it sees only requests that no route and method matched.
    struct Fallback: RouterMiddleware {
        typealias Context = StandInContext
        /// The web root with its symbolic links resolved.
        let root: String

        func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
            guard request.method == .get || request.method == .head else {
                // The static resource takes only GET and HEAD: aiohttp finds the path but not the method.
                return StandInResponses.aiohttpError(.methodNotAllowed, headers: [.allow: "GET,HEAD"])
            }
            let name = String(request.uri.path.dropFirst())
            guard let decoded = name.removingPercentEncoding, !decoded.hasPrefix("/") else {
                return StandInResponses.aiohttpError(.notFound)
            }
            return try await file(decoded, in: root, request: request, context: context)
        }
    }

    /// `path` with its symbolic links resolved, nil unless it is a directory.
    static func resolvedDirectory(_ path: String) -> String? {
        let resolved = resolved(path)
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: resolved, isDirectory: &isDirectory) && isDirectory.boolValue ? resolved : nil
    }

    /// Python's `Path.resolve()`: absolute, symbolic links followed, `.` and `..` gone.
    private static func resolved(_ path: String) -> String { URL(fileURLWithPath: path).resolvingSymlinksInPath().path }

    /// The file at `relativePath` under `root` as aiohttp's static resource answers it: `404: Not Found` when the path
    /// leaves the root (`..`, a symbolic link pointing out), `403: Forbidden` for a directory, an empty 404 for a
    /// missing file; otherwise the file with its content type, `ETag` and `Last-Modified`, 304 for a matching
    /// `If-None-Match` (or, without one, an `If-Modified-Since` not older than the file) and 206 for a `Range`.
    static func file(_ relativePath: String, in root: String, request: Request, context: StandInContext) async throws -> Response {
        let path = resolved(root + "/" + relativePath)
        guard path == root || path.hasPrefix(root + "/") else { return StandInResponses.aiohttpError(.notFound) }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return StandInResponses.bare(.notFound) }
        if isDirectory.boolValue { return StandInResponses.aiohttpError(.forbidden) }
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path), attributes[.type] as? FileAttributeType == .typeRegular,
            let size = attributes[.size] as? Int, let modified = attributes[.modificationDate] as? Date
        else { return StandInResponses.bare(.forbidden) }
        // aiohttp's entity tag: modification time in nanoseconds and size, in hexadecimal.
        let etag = String(Int((modified.timeIntervalSince1970 * 1e9).rounded()), radix: 16) + "-" + String(size, radix: 16)
        var headers = HTTPFields()
        headers[.eTag] = "\"\(etag)\""
        headers[.lastModified] = httpDate(modified)

        if let ifNoneMatch = request.headers[.ifNoneMatch] {
            if entityTags(ifNoneMatch).contains(where: { $0 == "*" || $0 == etag }) {
                return Response(status: .notModified, headers: headers)
            }
        } else if let since = request.headers[.ifModifiedSince].flatMap(parseHTTPDate), modified <= since {
            return Response(status: .notModified, headers: headers)
        }

        headers[.contentType] = standInGuessContentType(path) ?? "application/octet-stream"
        headers[.acceptRanges] = "bytes"
        var range = 0..<size
        var answer = HTTPResponse.Status.ok
        if let rangeHeader = request.headers[.range] {
            guard let parsed = StandInFileRoutes.parseRange(rangeHeader, size: size) else {
                headers[.contentRange] = "bytes */\(size)"
                return Response(status: .rangeNotSatisfiable, headers: headers)
            }
            range = parsed
            answer = .partialContent
            headers[.contentRange] = "bytes \(range.lowerBound)-\(range.upperBound - 1)/\(size)"
        }
        headers[.contentLength] = String(range.count)
        guard request.method != .head, !range.isEmpty else { return Response(status: answer, headers: headers, body: .init()) }
        let body = try await FileIO(threadPool: .singleton).loadFile(
            path: path, range: range.lowerBound...(range.upperBound - 1), context: context, chunkLength: 64 * 1024)
        return Response(status: answer, headers: headers, body: body)
    }

    /// `get_extensions` over the web root: every `extensions/**/*.js` as `/extensions/…`. Python's glob lists entries
    /// in the file system's order; here each directory's files come sorted, before its subdirectories, and names
    /// starting with a dot are skipped as glob skips them.
    static func extensionURLs(root: String) -> [String] {
        var urls: [String] = []
        func visit(_ relative: String) {
            let directory = root + "/" + relative
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
            var subdirectories: [String] = []
            for name in names {
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: directory + "/" + name, isDirectory: &isDirectory) else { continue }
                if isDirectory.boolValue {
                    subdirectories.append(name)
                } else if name.hasSuffix(".js") {
                    urls.append("/" + relative + "/" + name)
                }
            }
            for name in subdirectories { visit(relative + "/" + name) }
        }
        visit("extensions")
        return urls
    }

    /// The entity tags of an `If-None-Match` value, without quotes and weakness marks (the comparison is weak).
    static func entityTags(_ value: String) -> [String] {
        value.split(separator: ",").map { item in
            var tag = item.trimmingCharacters(in: .whitespaces)
            if tag.hasPrefix("W/") { tag.removeFirst(2) }
            return tag.count >= 2 && tag.hasPrefix("\"") && tag.hasSuffix("\"") ? String(tag.dropFirst().dropLast()) : tag
        }
    }

    /// An HTTP date (RFC 9110 IMF-fixdate), e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
    static func httpDate(_ date: Date) -> String { httpDateFormatter().string(from: date) }

    static func parseHTTPDate(_ text: String) -> Date? { httpDateFormatter().date(from: text) }

    private static func httpDateFormatter() -> DateFormatter {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter
    }
}

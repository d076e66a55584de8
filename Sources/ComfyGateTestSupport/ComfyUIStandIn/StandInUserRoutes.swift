import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization

/// `app/user_manager.py` and `app/app_settings.py` of 0.3.64 (A.5, A.10): `/users`, `/settings*`, `/userdata*` and
/// `/v2/userdata`, stored as files under `<root>/user/<user id>`.
enum StandInUserRoutes {
    /// `get_request_user_id` raising `KeyError` (an id not in the users map).
    struct UnknownUser: Error {}

    /// A `/userdata/{file}` target: the file path, or the answer refusing it.
    enum Target {
        case path(String)
        case refused(Response)
    }

    static let settingsFile = "comfy.settings.json"

    static func register(on routes: StandInRouteTable, state: StandInState) {
        routes.add("/users", .get) { _, _ in
            guard state.options.multiUser else {
                let defaultDirectory = state.files.userDirectory + "/default"
                return StandInResponses.json(["storage": "server", "migrated": .bool(FileManager.default.fileExists(atPath: defaultDirectory))])
            }
            let users = state.inner.withLock { $0.users }
            return StandInResponses.json(["storage": "server", "users": .object(users.map { ($0.id, .string($0.name)) })])
        }
        routes.add("/users", .post) { request, _ in try await postUser(request, state: state) }

        routes.add("/settings", .get) { request, _ in StandInResponses.json(.object(try settings(request, state: state))) }
        routes.add("/settings/{id}", .get) { request, context in
            let id = context.parameters.get("id") ?? ""
            return StandInResponses.json(try settings(request, state: state).last { $0.0 == id }?.1 ?? .null)
        }
        routes.add("/settings", .post) { request, _ in
            var current = try settings(request, state: state)
            let body = try await StandInRoutes.jsonBody(request, state: state)
            guard let members = body.objectValue else { throw StandInRoutes.Unhandled() }  // {**settings, **new} of a non-dict
            for (key, value) in members { StandInJSON.setMember(key, value, in: &current) }
            try saveSettings(current, request: request, state: state)
            return StandInResponses.bare(.ok)
        }
        routes.add("/settings/{id}", .post) { request, context in
            let id = context.parameters.get("id") ?? ""
            var current = try settings(request, state: state)
            StandInJSON.setMember(id, try await StandInRoutes.jsonBody(request, state: state), in: &current)
            try saveSettings(current, request: request, state: state)
            return StandInResponses.bare(.ok)
        }

        routes.add("/userdata", .get) { request, _ in try listUserData(request, state: state) }
        routes.add("/v2/userdata", .get) { request, _ in try listUserDataV2(request, state: state) }
        routes.add("/userdata/{file}", .get) { request, context in
            switch try target(context, request: request, state: state, mustExist: true) {
            case .refused(let response): return response
            case .path(let path):
                guard let data = FileManager.default.contents(atPath: path) else { throw StandInRoutes.Unhandled() }
                var headers = HTTPFields()
                headers[.contentType] = standInGuessContentType(path) ?? "application/octet-stream"
                return Response(status: .ok, headers: headers, body: .init(byteBuffer: .init(bytes: data)))
            }
        }
        routes.add("/userdata/{file}", .post) { request, context in
            switch try target(context, request: request, state: state, mustExist: false) {
            case .refused(let response): return response
            case .path(let path):
                let overwrite = StandInLoginMiddleware.queryValue(request, "overwrite") ?? "true" != "false"
                let fullInfo = (StandInLoginMiddleware.queryValue(request, "full_info") ?? "false").lowercased() == "true"
                if !overwrite && FileManager.default.fileExists(atPath: path) {
                    return StandInResponses.text("File already exists", status: .conflict)
                }
                let body = try await standInReadBody(request, limit: state.options.maxUploadSize)
                guard (try? Data(body).write(to: URL(fileURLWithPath: path))) != nil else { return StandInResponses.bare(.badRequest) }
                let userRoot = try userFilePath(request, file: nil, state: state) ?? ""
                return StandInResponses.json(fullInfo ? fileInfo(path, relativeTo: userRoot) : .string(relativePath(path, to: userRoot)))
            }
        }
        routes.add("/userdata/{file}", .delete) { request, context in
            switch try target(context, request: request, state: state, mustExist: true) {
            case .refused(let response): return response
            case .path(let path):
                try FileManager.default.removeItem(atPath: path)
                return StandInResponses.bare(.noContent)
            }
        }
    }

    // MARK: users

    static func userId(_ request: Request, state: StandInState) throws -> String {
        var user = "default"
        if state.options.multiUser, let header = request.headers[HTTPField.Name("comfy-user")!] { user = header }
        guard state.inner.withLock({ $0.users.contains { $0.id == user } }) else { throw UnknownUser() }
        return user
    }

    /// `get_request_user_filepath`: `<root>/user/<id>[/<file>]`, `%`-decoded file; nil when it leaves its directory.
    static func userFilePath(_ request: Request, file: String?, state: StandInState, createDirectory: Bool = true) throws -> String? {
        let root = state.files.userDirectory
        guard let userRoot = StandInFileStore.confined(base: root, sub: try userId(request, state: state)) else { return nil }
        var path = userRoot
        if var file {
            if file.contains("%") { file = file.removingPercentEncoding ?? file }
            guard let inside = StandInFileStore.confined(base: userRoot, sub: file) else { return nil }
            path = inside
        }
        if createDirectory {
            let parent = String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)])
            try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        }
        return path
    }

    static func postUser(_ request: Request, state: StandInState) async throws -> Response {
        let body = try await StandInRoutes.jsonBody(request, state: state)
        guard let username = body["username"] else { throw StandInRoutes.Unhandled() }  // KeyError
        let id: String? = try state.inner.withLock { s in
            if s.users.contains(where: { .string($0.name) == username }) { return nil }
            guard let name = username.stringValue?.trimmingWhitespace(), !name.isEmpty else { throw StandInRoutes.Unhandled() }
            let id = sanitizedUserName(name) + "_" + UUID().uuidString.lowercased()
            s.users.append((id, name))
            return id
        }
        guard let id else { return StandInResponses.json(["error": "Duplicate username."], status: .badRequest) }
        return StandInResponses.json(.string(id))
    }

    /// `re.sub("[^a-zA-Z0-9-_]+", "-", name)`.
    static func sanitizedUserName(_ name: String) -> String {
        var out = ""
        var inRun = false
        for scalar in name.unicodeScalars {
            if scalar.isASCII, scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || scalar == "-" || scalar == "_" {
                out.unicodeScalars.append(scalar)
                inRun = false
            } else if !inRun {
                out += "-"
                inRun = true
            }
        }
        return out
    }

    // MARK: settings

    /// `AppSettings.get_settings`: the user's `comfy.settings.json`, `{}` when missing or corrupt; 401 for an unknown user.
    static func settings(_ request: Request, state: StandInState) throws -> [(String, StandInJSON)] {
        let path: String?
        do {
            path = try userFilePath(request, file: settingsFile, state: state)
        } catch is UnknownUser {
            throw StandInHTTPError(status: .unauthorized, body: "401: Unauthorized")
        }
        guard let path else { throw StandInRoutes.Unhandled() }
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        return (try? StandInJSON.parse([UInt8](data)))?.objectValue ?? []
    }

    static func saveSettings(_ settings: [(String, StandInJSON)], request: Request, state: StandInState) throws {
        guard let path = try userFilePath(request, file: settingsFile, state: state) else { throw StandInRoutes.Unhandled() }
        try Data(StandInJSON.object(settings).serialized.utf8).write(to: URL(fileURLWithPath: path))
    }

    // MARK: userdata

    static func target(_ context: StandInContext, request: Request, state: StandInState, mustExist: Bool) throws -> Target {
        let raw = context.parameters.get("file") ?? ""
        guard let path = try userFilePath(request, file: raw.removingPercentEncoding ?? raw, state: state) else {
            return .refused(StandInResponses.bare(.forbidden))
        }
        if mustExist && !FileManager.default.fileExists(atPath: path) { return .refused(StandInResponses.bare(.notFound)) }
        return .path(path)
    }

    /// `GET /userdata?dir=…[&recurse=true][&full_info=true][&split=true]`.
    static func listUserData(_ request: Request, state: StandInState) throws -> Response {
        let directory = StandInLoginMiddleware.queryValue(request, "dir") ?? ""
        guard !directory.isEmpty else { return StandInResponses.text("Directory not provided", status: .badRequest) }
        guard let path = try userFilePath(request, file: directory, state: state) else {
            return StandInResponses.text("Invalid directory", status: .forbidden)
        }
        guard FileManager.default.fileExists(atPath: path) else { return StandInResponses.text("Directory not found", status: .notFound) }
        func flag(_ name: String) -> Bool { StandInLoginMiddleware.queryValue(request, name)?.lowercased() == "true" }
        let (recurse, fullInfo, split) = (flag("recurse"), flag("full_info"), flag("split"))
        let files = globFiles(in: path, recursive: recurse)
        return StandInResponses.json(
            .array(
                files.map { relative in
                    if fullInfo { return fileInfo(path + "/" + relative, relativeTo: path) }
                    if split { return .array(([relative] + relative.split(separator: "/").map(String.init)).map { .string($0) }) }
                    return .string(relative)
                }))
    }

    /// Python `glob(<dir>/*)` or recursive `glob(<dir>/**/*)`, regular files only, relative to `directory`.
    /// Like glob, names starting with `.` are not matched.
    static func globFiles(in directory: String, recursive: Bool) -> [String] {
        var out: [String] = []
        func walk(_ relative: String) {
            let full = relative.isEmpty ? directory : directory + "/" + relative
            for name in ((try? FileManager.default.contentsOfDirectory(atPath: full)) ?? []).sorted() where !name.hasPrefix(".") {
                let child = relative.isEmpty ? name : relative + "/" + name
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: directory + "/" + child, isDirectory: &isDirectory) else { continue }
                if !isDirectory.boolValue {
                    out.append(child)
                } else if recursive {
                    walk(child)
                }
            }
        }
        walk("")
        return out
    }

    /// `get_file_info`: `{"path", "size", "modified", "created"}` (times in seconds since the epoch).
    static func fileInfo(_ path: String, relativeTo base: String) -> StandInJSON {
        let attributes = (try? FileManager.default.attributesOfItem(atPath: path)) ?? [:]
        let modified = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        let created = (attributes[.creationDate] as? Date)?.timeIntervalSince1970 ?? modified
        return [
            "path": .string(relativePath(path, to: base)), "size": .int((attributes[.size] as? Int) ?? 0),
            "modified": .double(modified), "created": .double(created),
        ]
    }

    static func relativePath(_ path: String, to base: String) -> String {
        path.hasPrefix(base + "/") ? String(path.dropFirst(base.count + 1)) : "."
    }

    /// `GET /v2/userdata?path=…`: every directory and file below the path (`os.walk`), directories first, by lower-cased name.
    static func listUserDataV2(_ request: Request, state: StandInState) throws -> Response {
        var requested = StandInLoginMiddleware.queryValue(request, "path") ?? ""
        requested = requested.removingPercentEncoding ?? requested
        let base: String?
        let target: String?
        do {
            base = try userFilePath(request, file: nil, state: state, createDirectory: false)
            target = requested.isEmpty ? base : try userFilePath(request, file: requested, state: state, createDirectory: false)
        } catch is UnknownUser {
            return StandInResponses.text("Invalid user specified in request", status: .forbidden)
        }
        guard let target, let base else { return StandInResponses.text("Invalid path requested", status: .badRequest) }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: target, isDirectory: &isDirectory) else {
            if target == base { return StandInResponses.json([]) }
            return StandInResponses.text("Requested path not found", status: .notFound)
        }
        guard isDirectory.boolValue else { return StandInResponses.text("Requested path is not a directory", status: .badRequest) }
        var entries: [(isDirectory: Bool, name: String, json: StandInJSON)] = []
        for relative in (try? FileManager.default.subpathsOfDirectory(atPath: target)) ?? [] {
            let full = target + "/" + relative
            let name = String(relative.split(separator: "/").last ?? "")
            let path = StandInJSON.string(relativePath(full, to: base))
            var entryIsDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: full, isDirectory: &entryIsDirectory) else { continue }
            if entryIsDirectory.boolValue {
                entries.append((true, name, ["name": .string(name), "path": path, "type": "directory"]))
            } else {
                let attributes = (try? FileManager.default.attributesOfItem(atPath: full)) ?? [:]
                let file: StandInJSON = [
                    "name": .string(name), "path": path, "type": "file", "size": .int((attributes[.size] as? Int) ?? 0),
                    "modified": .double((attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0),
                ]
                entries.append((false, name, file))
            }
        }
        let sorted = entries.enumerated().sorted { a, b in
            (a.element.isDirectory ? 0 : 1, a.element.name.lowercased(), a.offset) < (b.element.isDirectory ? 0 : 1, b.element.name.lowercased(), b.offset)
        }
        return StandInResponses.json(.array(sorted.map(\.element.json)))
    }
}

public import AsyncHTTPClient
import Foundation
public import Logging
public import NIOCore
import NIOHTTP1

/// A typed client for ComfyUI's HTTP API (section A), directly or through an authenticating proxy.
///
/// The client does not own `httpClient`; shut it down yourself. Every call is bounded by `timeout`.
public struct ComfyUIClient: Sendable {
    /// How requests prove who they are.
    public enum Credential: Sendable, Equatable {
        /// `Authorization: Bearer <token>` (ComfyGate tokens; ComfyUI-Login's hash line).
        case bearer(String)
        /// `?token=<token>` on every URL (ComfyUI-Login's script examples; needed by clients that cannot set headers).
        case queryToken(String)
        case none
    }

    /// The server root, without a trailing slash (`http://127.0.0.1:8188`).
    public let baseURL: String
    public let credential: Credential
    public let httpClient: HTTPClient
    /// Limit for each request, from sending to the last body byte.
    public let timeout: Duration
    let logger: Logger

    /// - Throws: ``ComfyUIClientError/invalidBaseURL(_:)`` unless `baseURL` is an absolute http(s) URL.
    public init(
        baseURL: String, credential: Credential = .none, httpClient: HTTPClient, timeout: Duration = .seconds(30),
        logger: Logger = Logger(label: "comfyui-client")
    ) throws(ComfyUIClientError) {
        var trimmed = baseURL
        while trimmed.hasSuffix("/") { trimmed.removeLast() }
        guard let url = URL(string: trimmed), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme),
            url.host != nil, url.query == nil
        else { throw .invalidBaseURL(baseURL) }
        self.baseURL = trimmed
        self.credential = credential
        self.httpClient = httpClient
        self.timeout = timeout
        self.logger = logger
    }

    /// Runs `body` with an HTTP client for ComfyUI calls (redirects never followed) and shuts it down afterwards.
    public static func withHTTPClient<T: Sendable>(
        connectTimeout: TimeAmount = .seconds(20), readTimeout: TimeAmount = .seconds(60), _ body: (HTTPClient) async throws -> T
    ) async throws -> T {
        let client = HTTPClient(
            eventLoopGroupProvider: .singleton,
            configuration: .init(redirectConfiguration: .disallow, timeout: .init(connect: connectTimeout, read: readTimeout)))
        do {
            let result = try await body(client)
            try await client.shutdown()
            return result
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    // MARK: Queries

    /// `GET /system_stats`: versions, RAM, devices and VRAM.
    public func systemStats() async throws -> SystemStats {
        try SystemStats(json: try await getJSON("/system_stats"))
    }

    /// `GET /object_info`: every node class (about 500 KB on a stock install).
    public func objectInfo() async throws -> [String: NodeInfo] {
        let json = try await getJSON("/object_info", limit: 64 << 20)
        return Dictionary(uniqueKeysWithValues: (json.objectValue ?? [:]).map { ($0.key, NodeInfo(name: $0.key, json: $0.value)) })
    }

    /// `GET /object_info/{class}`: one node class, nil when ComfyUI does not know it.
    public func objectInfo(nodeClass: String) async throws -> NodeInfo? {
        let json = try await getJSON("/object_info/" + Self.pathComponent(nodeClass))
        return json[nodeClass].map { NodeInfo(name: nodeClass, json: $0) }
    }

    /// `GET /models`: the model folder keys (`checkpoints`, `vae`, `diffusion_models`, …).
    public func modelFolders() async throws -> [String] {
        try await getJSON("/models").arrayValue?.compactMap(\.stringValue) ?? []
    }

    /// `GET /models/{folder}`: relative file names in a model folder; nil when ComfyUI answers 404 (unknown folder).
    public func models(folder: String) async throws -> [String]? {
        let response = try await send(.GET, "/models/" + Self.pathComponent(folder))
        if response.status == 404 { return nil }
        return try Self.json(response).arrayValue?.compactMap(\.stringValue) ?? []
    }

    /// `GET /history/{prompt_id}`: nil until the prompt has finished (or when it is unknown).
    public func history(promptID: String) async throws -> HistoryEntry? {
        let json = try await getJSON("/history/" + Self.pathComponent(promptID))
        return json[promptID].map(HistoryEntry.init(json:))
    }

    /// `GET /view`: the bytes of an input, output or temp file.
    public func view(_ image: ImageReference) async throws -> [UInt8] {
        try await view(filename: image.filename, subfolder: image.subfolder, type: image.type)
    }

    /// `GET /view?filename=…&subfolder=…&type=…`.
    public func view(filename: String, subfolder: String = "", type: String = "output") async throws -> [UInt8] {
        let query = Self.query(["filename": filename, "subfolder": subfolder, "type": type])
        let response = try await send(.GET, "/view?" + query, limit: 512 << 20)
        guard response.status == 200 else { throw response.unexpected }
        return response.body
    }

    // MARK: Work

    /// `POST /prompt` with an API-format graph. Pass the `clientID` of your websocket to receive its events.
    /// - Throws: ``ComfyUIClientError/promptRejected(status:_:)`` when ComfyUI refuses the graph.
    public func submit(prompt: [String: JSONValue], clientID: String?) async throws -> PromptSubmission {
        var body: [String: JSONValue] = ["prompt": .object(prompt)]
        if let clientID { body["client_id"] = .string(clientID) }
        let response = try await send(.POST, "/prompt", body: try JSONValue.object(body).encoded())
        if response.status == 400 {
            let json = try? JSONValue.decode(response.body)
            let type = json?["error"]?["type"]?.stringValue ?? "error"
            let message = json?["error"]?["message"]?.stringValue ?? response.excerpt
            throw ComfyUIClientError.promptRejected(status: 400, "\(type): \(message)" + Self.nodeErrorLines(json?["node_errors"]))
        }
        let json = try Self.json(response)
        guard let promptID = json["prompt_id"]?.stringValue else { throw ComfyUIClientError.invalidResponse("no prompt_id") }
        return PromptSubmission(
            promptID: promptID, number: json["number"]?.doubleValue ?? 0, nodeErrors: json["node_errors"]?.objectValue ?? [:])
    }

    /// `POST /upload/image`: stores `data` under input (or `type`) and returns the name ComfyUI chose.
    public func uploadImage(_ data: [UInt8], filename: String, subfolder: String = "", type: String = "input", overwrite: Bool = false)
        async throws -> ImageReference
    {
        let boundary = "comfyui-client-" + UUID().uuidString
        var body: [UInt8] = []
        func field(_ name: String, _ value: String) {
            body += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n\(value)\r\n".utf8)
        }
        field("overwrite", overwrite ? "true" : "false")
        field("type", type)
        if !subfolder.isEmpty { field("subfolder", subfolder) }
        let safeName = filename.replacingOccurrences(of: "\"", with: "_")
        body += Array(
            "--\(boundary)\r\nContent-Disposition: form-data; name=\"image\"; filename=\"\(safeName)\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                .utf8)
        body += data + Array("\r\n--\(boundary)--\r\n".utf8)
        let response = try await send(.POST, "/upload/image", body: body, contentType: "multipart/form-data; boundary=\(boundary)")
        let json = try Self.json(response)
        guard let reference = ImageReference(json: ["filename": json["name"] ?? .null, "subfolder": json["subfolder"] ?? "", "type": json["type"] ?? ""])
        else { throw ComfyUIClientError.invalidResponse("no name in the upload answer") }
        return reference
    }

    /// `node_errors` of a refused prompt, one line per error: `node 3 (KSampler): Value 20000 bigger than max of 10000 (steps)`.
    static func nodeErrorLines(_ nodeErrors: JSONValue?) -> String {
        var lines: [String] = []
        for (node, entry) in (nodeErrors?.objectValue ?? [:]).sorted(by: { $0.key < $1.key }) {
            let classType = entry["class_type"]?.stringValue ?? "?"
            for error in entry["errors"]?.arrayValue ?? [] {
                let message = error["message"]?.stringValue ?? "invalid"
                let details = error["details"]?.stringValue ?? ""
                lines.append("node \(node) (\(classType)): \(message)" + (details.isEmpty ? "" : " (\(details))"))
            }
        }
        return lines.isEmpty ? "" : "\n" + lines.joined(separator: "\n")
    }

    // MARK: Plumbing

    struct RawResponse {
        var status: Int
        var headers: HTTPHeaders
        var body: [UInt8]

        var excerpt: String { ComfyUIClient.excerpt(body) }
        var unexpected: ComfyUIClientError { .unexpectedStatus(status, bodyExcerpt: excerpt) }
    }

    /// The URL of `pathAndQuery` with the query credential added.
    func url(_ pathAndQuery: String, scheme: String? = nil) -> String {
        var url = baseURL + pathAndQuery
        if let scheme, let colon = url.firstIndex(of: ":") { url = scheme + url[colon...] }
        if case .queryToken(let token) = credential {
            url += (pathAndQuery.contains("?") ? "&" : "?") + "token=" + Self.queryValue(token)
        }
        return url
    }

    func send(_ method: HTTPMethod, _ pathAndQuery: String, body: [UInt8]? = nil, contentType: String = "application/json", limit: Int = 8 << 20)
        async throws -> RawResponse
    {
        var request = HTTPClientRequest(url: url(pathAndQuery))
        request.method = method
        request.headers.add(name: "Accept", value: "application/json")
        if case .bearer(let token) = credential { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body {
            request.headers.add(name: "Content-Type", value: contentType)
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let response = try await httpClient.execute(request, timeout: .nanoseconds(Int64(timeout / .nanoseconds(1))))
        let bytes = try await response.body.collect(upTo: limit)
        return RawResponse(status: Int(response.status.code), headers: response.headers, body: Array(bytes.readableBytesView))
    }

    func getJSON(_ pathAndQuery: String, limit: Int = 8 << 20) async throws -> JSONValue {
        try Self.json(try await send(.GET, pathAndQuery, limit: limit))
    }

    static func json(_ response: RawResponse) throws -> JSONValue {
        guard response.status == 200 else { throw response.unexpected }
        do {
            return try JSONValue.decode(response.body)
        } catch {
            throw ComfyUIClientError.invalidResponse("not JSON: \(response.excerpt)")
        }
    }

    /// The first 200 characters of a body, on one line.
    static func excerpt(_ body: [UInt8]) -> String {
        let text = String(decoding: body.prefix(400), as: UTF8.self).replacingOccurrences(of: "\n", with: " ")
        return text.count > 200 ? String(text.prefix(200)) + "…" : text
    }

    static func pathComponent(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/?#"))) ?? text
    }

    static func queryValue(_ text: String) -> String {
        var allowed = CharacterSet.urlQueryAllowed
        allowed.remove(charactersIn: "&=+#?$/")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }

    static func query(_ items: KeyValuePairs<String, String>) -> String {
        items.map { "\($0.key)=\(queryValue($0.value))" }.joined(separator: "&")
    }
}

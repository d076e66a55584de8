import ComfyGateCore
import ComfyGatePolicy
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The calls the job queue makes to one ComfyUI, over the gateway's own transport.
struct ComfyUIBackend: Sendable {
    let transport: any UpstreamTransport
    /// How jobs name it (`Job.backend`).
    let name: String
    /// How these requests name themselves to ComfyUI.
    var userAgent = Self.userAgent

    /// How the job queue's own requests name themselves to ComfyUI.
    static let userAgent = "comfygate-jobs"

    /// ComfyUI answered, but not as the job queue needed.
    struct UnexpectedAnswer: Error, CustomStringConvertible {
        let description: String
    }

    /// `POST /prompt` with a body the gateway built: ComfyUI's status and answer, whatever they are.
    func submit(_ body: [UInt8]) async throws -> (status: Int, answer: [UInt8]) {
        let response = try await send(.post, "/prompt", body: body)
        return (response.status.code, try await UpstreamProxy.collect(response, limit: UpstreamProxy.maxJSONRequest))
    }

    /// The ids of the prompts in ComfyUI's queue: running, and waiting.
    func queue() async throws -> (running: Set<String>, pending: Set<String>) {
        let queue = try await json("/queue")
        func ids(_ list: String) -> Set<String> {
            Set((queue[list]?.arrayValue ?? []).compactMap { $0.arrayValue?.dropFirst().first?.stringValue })
        }
        return (ids("queue_running"), ids("queue_pending"))
    }

    /// `GET /system_stats`.
    func systemStats() async throws -> PolicyJSON {
        try await json("/system_stats")
    }

    /// ComfyUI's history entry for a prompt, nil when its history does not have it.
    func historyEntry(promptID: String) async throws -> PolicyJSON? {
        var segment = CharacterSet.urlPathAllowed
        segment.remove("/")
        let encoded = promptID.addingPercentEncoding(withAllowedCharacters: segment) ?? promptID
        return try await json("/history/" + encoded)[promptID]
    }

    /// `GET /object_info`.
    func objectInfo() async throws -> PolicyJSON {
        try await json("/object_info")
    }

    /// `POST /upload/image`: puts a file in ComfyUI's input folder (`subfolder/name`, replacing one there); ComfyUI's
    /// status.
    func uploadInput(_ bytes: [UInt8], name: String, subfolder: String, contentType: String) async throws -> Int {
        let boundary = "comfygate-" + UUID().uuidString.lowercased()
        var body: [UInt8] = []
        func field(_ name: String, _ value: String) {
            body += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n\(value)\r\n".utf8)
        }
        field("type", "input")
        field("subfolder", subfolder)
        field("overwrite", "true")
        body += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"image\"; filename=\"\(name)\"\r\n".utf8)
        body += Array("Content-Type: \(contentType)\r\n\r\n".utf8)
        body += bytes
        body += Array("\r\n--\(boundary)--\r\n".utf8)
        let response = try await send(.post, "/upload/image", body: body, contentType: "multipart/form-data; boundary=" + boundary)
        _ = try await UpstreamProxy.collect(response, limit: UpstreamProxy.maxJSONAnswer)
        return response.status.code
    }

    /// Stops a prompt wherever it is: taken out of ComfyUI's queue if it waits there, interrupted if it runs.
    func cancel(promptID: String) async throws {
        let ids = PolicyJSON.array([.string(promptID)])
        for (path, body) in [
            ("/queue", PolicyJSON.object([.init(key: "delete", value: ids)])),
            ("/interrupt", PolicyJSON.object([.init(key: "prompt_id", value: .string(promptID))])),
        ] {
            let response = try await send(.post, path, body: body.serialized())
            _ = try await UpstreamProxy.collect(response, limit: UpstreamProxy.maxJSONAnswer)
        }
    }

    /// `GET /view` of a file in ComfyUI's input folder; ComfyUI's answer still streaming.
    func viewInput(_ file: JobOutput) async throws -> Response {
        try await view(file, type: "input", range: nil)
    }

    /// `GET /view` of a file of a job's, with the client's `Range` passed on; ComfyUI's answer still streaming.
    func view(_ output: JobOutput, range: String?) async throws -> Response {
        try await view(output, type: output.fileType.rawValue, range: range)
    }

    private func view(_ output: JobOutput, type: String, range: String?) async throws -> Response {
        var query = URLComponents()
        query.queryItems = [
            URLQueryItem(name: "filename", value: output.fileName), URLQueryItem(name: "subfolder", value: output.subfolder),
            URLQueryItem(name: "type", value: type),
        ]
        var headers: HTTPFields = [.userAgent: userAgent]
        if let range { headers[.range] = range }
        return try await transport.send(UpstreamRequest(
            method: .get, pathAndQuery: "/view?" + (query.percentEncodedQuery ?? ""), headers: headers, body: nil, contentLength: nil))
    }

    private func json(_ path: String) async throws -> PolicyJSON {
        let response = try await send(.get, path, body: nil)
        let bytes = try await UpstreamProxy.collect(response, limit: UpstreamProxy.maxJSONAnswer)
        guard response.status == .ok else { throw UnexpectedAnswer(description: "\(path) answered \(response.status.code)") }
        do {
            return try PolicyJSON(parsing: bytes)
        } catch {
            throw UnexpectedAnswer(description: "\(path) answered with malformed JSON")
        }
    }

    private func send(_ method: HTTPRequest.Method, _ path: String, body: [UInt8]?, contentType: String = "application/json")
        async throws -> Response
    {
        var headers: HTTPFields = [.accept: "application/json", .userAgent: userAgent]
        if body != nil { headers[.contentType] = contentType }
        return try await transport.send(UpstreamRequest(
            method: method, pathAndQuery: path, headers: headers,
            body: body.map { RequestBody(buffer: ByteBuffer(bytes: $0)) }, contentLength: body?.count
        ))
    }
}

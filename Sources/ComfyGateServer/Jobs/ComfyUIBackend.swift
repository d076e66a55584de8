import ComfyGatePolicy
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The calls the job queue makes to one ComfyUI, over the gateway's own transport.
struct ComfyUIBackend: Sendable {
    let transport: any UpstreamTransport
    /// How jobs name it (`Job.backend`): the upstream URL.
    let name: String

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

    /// The ids of the prompts in ComfyUI's queue, running or waiting.
    func queuedPromptIDs() async throws -> Set<String> {
        let queue = try await json("/queue")
        var ids: Set<String> = []
        for list in ["queue_running", "queue_pending"] {
            for item in queue[list]?.arrayValue ?? [] {
                if let id = item.arrayValue?.dropFirst().first?.stringValue { ids.insert(id) }
            }
        }
        return ids
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

    private func send(_ method: HTTPRequest.Method, _ path: String, body: [UInt8]?) async throws -> Response {
        var headers: HTTPFields = [.accept: "application/json", .userAgent: Self.userAgent]
        if body != nil { headers[.contentType] = "application/json" }
        return try await transport.send(UpstreamRequest(
            method: method, pathAndQuery: path, headers: headers,
            body: body.map { RequestBody(buffer: ByteBuffer(bytes: $0)) }, contentLength: body?.count
        ))
    }
}

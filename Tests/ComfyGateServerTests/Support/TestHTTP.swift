import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// A collected HTTP answer.
struct TestResponse: Sendable {
    let status: Int
    let headers: HTTPHeaders
    let body: ByteBuffer

    var text: String { String(buffer: body) }

    func json() throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any] else {
            throw TestHTTPError.notJSONObject(text)
        }
        return object
    }

    func header(_ name: String) -> String? { headers[name].first }
}

enum TestHTTPError: Error {
    case notJSONObject(String)
}

/// Requests over loopback with a client that never follows redirects.
enum TestHTTP {
    static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow, timeout: .init(connect: .seconds(30), read: .seconds(60)))
        configuration.decompression = .disabled
        // Many suites run at once on a small machine: allow enough connections that none waits for the pool.
        configuration.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: 64)
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    static func send(
        _ method: HTTPMethod = .GET,
        _ url: String,
        headers: [(String, String)] = [],
        body: String? = nil
    ) async throws -> TestResponse {
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await client.execute(request, timeout: .seconds(60))
        let collected = try await response.body.collect(upTo: 16 << 20)
        return TestResponse(status: Int(response.status.code), headers: response.headers, body: collected)
    }
}

import AsyncHTTPClient
import ComfyGateTestSupport
import ComfyUIClient
import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import Synchronization
import WSClient

struct HTTPResult {
    let status: Int
    let headers: [(String, String)]
    let body: [UInt8]

    var text: String { String(decoding: body, as: UTF8.self) }
    func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
    func json() throws -> StandInJSON { try StandInJSON.parse(body) }
}

/// One HTTP client per test, never following redirects.
func withHTTPClient<T: Sendable>(_ body: (HTTPClient) async throws -> T) async throws -> T {
    try await ComfyUIClient.withHTTPClient(connectTimeout: .seconds(5), body)
}

extension HTTPClient {
    func call(
        _ method: HTTPMethod = .GET, _ url: String, headers: [(String, String)] = [], body: [UInt8]? = nil
    ) async throws -> HTTPResult {
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let response = try await execute(request, timeout: .seconds(60))
        let bytes = try await response.body.collect(upTo: 256 * 1024 * 1024)
        return HTTPResult(
            status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) },
            body: Array(bytes.readableBytesView))
    }

    func call(_ url: String, headers: [(String, String)] = []) async throws -> HTTPResult {
        try await call(.GET, url, headers: headers, body: nil)
    }

    func post(_ url: String, json: String, headers: [(String, String)] = []) async throws -> HTTPResult {
        try await call(.POST, url, headers: [("Content-Type", "application/json")] + headers, body: Array(json.utf8))
    }
}

/// Collects websocket messages from inside a client handler.
final class MessageLog: Sendable {
    private let items = Mutex<[WebSocketMessage]>([])
    func append(_ m: WebSocketMessage) { items.withLock { $0.append(m) } }
    var all: [WebSocketMessage] { items.withLock { $0 } }
    var texts: [StandInJSON] {
        all.compactMap { if case .text(let t) = $0 { return try? StandInJSON.parse(t) } else { return nil } }
    }
}

let quietLogger: Logger = {
    var logger = Logger(label: "standin-tests")
    logger.logLevel = .critical
    return logger
}()

/// Runs `body` with a time limit.
func withTimeout<T: Sendable>(_ seconds: Int, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            throw TimeoutError()
        }
        let result = try await group.next()!
        group.cancelAll()
        return result
    }
}

struct TimeoutError: Error {}

func bigEndianUInt32(_ bytes: ArraySlice<UInt8>) -> UInt32 {
    bytes.prefix(4).reduce(0) { $0 << 8 | UInt32($1) }
}

/// PNG chunks (type, data, crcValid).
func pngChunks(_ png: [UInt8]) -> [(String, [UInt8], Bool)]? {
    guard png.count >= 8, Array(png[0..<8]) == StandInPNG.signature else { return nil }
    var chunks: [(String, [UInt8], Bool)] = []
    var i = 8
    while i + 12 <= png.count {
        let length = Int(bigEndianUInt32(png[i..<i + 4]))
        guard i + 12 + length <= png.count else { return nil }
        let typeAndData = Array(png[i + 4..<i + 8 + length])
        let crc = bigEndianUInt32(png[i + 8 + length..<i + 12 + length])
        chunks.append((String(decoding: typeAndData.prefix(4), as: UTF8.self), Array(typeAndData.dropFirst(4)), StandInPNG.crc32(typeAndData) == crc))
        i += 12 + length
    }
    return i == png.count ? chunks : nil
}

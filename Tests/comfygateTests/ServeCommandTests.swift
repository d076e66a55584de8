import AsyncHTTPClient
import ComfyGateTestSupport
import Foundation
import NIOCore
import NIOHTTP1
import Testing

@Suite(.serialized) struct ServeCommandTests {
    static let client = HTTPClient(
        eventLoopGroupProvider: .singleton,
        configuration: .init(redirectConfiguration: .disallow, timeout: .init(connect: .seconds(5), read: .seconds(60)))
    )

    /// The admin password and token printed on first start.
    static func credentials(in output: String) -> (password: String, token: String)? {
        let lines = output.split(separator: "\n")
        guard let password = lines.first(where: { $0.contains("password:") })?.split(separator: " ").last,
            let token = lines.first(where: { $0.contains("API token:") })?.split(separator: " ").last
        else { return nil }
        return (String(password), String(token))
    }

    @Test func firstStartPrintsAdminCredentialsOnceAndTheyWork() async throws {
        let directory = try AccountCommandTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try await withComfyUIStandIn { standIn in
            let arguments = ["--data", directory.path, "--upstream", standIn.baseURL]
            try await ServeProcess.running(arguments) { first in
                let (password, token) = try #require(Self.credentials(in: first.standardOutput), "\(first.standardOutput)")
                #expect(token.hasPrefix("cgt_"))
                #expect(!first.standardError.contains(token), "credentials are never logged")
                #expect(!first.standardError.contains(password))

                var request = HTTPClientRequest(url: "http://127.0.0.1:\(first.port)/system_stats")
                request.headers.add(name: "Authorization", value: "Bearer \(token)")
                #expect(try await Self.client.execute(request, timeout: .seconds(60)).status.code == 200)
                var login = HTTPClientRequest(url: "http://127.0.0.1:\(first.port)/login")
                login.method = .POST
                login.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
                login.body = .bytes(ByteBuffer(string: "username=admin&password=\(password)"))
                #expect(try await Self.client.execute(login, timeout: .seconds(60)).status.code == 303)
                #expect(await first.stop() == 0, "SIGTERM stops the gateway gracefully")
            }

            try await ServeProcess.running(arguments) { second in
                #expect(Self.credentials(in: second.standardOutput) == nil, "never printed again")
                #expect(await second.stop() == 0)
            }
        }
    }

    /// Streams 1 GiB down and 100 MB up through a `serve` process and checks its peak memory stays flat.
    @Test func largeBodiesStreamWithFlatMemory() async throws {
        let directory = try AccountCommandTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var options = ComfyUIStandIn.Options()
        let gibibyte = 1 << 30
        options.virtualFiles = ["big.bin": gibibyte]
        try await withComfyUIStandIn(options) { standIn in
            try await ServeProcess.running(["--data", directory.path, "--upstream", standIn.baseURL]) { gate in
                let (_, token) = try #require(Self.credentials(in: gate.standardOutput))

                // Warm up, then take the baseline.
                for _ in 0..<20 {
                    var warm = HTTPClientRequest(url: "http://127.0.0.1:\(gate.port)/system_stats")
                    warm.headers.add(name: "Authorization", value: "Bearer \(token)")
                    _ = try await Self.client.execute(warm, timeout: .seconds(60)).body.collect(upTo: 1 << 20)
                }
                let baseline = try gate.residentBytes()

                var download = HTTPClientRequest(url: "http://127.0.0.1:\(gate.port)/view?filename=big.bin&type=output")
                download.headers.add(name: "Authorization", value: "Bearer \(token)")
                let response = try await Self.client.execute(download, timeout: .seconds(300))
                #expect(response.status.code == 200)
                #expect(response.headers["Content-Length"].first == String(gibibyte))
                var received = 0
                var mismatches = 0
                for try await chunk in response.body {
                    // Check a few bytes of every chunk against the stand-in's pattern.
                    for offset in [0, chunk.readableBytes / 2, chunk.readableBytes - 1] where offset >= 0 && offset < chunk.readableBytes {
                        if chunk.getInteger(at: chunk.readerIndex + offset, as: UInt8.self) != StandInVirtualFile.byte(at: received + offset) {
                            mismatches += 1
                        }
                    }
                    received += chunk.readableBytes
                }
                #expect(received == gibibyte)
                #expect(mismatches == 0)
                let afterDownload = try gate.peakResidentBytes()

                let size = 100_000_000
                let boundary = "----comfygate-test-boundary"
                let head = "--\(boundary)\r\nContent-Disposition: form-data; name=\"image\"; filename=\"upload.bin\"\r\n"
                    + "Content-Type: application/octet-stream\r\n\r\n"
                let tail = "\r\n--\(boundary)\r\nContent-Disposition: form-data; name=\"overwrite\"\r\n\r\ntrue\r\n--\(boundary)--\r\n"
                var upload = HTTPClientRequest(url: "http://127.0.0.1:\(gate.port)/upload/image")
                upload.method = .POST
                upload.headers.add(name: "Authorization", value: "Bearer \(token)")
                upload.headers.add(name: "Content-Type", value: "multipart/form-data; boundary=\(boundary)")
                upload.body = .stream(
                    UploadChunks(head: head, size: size, tail: tail),
                    length: .known(Int64(head.utf8.count + size + tail.utf8.count))
                )
                let uploaded = try await Self.client.execute(upload, timeout: .seconds(300))
                let answer = String(buffer: try await uploaded.body.collect(upTo: 1 << 16))
                #expect(uploaded.status.code == 200, "\(answer)")
                #expect(answer.contains("upload.bin"))
                #expect(standIn.fileContents(name: "upload.bin", type: .input)?.count == size)
                let afterUpload = try gate.peakResidentBytes()

                let growth = max(afterDownload, afterUpload) - baseline
                print("gateway memory: baseline \(baseline >> 20) MiB, peak after 1 GiB download \(afterDownload >> 20) MiB, after 100 MB upload \(afterUpload >> 20) MiB")
                #expect(growth < 64 << 20, "peak grew by \(growth >> 20) MiB while streaming")
            }
        }
    }
}

/// A 100 MB multipart body produced 64 KiB at a time.
struct UploadChunks: AsyncSequence, Sendable {
    let head: String
    let size: Int
    let tail: String

    struct AsyncIterator: AsyncIteratorProtocol {
        var stage = 0
        var remaining: Int
        let head: String
        let tail: String
        let chunk = ByteBuffer(repeating: 0x5A, count: 64 * 1024)

        mutating func next() async -> ByteBuffer? {
            switch stage {
            case 0:
                stage = 1
                return ByteBuffer(string: head)
            case 1 where remaining > 0:
                let count = Swift.min(remaining, chunk.readableBytes)
                remaining -= count
                return chunk.getSlice(at: 0, length: count)
            case 1:
                stage = 2
                return ByteBuffer(string: tail)
            default:
                return nil
            }
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(remaining: size, head: head, tail: tail) }
}

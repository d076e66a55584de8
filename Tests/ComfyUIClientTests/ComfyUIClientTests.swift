import AsyncHTTPClient
import ComfyGateTestSupport
import ComfyUIClient
import Foundation
import Testing

private let loginHash = "$2b$12$abcdefghijklmnopqrstuuQ8Vq1mQ0n9Wm6cF9ZQd0bK7xJm3nZbSXY"

private func loginOptions(hash: String? = loginHash) -> ComfyUIStandIn.Options {
    var options = ComfyUIStandIn.Options()
    options.login = .init(passwordHash: hash)
    return options
}

private func makeClient(_ standIn: ComfyUIStandIn, _ http: HTTPClient, _ credential: ComfyUIClient.Credential = .none) throws -> ComfyUIClient {
    try ComfyUIClient(baseURL: standIn.baseURL + "/", credential: credential, httpClient: http, timeout: .seconds(10))
}

private let redSquare: [String: JSONValue] = [
    "1": ["class_type": "EmptyImage", "inputs": ["width": 32, "height": 16, "batch_size": 1, "color": 16_711_680]],
    "2": ["class_type": "SaveImage", "inputs": ["images": ["1", 0], "filename_prefix": "client"]],
]

@Suite("ComfyUIClient against the stand-in", .timeLimit(.minutes(2)))
struct ComfyUIClientTests {
    @Test func rejectsBaseURLsThatAreNotAbsoluteHTTP() throws {
        try withSyncHTTPClient { http in
            for bad in ["ftp://x", "127.0.0.1:8188", "http://h/?token=x", ""] {
                #expect(throws: ComfyUIClientError.self) { try ComfyUIClient(baseURL: bad, httpClient: http) }
            }
        }
    }

    @Test func readsSystemStatsModelsAndObjectInfo() async throws {
        var options = ComfyUIStandIn.Options()
        options.devices = [.init(name: "cuda:0 Test GPU", type: "cuda", index: 0, vramTotal: 24_000, vramFree: 20_000)]
        try await withComfyUIStandIn(options) { standIn in
            try await withHTTPClient { http in
                let client = try makeClient(standIn, http)
                let stats = try await client.systemStats()
                #expect(stats.comfyUIVersion == "0.3.64")
                #expect(stats.pytorchVersion == "2.8.0+cpu")
                #expect(stats.devices == [.init(name: "cuda:0 Test GPU", type: "cuda", index: 0, vramTotal: 24_000, vramFree: 20_000)])
                #expect(stats.argv.contains("--listen"))
                #expect(try await client.modelFolders().contains("diffusion_models"))
                #expect(try await client.models(folder: "vae") == ["ae.safetensors"])
                #expect(try await client.models(folder: "no_such_folder") == nil)
                let unet = try #require(try await client.objectInfo(nodeClass: "UNETLoader"))
                #expect(unet.choices(of: "unet_name") == ["flux1-schnell-fp8.safetensors"])
                #expect(try await client.objectInfo(nodeClass: "NoSuchNode") == nil)
                let all = try await client.objectInfo()
                #expect(all["SaveImage"]?.isOutputNode == true)
                #expect(all["EmptyImage"]?.requiredInputs["width"] != nil)
            }
        }
    }

    @Test func runsAWorkflowFollowingTypedEvents() async throws {
        try await withComfyUIStandIn { standIn in
            try await withHTTPClient { http in
                let client = try makeClient(standIn, http)
                let clientID = "client-test-1"
                let (submission, events) = try await client.withEvents(clientID: clientID) { session in
                    var iterator = session.events.makeAsyncIterator()
                    var events = [try await iterator.next()].compactMap { $0 }
                    let submission = try await client.submit(prompt: redSquare, clientID: clientID)
                    while let event = try await iterator.next() {
                        events.append(event)
                        if case .executing(submission.promptID, nil) = event { break }
                    }
                    return (submission, events)
                }
                #expect(events.first == .status(queueRemaining: 0, sid: clientID))
                #expect(events.contains(.executionStart(promptID: submission.promptID)))
                #expect(events.contains(.executing(promptID: submission.promptID, node: "1")))
                #expect(events.contains(.executionSuccess(promptID: submission.promptID)))
                let executed = events.compactMap { event -> [ImageReference]? in
                    if case .executed(submission.promptID, "2", let images) = event { return images }
                    return nil
                }
                let image = try #require(executed.first?.first)
                #expect(image == ImageReference(filename: "client_00001_.png", subfolder: "", type: "output"))
                let history = try #require(try await client.history(promptID: submission.promptID))
                #expect(history.statusText == "success" && history.completed)
                #expect(history.images["2"] == [image])
                let png = try await client.view(image)
                #expect(Array(png.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
                #expect(png[16..<24].elementsEqual([0, 0, 0, 32, 0, 0, 0, 16]))
                #expect(try await client.history(promptID: "unknown") == nil)
            }
        }
    }

    @Test func reportsRejectedPromptsWithComfyUIsErrorType() async throws {
        try await withComfyUIStandIn { standIn in
            try await withHTTPClient { http in
                let client = try makeClient(standIn, http)
                let error = await #expect(throws: ComfyUIClientError.self) {
                    try await client.submit(prompt: ["1": ["class_type": "NoSuchNode", "inputs": [:]]], clientID: nil)
                }
                #expect(error?.isKind(of: .promptRejected(status: 0, "")) == true)
                #expect(error?.status == 400)
                #expect(error?.detail.hasPrefix("invalid_prompt: Cannot execute because node NoSuchNode does not exist.") == true)
                let missing = await #expect(throws: ComfyUIClientError.self) { try await client.view(filename: "nope.png") }
                #expect(missing?.status == 404)
            }
        }
    }

    @Test func uploadsAnImage() async throws {
        try await withComfyUIStandIn { standIn in
            try await withHTTPClient { http in
                let client = try makeClient(standIn, http)
                let reference = try await client.uploadImage([1, 2, 3, 4], filename: "probe.png")
                #expect(reference == ImageReference(filename: "probe.png", subfolder: "", type: "input"))
                #expect(standIn.fileContents(name: "probe.png", type: .input) == [1, 2, 3, 4])
                #expect(try await client.view(reference) == [1, 2, 3, 4])
            }
        }
    }

    @Test func speaksToComfyUILoginWithBearerOrQueryToken() async throws {
        try await withComfyUIStandIn(loginOptions()) { standIn in
            try await withHTTPClient { http in
                for credential: ComfyUIClient.Credential in [.bearer(loginHash), .queryToken(loginHash)] {
                    let client = try makeClient(standIn, http, credential)
                    #expect(try await client.systemStats().comfyUIVersion == "0.3.64")
                    let first = try await client.withEvents(clientID: "c") { session in
                        var iterator = session.events.makeAsyncIterator()
                        return try await iterator.next()
                    }
                    #expect(first == .status(queueRemaining: 0, sid: "c"))
                }
                let anonymous = try makeClient(standIn, http)
                let refused = await #expect(throws: ComfyUIClientError.self) { try await anonymous.systemStats() }
                #expect(refused?.status == 401)
                #expect(refused?.detail == #"{"error": "Authentication required."}"#)
                let upgrade = await #expect(throws: ComfyUIClientError.self) {
                    try await anonymous.withEvents(clientID: "c") { _ in 0 }
                }
                #expect(upgrade == .webSocketUpgradeFailed)
                #expect(!(standIn.recordedRequests.contains { ($0.query ?? "").contains(loginHash) && $0.headers.contains { $0.name.lowercased() == "authorization" } }))
            }
        }
    }

    @Test func decodesBinaryPreviewsAndFeatureFlags() async throws {
        try await withComfyUIStandIn { standIn in
            try await withHTTPClient { http in
                let client = try makeClient(standIn, http)
                let events = try await client.withEvents(clientID: "p") { session in
                    var iterator = session.events.makeAsyncIterator()
                    _ = try await iterator.next()
                    try await session.sendFeatureFlags(["supports_preview_metadata": true])
                    let flags = try await iterator.next()
                    standIn.sendPreview(size: 8, promptId: "x", nodeId: "3", to: "p")
                    standIn.broadcastBinary(eventType: 3, payload: [0, 0, 0, 1] + Array("7hello".utf8), to: "p")
                    standIn.broadcast(text: #"{"type": "custom_thing", "data": {"a": 1}}"#, to: "p")
                    return [flags, try await iterator.next(), try await iterator.next(), try await iterator.next()]
                }
                #expect(events[0] == .featureFlags(["supports_preview_metadata": true, "max_upload_size": 104_857_600]))
                guard case .preview(let mime, let image, let metadata)? = events[1] else {
                    Issue.record("expected a preview, got \(String(describing: events[1]))")
                    return
                }
                #expect(mime == "image/png" && image == ComfyUIStandIn.previewImage(size: 8))
                #expect(metadata["prompt_id"] == "x" && metadata["node_id"] == "3")
                #expect(events[2] == .progressText(node: "7", text: "hello"))
                #expect(events[3] == .other(type: "custom_thing", data: ["a": 1]))
            }
        }
    }
}

/// A client for synchronous tests that only construct values.
private func withSyncHTTPClient(_ body: (HTTPClient) throws -> Void) throws {
    let http = HTTPClient(eventLoopGroupProvider: .singleton)
    defer { try? http.syncShutdown() }
    try body(http)
}

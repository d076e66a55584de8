import AsyncHTTPClient
import ComfyGateTestSupport
import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOWebSocket
import Synchronization
import Testing
import WSClient

private func workflow(color: Int = 0xFF0000, prefix: String = "gate", clientId: String? = nil) -> String {
    let client = clientId.map { "\"client_id\": \"\($0)\", " } ?? ""
    return """
        {\(client)"prompt": {"1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 48, "batch_size": 1, "color": \(color)}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "\(prefix)"}}}}
        """
}

/// Opens `/ws?clientId=…`, posts `promptBody` after the first status message, collects until `executing {node: null}`.
private func runWorkflow(_ standIn: ComfyUIStandIn, _ client: HTTPClient, clientId: String, promptBody: String) async throws
    -> (response: HTTPResult, messages: [StandInJSON])
{
    let log = MessageLog()
    let responseBox = Mutex<HTTPResult?>(nil)
    try await WebSocketClient.connect(url: "\(standIn.webSocketBaseURL)/ws?clientId=\(clientId)", logger: quietLogger) {
        inbound, outbound, _ in
        var iterator = inbound.messages(maxSize: 1 << 24).makeAsyncIterator()
        while let message = try await iterator.next() {
            log.append(message)
            if log.all.count == 1 {
                let response = try await client.post("\(standIn.baseURL)/prompt", json: promptBody)
                responseBox.withLock { $0 = response }
            }
            if case .text(let text) = message, let json = try? StandInJSON.parse(text), json["type"] == "executing",
                json["data"]?["node"] == .null
            {
                try await outbound.close(.normalClosure, reason: nil)
                break
            }
        }
    }
    return (responseBox.withLock { $0 }!, log.texts)
}

@Suite("ComfyUI stand-in", .timeLimit(.minutes(2)))
struct ComfyUIStandInTests {
    @Test func routesAnswerWithDocumentedShapes() async throws {
        var options = ComfyUIStandIn.Options()
        options.comfyUIVersion = "9.9.9"
        options.devices = [.init(name: "cuda:0 Test GPU", type: "cuda", index: 0, vramTotal: 1000, vramFree: 400)]
        try await withComfyUIStandIn(options) { standIn in
            try await withHTTPClient { client in
                let base = standIn.baseURL
                for prefix in ["", "/api"] {
                    let stats = try await client.call("\(base)\(prefix)/system_stats")
                    #expect(stats.status == 200)
                    #expect(stats.header("Content-Type") == "application/json; charset=utf-8")
                    let json = try stats.json()
                    #expect(json["system"]?["comfyui_version"] == "9.9.9")
                    #expect(json["system"]?["embedded_python"] == false)
                    #expect(json["devices"]?.arrayValue?.first?["vram_total"] == 1000)
                    #expect(json["devices"]?.arrayValue?.first?["vram_free"] == 400)
                    #expect(stats.text.contains("\"comfyui_version\": \"9.9.9\""))  // Python json.dumps separators

                    #expect(try await client.call("\(base)\(prefix)/features").json() == ["supports_preview_metadata": true, "max_upload_size": 104_857_600])
                    #expect(try await client.call("\(base)\(prefix)/prompt").json() == ["exec_info": ["queue_remaining": 0]])
                    #expect(try await client.call("\(base)\(prefix)/queue").json() == ["queue_running": [], "queue_pending": []])
                    #expect(try await client.call("\(base)\(prefix)/history").json() == [:])
                    #expect(try await client.call("\(base)\(prefix)/history/doesnotexist").json() == [:])
                    #expect(try await client.call("\(base)\(prefix)/embeddings").json() == [])
                    #expect(try await client.call("\(base)\(prefix)/users").json() == ["storage": "server", "migrated": true])
                    #expect(try await client.call("\(base)\(prefix)/settings").json() == [:])
                    let models = try await client.call("\(base)\(prefix)/models").json()
                    #expect(models.arrayValue?.contains("checkpoints") == true)
                    #expect(try await client.call("\(base)\(prefix)/models/checkpoints").json() == ["sd_xl_base_1.0.safetensors"])
                    let unknownFolder = try await client.call("\(base)\(prefix)/models/nope")
                    #expect(unknownFolder.status == 404 && unknownFolder.body.isEmpty)
                    #expect(try await client.call("\(base)\(prefix)/extensions").json().arrayValue?.isEmpty == false)
                    #expect(try await client.call("\(base)\(prefix)/i18n").json() == [:])
                    #expect(try await client.call("\(base)\(prefix)/workflow_templates").json() == [:])
                    let modelFolders = try await client.call("\(base)\(prefix)/experiment/models").json().arrayValue ?? []
                    #expect(modelFolders.contains { $0["name"] == "checkpoints" } && !modelFolders.contains { $0["name"] == "configs" })
                    let diffusionFolders = modelFolders.first { $0["name"] == "diffusion_models" }?["folders"]?.arrayValue?.compactMap(\.stringValue) ?? []
                    #expect(diffusionFolders.allSatisfy { $0.hasPrefix("/") })
                    #expect(diffusionFolders.map { $0.split(separator: "/").suffix(2).joined(separator: "/") } == ["models/unet", "models/diffusion_models"])

                    let root = try await client.call("\(base)\(prefix)/")
                    #expect(root.status == 200)
                    #expect(root.header("Content-Type")?.hasPrefix("text/html") == true)
                    #expect(root.header("Cache-Control") == "no-cache" && root.header("Pragma") == "no-cache" && root.header("Expires") == "0")

                    let info = try await client.call("\(base)\(prefix)/object_info/EmptyImage").json()
                    #expect(info["EmptyImage"]?["input"]?["required"]?["width"] == ["INT", ["default": 512, "min": 1, "max": 16384, "step": 1]])
                    #expect(info["EmptyImage"]?["output"] == ["IMAGE"])
                    #expect(try await client.call("\(base)\(prefix)/object_info/NoSuchNode").json() == [:])
                    let unet = try await client.call("\(base)\(prefix)/object_info/UNETLoader").json()
                    #expect(unet["UNETLoader"]?["input"]?["required"]?["unet_name"]?.arrayValue?.first == ["flux1-schnell-fp8.safetensors"])
                    let all = try await client.call("\(base)\(prefix)/object_info").json()
                    for name in ["EmptyImage", "SaveImage", "PreviewImage", "LoadImage", "CheckpointLoaderSimple", "CLIPLoader", "VAELoader"] {
                        #expect(all[name]?["name"] == .string(name))
                    }
                    #expect(all["SaveImage"]?["output_node"] == true)

                    let interrupt = try await client.call(.POST, "\(base)\(prefix)/interrupt")
                    #expect(interrupt.status == 200 && interrupt.body.isEmpty)
                    let free = try await client.post("\(base)\(prefix)/free", json: #"{"unload_models": true}"#)
                    #expect(free.status == 200 && free.body.isEmpty)
                    #expect(try await client.post("\(base)\(prefix)/queue", json: #"{"clear": true}"#).status == 200)
                    #expect(try await client.post("\(base)\(prefix)/history", json: #"{"clear": true}"#).status == 200)
                }
                let unknown = try await client.call("\(base)/no/such/route")
                #expect(unknown.status == 404)
                #expect(unknown.text == "404: Not Found")
                #expect(unknown.header("Content-Type") == "text/plain; charset=utf-8")
                let wrongMethod = try await client.call(.DELETE, "\(base)/system_stats")
                #expect(wrongMethod.status == 405 && wrongMethod.text == "405: Method Not Allowed")
                let plainWS = try await client.call("\(base)/ws")
                #expect(plainWS.status == 400)
                #expect(standIn.freeRequests.count == 2)
                let recorded = standIn.recordedRequests
                #expect(recorded.first?.path == "/system_stats" && recorded.first?.method == "GET")
                #expect(recorded.contains { $0.path == "/api/free" && $0.bodyByteCount == 23 && $0.status == 200 })
            }
        }
    }

    @Test func promptValidationErrorsMatchTheLiveServer() async throws {
        try await withComfyUIStandIn { standIn in
            try await withHTTPClient { client in
                let url = "\(standIn.baseURL)/prompt"
                let notJSON = try await client.post(url, json: "{not json")
                #expect(notJSON.status == 500)
                #expect(notJSON.header("Content-Type")?.hasPrefix("text/plain") == true)
                #expect(notJSON.text.contains("Server got itself in trouble"))

                let noPrompt = try await client.post(url, json: #"{"client_id": "x"}"#)
                #expect(noPrompt.status == 400)
                #expect(try noPrompt.json()["error"]?["type"] == "no_prompt")
                #expect(try noPrompt.json()["node_errors"] == [:])

                let unknown = try await client.post(url, json: #"{"prompt": {"1": {"class_type": "NoSuchNode", "inputs": {}}}}"#)
                #expect(unknown.status == 400)
                #expect(try unknown.json()["error"]?["type"] == "invalid_prompt")
                #expect(try unknown.json()["error"]?["message"] == "Cannot execute because node NoSuchNode does not exist.")

                let missing = try await client.post(
                    url, json: #"{"prompt": {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1}}, "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}}"#)
                #expect(missing.status == 400)
                let missingJSON = try missing.json()
                #expect(missingJSON["error"]?["type"] == "prompt_outputs_failed_validation")
                #expect(missingJSON["node_errors"]?["1"]?["errors"]?.arrayValue?.first?["type"] == "required_input_missing")
                #expect(missingJSON["node_errors"]?["1"]?["dependent_outputs"] == ["2"])
                #expect(missingJSON["node_errors"]?["1"]?["class_type"] == "EmptyImage")

                let noOutputs = try await client.post(
                    url, json: #"{"prompt": {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}}}}"#)
                #expect(noOutputs.status == 400)
                #expect(try noOutputs.json()["error"]?["type"] == "prompt_no_outputs")

                let ok = try await client.post(url, json: workflow())
                #expect(ok.status == 200)
                let okJSON = try ok.json()
                #expect(okJSON["prompt_id"]?.stringValue?.count == 36)
                #expect(okJSON["node_errors"] == [:])
                // the counter also advances for rejected prompts, as in ComfyUI
                #expect(okJSON["number"] == 4)
            }
        }
    }

    @Test func viewGuardsAnswerInOrder() async throws {
        try await withComfyUIStandIn { standIn in
            try standIn.addFile(Array("hello".utf8), name: "note.txt", type: .output)
            try await withHTTPClient { client in
                let base = "\(standIn.baseURL)/view"
                let cases: [(String, Int)] = [
                    ("", 404),
                    ("?filename=", 400),
                    ("?filename=../../etc/passwd", 400),
                    ("?filename=/etc/passwd", 400),
                    ("?filename=note.txt&type=bogus", 400),
                    ("?filename=passwd&subfolder=../../../../etc", 403),
                    ("?filename=nope.png&type=output", 404),
                ]
                for (query, status) in cases {
                    let result = try await client.call(base + query)
                    #expect(result.status == status, "\(query)")
                    #expect(result.body.isEmpty, "\(query)")
                }
                let found = try await client.call(base + "?filename=note.txt&subfolder=&type=output")
                #expect(found.status == 200 && found.text == "hello")
                #expect(found.header("Content-Type") == "text/plain")
                #expect(found.header("Content-Disposition") == "filename=\"note.txt\"")
                let annotated = try await client.call(base + "?filename=note.txt%20%5Boutput%5D&type=input")
                #expect(annotated.text == "hello")
            }
        }
    }

    @Test func originOnlyMiddlewareMatchesObservedBehaviour() async throws {
        try await withComfyUIStandIn { standIn in
            try await withHTTPClient { client in
                let url = "\(standIn.baseURL)/prompt"
                let port = standIn.port
                func status(_ headers: [(String, String)], _ method: HTTPMethod = .GET) async throws -> HTTPResult {
                    try await client.call(method, url, headers: headers)
                }
                let evil = try await client.post(url, json: workflow(), headers: [("Host", "127.0.0.1:\(port)"), ("Origin", "http://evil.example")])
                #expect(evil.status == 403 && evil.body.isEmpty)
                #expect(try await status([("Host", "127.0.0.1:\(port)"), ("Origin", "http://127.0.0.1:\(port)")]).status == 200)
                #expect(try await status([("Host", "127.0.0.1:8188"), ("Origin", "http://127.0.0.1:9000")]).status == 403)
                #expect(try await status([("Host", "127.0.0.1:8188"), ("Origin", "http://localhost:8188")]).status == 403)
                #expect(try await status([("Host", "localhost:9000"), ("Origin", "http://localhost:9000")]).status == 200)
                #expect(try await status([("Host", "localhost:9000"), ("Origin", "http://evil.example:9000")]).status == 403)
                // Origin without port: only hostnames compared
                #expect(try await status([("Host", "127.0.0.1:8188"), ("Origin", "http://127.0.0.1")]).status == 200)
                // non-loopback Host is never checked
                #expect(try await status([("Host", "10.1.2.3:9000"), ("Origin", "http://evil.example")]).status == 200)
                let crossSite = try await status([("Sec-Fetch-Site", "cross-site")])
                #expect(crossSite.status == 403 && crossSite.body.isEmpty)
                #expect(try await status([("Sec-Fetch-Site", "same-origin")]).status == 200)
                let options = try await status([], .OPTIONS)
                #expect(options.status == 200 && options.body.isEmpty)
                // the origin check runs before the OPTIONS shortcut
                #expect(try await status([("Origin", "http://evil.example")], .OPTIONS).status == 403)
                #expect(standIn.recordedRequests.contains { $0.status == 403 && $0.headerValues("Origin") == ["http://evil.example"] })
            }
        }
        var cors = ComfyUIStandIn.Options()
        cors.corsOrigin = "*"
        try await withComfyUIStandIn(cors) { standIn in
            try await withHTTPClient { client in
                let result = try await client.call(
                    "\(standIn.baseURL)/prompt", headers: [("Host", "127.0.0.1:\(standIn.port)"), ("Origin", "http://evil.example")])
                #expect(result.status == 200)
                #expect(result.header("Access-Control-Allow-Origin") == "*")
                #expect(result.header("Access-Control-Allow-Methods") == "POST, GET, DELETE, PUT, OPTIONS")
                let preflight = try await client.call(.OPTIONS, "\(standIn.baseURL)/prompt")
                #expect(preflight.status == 200 && preflight.body.isEmpty)
                #expect(preflight.header("Access-Control-Allow-Credentials") == "true")
            }
        }
    }

    @Test func workflowRunsEndToEndOverTheWebSocket() async throws {
        try await withComfyUIStandIn { standIn in
            try await withHTTPClient { client in
                let clientId = UUID().uuidString.lowercased()
                let (response, messages) = try await runWorkflow(
                    standIn, client, clientId: clientId, promptBody: workflow(clientId: clientId))
                #expect(response.status == 200)
                let promptId = try #require(try response.json()["prompt_id"]?.stringValue)
                let types = messages.compactMap { $0["type"]?.stringValue }
                #expect(
                    types == [
                        "status", "status", "status", "execution_start", "execution_cached", "progress_state", "executing",
                        "progress_state", "progress_state", "executing", "executed", "progress_state", "execution_success", "status",
                        "executing",
                    ])
                #expect(messages.first?["data"]?["sid"] == .string(clientId))
                #expect(messages[4]["data"]?["nodes"] == [])
                #expect(messages[6]["data"]?["node"] == "1")
                #expect(messages[9]["data"]?["node"] == "2")
                let image: StandInJSON = ["filename": "gate_00001_.png", "subfolder": "", "type": "output"]
                #expect(messages[10]["data"]?["output"] == ["images": [image]])
                #expect(messages[13]["data"]?["status"]?["exec_info"]?["queue_remaining"] == 0)
                #expect(messages[14]["data"] == ["node": nil, "prompt_id": .string(promptId)])

                let history = try await client.call("\(standIn.baseURL)/history/\(promptId)").json()
                let entry = try #require(history[promptId])
                #expect(entry["outputs"]?["2"]?["images"]?.arrayValue?.first == image)
                #expect(entry["status"]?["status_str"] == "success")
                #expect(entry["status"]?["completed"] == true)
                #expect(entry["prompt"]?.arrayValue?[1] == .string(promptId))
                #expect(entry["prompt"]?.arrayValue?[3]["client_id"] == .string(clientId))
                #expect(entry["status"]?["messages"]?.arrayValue?.map { $0.arrayValue?.first } == ["execution_start", "execution_cached", "execution_success"])

                let png = try await client.call("\(standIn.baseURL)/view?filename=gate_00001_.png&subfolder=&type=output")
                #expect(png.status == 200)
                #expect(png.header("Content-Type") == "image/png")
                let chunks = try #require(pngChunks(png.body))
                #expect(chunks.allSatisfy { $0.2 })
                #expect(chunks.first?.0 == "IHDR" && chunks.last?.0 == "IEND")
                let ihdr = chunks[0].1
                #expect(bigEndianUInt32(ihdr[0..<4]) == 64 && bigEndianUInt32(ihdr[4..<8]) == 48)
                // stored deflate: first pixel row starts after zlib header (2), block header (5) and filter byte (1)
                let idat = try #require(chunks.first { $0.0 == "IDAT" }?.1)
                #expect(Array(idat[8..<11]) == [0xFF, 0x00, 0x00])

                // identical resubmission is fully cached: no new file
                let (_, again) = try await runWorkflow(standIn, client, clientId: clientId, promptBody: workflow(clientId: clientId))
                let cached = again.first { $0["type"] == "execution_cached" }
                #expect(cached?["data"]?["nodes"] == ["1", "2"])
                #expect(!again.contains { $0["type"] == "executing" && $0["data"]?["node"] != .null })
                #expect(standIn.files(in: .output).filter { $0.hasPrefix("gate_") } == ["gate_00001_.png"])

                // a changed colour runs again and counts up
                let (_, third) = try await runWorkflow(
                    standIn, client, clientId: clientId, promptBody: workflow(color: 0x00FF00, clientId: clientId))
                #expect(third.contains { $0["type"] == "executed" && $0["data"]?["output"]?["images"]?.arrayValue?.first?["filename"] == "gate_00002_.png" })
                let green = try #require(standIn.fileContents(name: "gate_00002_.png"))
                let greenIDAT = try #require(pngChunks(green)?.first { $0.0 == "IDAT" }?.1)
                #expect(Array(greenIDAT[8..<11]) == [0x00, 0xFF, 0x00])
                #expect(try await client.call("\(standIn.baseURL)/history").json().objectValue?.count == 3)
            }
        }
    }

    @Test func virtualLargeFileIsStreamed() async throws {
        var options = ComfyUIStandIn.Options()
        let size = 64 * 1024 * 1024 + 7
        options.virtualFiles = ["big.bin": size]
        try await withComfyUIStandIn(options) { standIn in
            try await withHTTPClient { client in
                var request = HTTPClientRequest(url: "\(standIn.baseURL)/view?filename=big.bin&type=output")
                request.method = .GET
                let response = try await client.execute(request, timeout: .seconds(60))
                #expect(response.status.code == 200)
                #expect(response.headers.first(name: "Content-Length") == String(size))
                #expect(response.headers.first(name: "Content-Type") == "application/octet-stream")
                var offset = 0
                var mismatches = 0
                for try await chunk in response.body {
                    let bytes = Array(chunk.readableBytesView)
                    // sample a few bytes of every chunk
                    for i in [0, bytes.count / 2, bytes.count - 1] where !bytes.isEmpty {
                        if bytes[i] != StandInVirtualFile.byte(at: offset + i) { mismatches += 1 }
                    }
                    offset += bytes.count
                }
                #expect(offset == size)
                #expect(mismatches == 0)

                let ranged = try await client.call(
                    "\(standIn.baseURL)/view?filename=big.bin", headers: [("Range", "bytes=1000000-1000099")])
                #expect(ranged.status == 206)
                #expect(ranged.body == StandInVirtualFile.bytes(offset: 1_000_000, count: 100))
                #expect(ranged.header("Content-Range") == "bytes 1000000-1000099/\(size)")
            }
        }
    }

    @Test func multipartUploadRoundTrip() async throws {
        var options = ComfyUIStandIn.Options()
        options.maxUploadSize = 1024 * 1024
        try await withComfyUIStandIn(options) { standIn in
            try await withHTTPClient { client in
                func upload(_ content: [UInt8], name: String, fields: [(String, String)] = []) async throws -> HTTPResult {
                    let boundary = "----standin\(UUID().uuidString)"
                    var body: [UInt8] = []
                    for (k, v) in fields {
                        body += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(k)\"\r\n\r\n\(v)\r\n".utf8)
                    }
                    body += Array(
                        "--\(boundary)\r\nContent-Disposition: form-data; name=\"image\"; filename=\"\(name)\"\r\nContent-Type: image/png\r\n\r\n".utf8)
                    body += content
                    body += Array("\r\n--\(boundary)--\r\n".utf8)
                    return try await client.call(
                        .POST, "\(standIn.baseURL)/api/upload/image",
                        headers: [("Content-Type", "multipart/form-data; boundary=\(boundary)")], body: body)
                }
                // content containing CR LF and dashes must survive the boundary scanning
                let content = Array(repeating: Array("\r\n--x\r\n".utf8), count: 20_000).flatMap { $0 }
                let first = try await upload(content, name: "cat.png")
                #expect(first.status == 200)
                #expect(try first.json() == ["name": "cat.png", "subfolder": "", "type": "input"])
                let same = try await upload(content, name: "cat.png")
                #expect(try same.json()["name"] == "cat.png")
                let different = try await upload(Array("other".utf8), name: "cat.png")
                #expect(try different.json()["name"] == "cat (1).png")
                let overwritten = try await upload(Array("new".utf8), name: "cat.png", fields: [("overwrite", "true")])
                #expect(try overwritten.json()["name"] == "cat.png")
                let sub = try await upload(Array("s".utf8), name: "a.png", fields: [("subfolder", "pets"), ("type", "temp")])
                #expect(try sub.json() == ["name": "a.png", "subfolder": "pets", "type": "temp"])

                let view = try await client.call("\(standIn.baseURL)/view?filename=cat%20(1).png&type=input")
                #expect(view.body == Array("other".utf8))
                #expect(standIn.fileContents(name: "cat.png", type: .input) == Array("new".utf8))
                #expect(standIn.fileContents(name: "a.png", subfolder: "pets", type: .temp) == Array("s".utf8))
                #expect(try await upload([1], name: "x.png", fields: [("type", "bogus")]).status == 500)

                let tooBig = try await upload([UInt8](repeating: 7, count: 1024 * 1024 + 1), name: "huge.png")
                #expect(tooBig.status == 413)
                #expect(tooBig.text.hasPrefix("Maximum request body size 1048576 exceeded"))
                #expect(standIn.fileContents(name: "huge.png", type: .input) == nil)
                #expect(standIn.recordedRequests.last?.bodyByteCount ?? 0 > 1024 * 1024)
            }
        }
    }

    @Test func webSocketHandshakeFeatureFlagsAndRecording() async throws {
        try await withComfyUIStandIn { standIn in
            let log = MessageLog()
            var configuration = WebSocketClientConfiguration()
            configuration.additionalHeaders = [.init("X-Test")!: "yes"]
            configuration.maxFrameSize = 1 << 24
            try await WebSocketClient.connect(url: "\(standIn.webSocketBaseURL)/api/ws", configuration: configuration, logger: quietLogger) {
                inbound, outbound, _ in
                var iterator = inbound.messages(maxSize: 1 << 24).makeAsyncIterator()
                if let first = try await iterator.next() { log.append(first) }
                try await outbound.write(.text(#"{"type": "feature_flags", "data": {"supports_preview_metadata": true}}"#))
                if let reply = try await iterator.next() { log.append(reply) }
                try await outbound.write(.text("hello"))
                try await outbound.write(.binary(ByteBuffer(bytes: [UInt8](repeating: 9, count: 100_000))))
                try await outbound.write(.text(#"{"type": "feature_flags", "data": {}}"#))
                _ = try await eventually { standIn.recordedWebSockets.first?.receivedFrames.count == 4 }
                try await outbound.close(.normalClosure, reason: nil)
            }
            let texts = log.texts
            let sid = try #require(texts.first?["data"]?["sid"]?.stringValue)
            #expect(sid.count == 32 && sid.allSatisfy(\.isHexDigit))
            #expect(texts.first == ["type": "status", "data": ["status": ["exec_info": ["queue_remaining": 0]], "sid": .string(sid)]])
            #expect(texts.last == ["type": "feature_flags", "data": ["supports_preview_metadata": true, "max_upload_size": 104_857_600]])
            let record = try #require(standIn.recordedWebSockets.first)
            #expect(record.path == "/api/ws" && record.sid == sid)
            #expect(record.handshakeHeaders.contains { $0.name.lowercased() == "x-test" && $0.value == "yes" })
            #expect(record.receivedFrames.map(\.byteCount) == [70, 5, 100_000, 37])
            #expect(record.receivedFrames[1] == .text("hello"))
            #expect(record.clientFeatureFlags == ["supports_preview_metadata": true])
            #expect(try await eventually { standIn.connectedWebSocketCount == 0 })
            #expect(standIn.recordedRequests.contains { $0.path == "/api/ws" && $0.status == 101 })
        }
    }

    @Test func binaryPreviewFramesFollowTheLayout() async throws {
        try await withComfyUIStandIn { standIn in
            let legacy = MessageLog()
            let modern = MessageLog()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (log, flags) in [(legacy, false), (modern, true)] {
                    group.addTask {
                        var configuration = WebSocketClientConfiguration()
                        configuration.maxFrameSize = 1 << 24
                        try await WebSocketClient.connect(
                            url: "\(standIn.webSocketBaseURL)/ws?clientId=\(flags ? "modern" : "legacy")", configuration: configuration,
                            logger: quietLogger
                        ) { inbound, outbound, _ in
                            var iterator = inbound.messages(maxSize: 1 << 24).makeAsyncIterator()
                            _ = try await iterator.next()  // status
                            if flags {
                                try await outbound.write(.text(#"{"type": "feature_flags", "data": {"supports_preview_metadata": true}}"#))
                                _ = try await iterator.next()
                            }
                            while let message = try await iterator.next() {
                                log.append(message)
                                if log.all.count == 2 { break }
                            }
                            try await outbound.close(.normalClosure, reason: nil)
                        }
                    }
                }
                #expect(try await eventually { standIn.recordedWebSockets.count == 2 && standIn.recordedWebSockets.contains { $0.clientFeatureFlags != nil } })
                standIn.sendPreview(size: 600, promptId: "p", nodeId: "3")  // ~1 MB PNG, above the 16 KiB default frame size
                standIn.broadcastBinary(eventType: 3, payload: [0, 0, 0, 1, 0x37, 0x68, 0x69])
                try await group.waitForAll()
            }
            let image = ComfyUIStandIn.previewImage(size: 600)
            guard case .binary(let old) = legacy.all.first, case .binary(let new) = modern.all.first else {
                Issue.record("expected binary frames")
                return
            }
            let oldBytes = Array(old.readableBytesView)
            #expect(bigEndianUInt32(oldBytes[0..<4]) == 1)
            #expect(bigEndianUInt32(oldBytes[4..<8]) == 2)
            #expect(Array(oldBytes[8...]) == image)
            let newBytes = Array(new.readableBytesView)
            #expect(bigEndianUInt32(newBytes[0..<4]) == 4)
            let metadataLength = Int(bigEndianUInt32(newBytes[4..<8]))
            let metadata = try StandInJSON.parse(newBytes[8..<8 + metadataLength])
            #expect(metadata["image_type"] == "image/png" && metadata["node_id"] == "3" && metadata["prompt_id"] == "p")
            #expect(Array(newBytes[(8 + metadataLength)...]) == image)
            guard case .binary(let text) = legacy.all.last else {
                Issue.record("expected the text event")
                return
            }
            #expect(Array(text.readableBytesView) == [0, 0, 0, 3, 0, 0, 0, 1, 0x37, 0x68, 0x69])
        }
    }

    @Test func closeAllWebSocketsPropagatesTheCode() async throws {
        try await withComfyUIStandIn { standIn in
            async let closeFrame = WebSocketClient.connect(url: "\(standIn.webSocketBaseURL)/ws?clientId=c1", logger: quietLogger) {
                inbound, _, _ in
                for try await _ in inbound.messages(maxSize: 1 << 20) {}
            }
            // Without the connection there is nothing to close, and the client would wait for ever.
            try #require(try await eventually { standIn.connectedWebSocketCount == 1 })
            standIn.closeAllWebSockets(code: 4001, reason: "bye")
            let frame = try await closeFrame
            #expect(frame?.closeCode == WebSocketErrorCode(codeNumber: 4001))
            #expect(frame?.reason == "bye")
            #expect(try await eventually { standIn.connectedWebSocketCount == 0 })
            #expect(standIn.recordedWebSockets.first?.isOpen == false)
        }
    }

    @Test func comfyUILoginTableOfF2() async throws {
        let hash = "$2b$12$abcdefghijklmnopqrstuu0123456789ABCDEFGHIJKLMNOPQRSTU"
        var options = ComfyUIStandIn.Options()
        options.login = .init(passwordHash: hash, verifyPassword: { $0 == "secret" })
        try await withComfyUIStandIn(options) { standIn in
            try await withHTTPClient { client in
                let url = "\(standIn.baseURL)/system_stats"
                let encoded = hash.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
                let nothing = try await client.call(url)
                #expect(nothing.status == 401)
                #expect(nothing.text == #"{"error": "Authentication required."}"#)
                let html = try await client.call(url, headers: [("Accept", "text/html,application/xhtml+xml")])
                #expect(html.status == 302 && html.header("Location") == "/login")
                let table: [([(String, String)], String, Int)] = [
                    ([("Authorization", "Bearer secret")], "", 401),
                    ([], "?token=secret", 401),
                    ([("Authorization", "Bearer \(hash)")], "", 200),
                    ([("Authorization", "Bearer  \(hash)")], "", 200),
                    ([("Authorization", "bearer \(hash)")], "", 401),
                    ([("Authorization", "Bearer")], "", 500),
                    ([("Authorization", "Bearer \(hash) extra")], "", 500),
                    ([], "?token=\(encoded)", 200),
                    ([], "?token=", 401),
                    ([("Authorization", "Bearer wrong")], "?token=\(encoded)", 200),
                ]
                for (headers, query, expected) in table {
                    #expect(try await client.call(url + query, headers: headers).status == expected, "\(headers) \(query)")
                }
                #expect(try await client.call("\(standIn.baseURL)/api/system_stats?token=\(encoded)").status == 200)
                // path bypasses: /login exactly and the suffixes
                #expect(try await client.call("\(standIn.baseURL)/login").status == 200)
                #expect(try await client.call("\(standIn.baseURL)/api/login").status == 401)
                #expect(try await client.call(.POST, "\(standIn.baseURL)/api/userdata/probe.js?overwrite=true").status == 200)
                #expect(standIn.userDataContents(user: "default", path: "probe.js") == [])
                // websocket needs the token too
                await #expect(throws: (any Error).self) {
                    try await WebSocketClient.connect(url: "\(standIn.webSocketBaseURL)/ws", logger: quietLogger) { _, _, _ in }
                }
                try await WebSocketClient.connect(url: "\(standIn.webSocketBaseURL)/ws?token=\(encoded)", logger: quietLogger) {
                    inbound, outbound, _ in
                    var iterator = inbound.messages(maxSize: 1 << 20).makeAsyncIterator()
                    _ = try await iterator.next()
                    try await outbound.close(.normalClosure, reason: nil)
                }
                #expect(standIn.recordedWebSockets.count == 1)
                // form login gives a session cookie
                let wrong = try await client.call(
                    .POST, "\(standIn.baseURL)/login", headers: [("Content-Type", "application/x-www-form-urlencoded")],
                    body: Array("username=admin&password=nope".utf8))
                #expect(wrong.status == 302 && wrong.header("Location") == "/login?wrong_password=1")
                let login = try await client.call(
                    .POST, "\(standIn.baseURL)/login", headers: [("Content-Type", "application/x-www-form-urlencoded")],
                    body: Array("guest_mode=&username=admin&password=secret".utf8))
                #expect(login.status == 302 && login.header("Location") == "/")
                let cookie = try #require(login.header("Set-Cookie"))
                #expect(cookie.hasPrefix("AIOHTTP_SESSION=\"") && cookie.hasSuffix("; HttpOnly; Path=/"))
                let value = String(cookie.split(separator: ";")[0])
                #expect(try await client.call(url, headers: [("Cookie", value)]).status == 200)
                _ = try await client.call("\(standIn.baseURL)/logout", headers: [("Cookie", value)])
                #expect(try await client.call(url, headers: [("Cookie", value)]).status == 200)
            }
        }
        var first = ComfyUIStandIn.Options()
        first.login = .init(passwordHash: nil)
        try await withComfyUIStandIn(first) { standIn in
            try await withHTTPClient { client in
                #expect(try await client.call("\(standIn.baseURL)/system_stats?token=").status == 200)
                #expect(try await client.call("\(standIn.baseURL)/system_stats").status == 401)
                let setup = try await client.call(
                    .POST, "\(standIn.baseURL)/login", headers: [("Content-Type", "application/x-www-form-urlencoded")],
                    body: Array("username=admin&password=first".utf8))
                #expect(setup.status == 302)
                let token = try #require(standIn.loginPasswordHash)
                #expect(try await client.call("\(standIn.baseURL)/system_stats?token=").status == 401)
                #expect(try await client.call("\(standIn.baseURL)/system_stats", headers: [("Authorization", "Bearer \(token)")]).status == 200)
            }
        }
    }

    @Test func pngEncoderAndChecksums() {
        #expect(StandInPNG.crc32(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(StandInPNG.adler32(Array("Wikipedia".utf8)) == 0x11E6_0398)
        let zlib = StandInPNG.zlibStored([UInt8](repeating: 1, count: 70_000))
        #expect(zlib.count == 2 + 5 + 65535 + 5 + (70_000 - 65535) + 4)
        #expect((UInt16(zlib[0]) << 8 | UInt16(zlib[1])) % 31 == 0)
        #expect(StandInVirtualFile.bytes(offset: 250, count: 3) == [250, 0, 1])
    }
}

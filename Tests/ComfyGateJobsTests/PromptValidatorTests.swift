import AsyncHTTPClient
import ComfyGateJobs
import ComfyGatePolicy
import ComfyGateTestSupport
import NIOCore
import NIOHTTP1
import Testing

private func json(_ text: String) throws -> PolicyJSON { try PolicyJSON(parsing: Array(text.utf8)) }

/// Node classes as ComfyUI's `/object_info` declares them (trimmed to what validation reads).
private let objectInfo = #"""
    {
      "CheckpointLoaderSimple": {"input": {"required": {"ckpt_name": [["sd_xl_base_1.0.safetensors", "flux.safetensors"], {}]}},
        "output": ["MODEL", "CLIP", "VAE"], "output_node": false},
      "EmptyImage": {"input": {"required": {"width": ["INT", {"default": 512, "min": 1, "max": 16384}],
        "height": ["INT", {"default": 512, "min": 1, "max": 16384}]}, "optional": {"color": ["INT", {"default": 0}]}},
        "output": ["IMAGE"], "output_node": false},
      "SaveImage": {"input": {"required": {"images": ["IMAGE"], "filename_prefix": ["STRING", {"default": "ComfyUI"}]}},
        "output": [], "output_node": true},
      "PreviewImage": {"input": {"required": {"images": ["IMAGE"]}}, "output": [], "output_node": true},
      "LoadImage": {"input": {"required": {"image": [["a.png", "b.png"], {"image_upload": true}]}},
        "output": ["IMAGE", "MASK"], "output_node": false},
      "Sampler": {"input": {"required": {"sampler": ["COMBO", {"options": ["euler", "dpmpp_2m"]}],
        "scheduler": [["s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12", "s13", "s14", "s15",
          "s16", "s17", "s18", "s19", "s20"]]}}, "output": ["IMAGE"], "output_node": false}
    }
    """#

@Suite struct PromptValidatorTests {
    let validator = PromptValidator(catalog: NodeCatalog(objectInfo: try! json(objectInfo))!)

    private func refusal(_ prompt: String, targets: [String]? = nil) throws -> PolicyJSON {
        guard case .refused(let body) = validator.validate(try json(prompt), targets: targets) else {
            Issue.record("accepted: \(prompt)")
            return .null
        }
        return body
    }

    @Test func aValidPromptIsAcceptedWithItsOutputs() throws {
        let prompt = #"""
            {"1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64}},
             "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}},
             "3": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
             "4": {"class_type": "LoadImage", "inputs": {"image": "uploaded-later.png"}},
             "5": {"class_type": "Sampler", "inputs": {"sampler": {"__value__": "euler"}, "scheduler": "s20"}}}
            """#
        #expect(validator.validate(try json(prompt)) == .accepted(outputs: ["2", "3"], nodeErrors: .object([])))
        #expect(validator.validate(try json(prompt), targets: ["3"]) == .accepted(outputs: ["3"], nodeErrors: .object([])))
    }

    @Test func anUnknownNodeOrAMissingClassTypeIsAnInvalidPrompt() throws {
        let unknown = try refusal(#"{"1": {"class_type": "SaveImage", "inputs": {}}, "7": {"class_type": "Upscaler", "inputs": {}}}"#)
        #expect(
            unknown == (try json(
                #"{"error": {"type": "invalid_prompt", "message": "Cannot execute because node Upscaler does not exist.", "details": "Node ID '#7'", "extra_info": {}}, "node_errors": {}}"#)))
        let missing = try refusal(#"{"3": {"inputs": {}}}"#)
        #expect(missing["error"]?["message"] == .string("Cannot execute because a node is missing the class_type property."))
        #expect(missing["error"]?["details"] == .string("Node ID '#3'"))
        #expect(try refusal("[1, 2]")["error"]?["type"] == .string("invalid_prompt"))
    }

    @Test func aPromptWithoutAnOutputNodeHasNoOutputs() throws {
        let body = try refusal(#"{"1": {"class_type": "EmptyImage", "inputs": {"width": 1, "height": 1}}}"#)
        #expect(body == (try json(#"{"error": {"type": "prompt_no_outputs", "message": "Prompt has no outputs", "details": "", "extra_info": {}}, "node_errors": {}}"#)))
        let untargeted = try refusal(#"{"2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}"#, targets: ["9"])
        #expect(untargeted["error"]?["type"] == .string("prompt_no_outputs"))
    }

    @Test func aMissingRequiredInputFailsItsNodeAndEveryOutputDependingOnIt() throws {
        let prompt = #"""
            {"1": {"class_type": "EmptyImage", "inputs": {"width": 64}},
             "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}},
             "3": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}
            """#
        let expected = try json(
            #"""
            {"error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation",
               "details": "Required input is missing: filename_prefix", "extra_info": {}},
             "node_errors": {
               "1": {"errors": [{"type": "required_input_missing", "message": "Required input is missing", "details": "height",
                  "extra_info": {"input_name": "height"}}], "dependent_outputs": ["2", "3"], "class_type": "EmptyImage"},
               "2": {"errors": [{"type": "required_input_missing", "message": "Required input is missing", "details": "filename_prefix",
                  "extra_info": {"input_name": "filename_prefix"}}], "dependent_outputs": ["2", "3"], "class_type": "SaveImage"}}}
            """#)
        #expect(try refusal(prompt) == expected)
    }

    @Test func aValueNotInItsListIsNamedWithTheListOrItsLength() throws {
        let prompt = #"""
            {"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "missing.safetensors"}},
             "2": {"class_type": "Sampler", "inputs": {"sampler": "lms", "scheduler": "nope"}},
             "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "x"}},
             "4": {"class_type": "PreviewImage", "inputs": {"images": ["1", 2]}}}
            """#
        let body = try refusal(prompt)
        let loader = try #require(body["node_errors"]?["1"]?["errors"]?.arrayValue?.first)
        #expect(loader["details"] == .string("ckpt_name: 'missing.safetensors' not in ['sd_xl_base_1.0.safetensors', 'flux.safetensors']"))
        #expect(loader["extra_info"]?["input_config"] == (try json(#"[["sd_xl_base_1.0.safetensors", "flux.safetensors"], {}]"#)))
        #expect(loader["extra_info"]?["received_value"] == .string("missing.safetensors"))
        let sampler = try #require(body["node_errors"]?["2"]?["errors"]?.arrayValue)
        #expect(sampler.map { $0["details"] } == [
            .string("sampler: 'lms' not in ['euler', 'dpmpp_2m']"), .string("scheduler: 'nope' not in (list of length 21)"),
        ])
        #expect(sampler[1]["extra_info"]?["input_config"] == .null)
        #expect(body["node_errors"]?["2"]?["dependent_outputs"] == (try json(#"["3", "4"]"#)), "as ComfyUI: every failed node so far")
        #expect(body["error"]?["details"] == .string(""), "the outputs' own inputs were fine")
    }

    @Test func oneValidOutputIsEnoughTheOthersComeBackAsNodeErrors() throws {
        let prompt = #"""
            {"1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64}},
             "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}},
             "3": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}
            """#
        guard case .accepted(let outputs, let nodeErrors) = validator.validate(try json(prompt)) else {
            Issue.record("refused")
            return
        }
        #expect(outputs == ["3"])
        #expect(nodeErrors.members?.map(\.key) == ["2"])
    }

    @Test func linksAreFollowedOnceEvenInACycleAndMalformedOnesAreLeftToComfyUI() throws {
        let cycle = #"""
            {"1": {"class_type": "Sampler", "inputs": {"sampler": ["2", 0], "scheduler": "s0"}},
             "2": {"class_type": "Sampler", "inputs": {"sampler": ["1", 0], "scheduler": "s1"}},
             "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": ["9", 0, 1]}}}
            """#
        #expect(validator.validate(try json(cycle)) == .accepted(outputs: ["3"], nodeErrors: .object([])))
    }
}

/// The gateway's validator and the ComfyUI stand-in (which validates as ComfyUI 0.3.64 does) answer the same
/// faulty prompts the same way.
@Suite struct PromptValidatorAgainstTheStandInTests {
    static let prompts = [
        #"{"1": {"class_type": "NoSuchNode", "inputs": {}}, "2": {"class_type": "SaveImage", "inputs": {}}}"#,
        #"{"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}}}"#,
        #"{"1": {"class_type": "EmptyImage", "inputs": {"width": 8}}, "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}}}"#,
        // The loader is not reached from the output, so neither checks it.
        #"{"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "none.safetensors"}}, "2": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x"}}}"#,
        #"{"1": {"class_type": "EmptyImage", "inputs": {}}, "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}}, "3": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}"#,
    ]

    @Test(arguments: prompts)
    func bothRefuseAlike(_ prompt: String) async throws {
        try await withComfyUIStandIn { standIn in
            let client = HTTPClient(eventLoopGroupProvider: .singleton)
            do {
                let info = try await Self.fetch(client, "\(standIn.baseURL)/object_info")
                let validator = PromptValidator(catalog: try #require(NodeCatalog(objectInfo: info.json)))
                let comfyUI = try await Self.fetch(client, "\(standIn.baseURL)/prompt", body: #"{"prompt": \#(prompt)}"#)
                #expect(comfyUI.status == 400)
                guard case .refused(let ours) = validator.validate(try json(prompt)) else {
                    Issue.record("the gateway accepted what ComfyUI refused: \(comfyUI.json)")
                    try await client.shutdown()
                    return
                }
                #expect(ours["error"]?["type"] == comfyUI.json["error"]?["type"])
                #expect(ours["error"]?["message"] == comfyUI.json["error"]?["message"])
                #expect(ours["node_errors"]?.members?.map(\.key) == comfyUI.json["node_errors"]?.members?.map(\.key))
                for entry in ours["node_errors"]?.members ?? [] {
                    let theirs = comfyUI.json["node_errors"]?[entry.key]
                    #expect(entry.value["class_type"] == theirs?["class_type"])
                    #expect(entry.value["dependent_outputs"] == theirs?["dependent_outputs"])
                    let fields = ["type", "message", "details"]
                    #expect(
                        entry.value["errors"]?.arrayValue?.map { error in fields.map { error[$0] } }
                            == theirs?["errors"]?.arrayValue?.map { error in fields.map { error[$0] } })
                }
                try await client.shutdown()
            } catch {
                try? await client.shutdown()
                throw error
            }
        }
    }

    private static func fetch(_ client: HTTPClient, _ url: String, body: String? = nil) async throws -> (status: Int, json: PolicyJSON) {
        var request = HTTPClientRequest(url: url)
        if let body {
            request.method = .POST
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await client.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 64 << 20)
        return (Int(response.status.code), try PolicyJSON(parsing: Array(bytes.readableBytesView)))
    }
}

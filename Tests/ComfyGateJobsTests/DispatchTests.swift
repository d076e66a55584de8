import ComfyGateJobs
import ComfyGatePolicy
import Testing

@Suite struct DispatchTests {
    private func catalog(_ files: [String]) throws -> NodeCatalog {
        let list = files.map { "\"\($0)\"" }.joined(separator: ", ")
        let info = """
            {"UNETLoader": {"input": {"required": {"unet_name": [[\(list)], {}], "weight_dtype": [["default", "fp8_e4m3fn"], {}]}},
              "output": ["MODEL"], "output_node": false},
             "LoadImage": {"input": {"required": {"image": [["a.png"], {"image_upload": true}]}}, "output": ["IMAGE"], "output_node": false},
             "SaveImage": {"input": {"required": {"images": ["IMAGE", {}]}}, "output": [], "output_node": true}}
            """
        return try #require(NodeCatalog(objectInfo: try PolicyJSON(parsing: Array(info.utf8))))
    }

    private let prompt = """
        {"1": {"class_type": "UNETLoader", "inputs": {"unet_name": "qwen_image_edit_fp8_e4m3fn.safetensors", "weight_dtype": "default"}},
         "2": {"class_type": "LoadImage", "inputs": {"image": "users/alice/photo.png"}},
         "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0]}}}
        """

    @Test func aPromptNamesItsModelFilesOnly() throws {
        let files = ModelFiles(prompt: try PolicyJSON(parsing: Array(prompt.utf8)))
        #expect(files.files == ["qwen_image_edit_fp8_e4m3fn.safetensors"], "an image is not a model file")
        #expect(files.missing(in: try catalog(["qwen_image_edit_fp8_e4m3fn.safetensors"])).isEmpty)
        #expect(files.missing(in: try catalog(["qwen_image_fp8_e4m3fn.safetensors"])) == ["qwen_image_edit_fp8_e4m3fn.safetensors"])
        let unknownNode = ModelFiles(prompt: try PolicyJSON(parsing: Array(#"{"1": {"class_type": "GGUFLoader", "inputs": {"name": "x.gguf"}}}"#.utf8)))
        #expect(unknownNode.missing(in: try catalog([])) == ["x.gguf"], "a node the backend lacks cannot load its file there")
    }

    @Test func theLeastLoadedForItsWeightTakesTheJob() {
        func candidate(_ name: String, weight: Double = 1, active: Int, slots: Int = 2, canRun: Bool = true) -> BackendChoice.Candidate {
            BackendChoice.Candidate(name: name, weight: weight, active: active, slots: slots, canRun: canRun)
        }
        #expect(BackendChoice.choose([candidate("a", active: 1), candidate("b", active: 0)]) == 1)
        #expect(BackendChoice.choose([candidate("a", active: 0), candidate("b", active: 0)]) == 0, "the earlier listed on a tie")
        #expect(BackendChoice.choose([candidate("a", weight: 3, active: 1, slots: 4), candidate("b", active: 0)]) == 0,
            "(1+1)/3 is below (0+1)/1")
        #expect(BackendChoice.choose([candidate("a", active: 2), candidate("b", active: 2)]) == nil, "no free slot")
        #expect(BackendChoice.choose([candidate("a", active: 0, canRun: false), candidate("b", active: 1)]) == 1)
        #expect(BackendChoice.choose([]) == nil)
    }
}

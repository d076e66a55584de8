import ComfyGateCore
import ComfyGateJobs
import ComfyGatePolicy
import Foundation
import Testing

private func entry(_ text: String) throws -> PolicyJSON { try PolicyJSON(parsing: Array(text.utf8)) }

@Suite struct FinishedPromptTests {
    @Test func aSuccessGivesItsFilesAndGPUTime() throws {
        let finished = try #require(FinishedPrompt(historyEntry: try entry(#"""
            {"prompt": [3, "p1", {}, {}, ["9"]],
             "outputs": {"9": {"images": [{"filename": "a_00001_.png", "subfolder": "users/alice", "type": "output"},
                                          {"filename": "ComfyUI_temp_x_00001_.png", "subfolder": "", "type": "temp"}]},
                         "12": {"gifs": [{"filename": "clip_00001.mp4", "subfolder": "users/alice", "type": "output", "format": "video/h264-mp4"}],
                                "text": ["a caption"]},
                         "15": {"audio": [{"filename": "sound", "type": "output"}]},
                         "20": {"images": [{"filename": "in.png", "subfolder": "", "type": "input"}]}},
             "status": {"status_str": "success", "completed": true, "messages": [
                 ["execution_start", {"prompt_id": "p1", "timestamp": 1800000000000}],
                 ["execution_cached", {"nodes": [], "prompt_id": "p1", "timestamp": 1800000000001}],
                 ["execution_success", {"prompt_id": "p1", "timestamp": 1800000012500}]]},
             "meta": {}}
            """#)))
        #expect(finished.state == .succeeded && finished.failure == nil)
        #expect(finished.gpuSeconds == 12.5)
        #expect(finished.startedAt == Date(timeIntervalSince1970: 1_800_000_000))
        #expect(finished.outputs == [
            JobOutput(nodeID: "9", fileName: "a_00001_.png", subfolder: "users/alice", mediaKind: .image, contentType: "image/png"),
            JobOutput(nodeID: "9", fileName: "ComfyUI_temp_x_00001_.png", subfolder: "", fileType: .temp, mediaKind: .image, contentType: "image/png"),
            JobOutput(nodeID: "12", fileName: "clip_00001.mp4", subfolder: "users/alice", mediaKind: .video, contentType: "video/mp4"),
            JobOutput(nodeID: "15", fileName: "sound", subfolder: "", mediaKind: .audio, contentType: "application/octet-stream"),
        ], "text is not a file; an input file is not an output")
    }

    @Test func anErrorNamesItsNodeAndException() throws {
        let finished = try #require(FinishedPrompt(historyEntry: try entry(#"""
            {"outputs": {}, "status": {"status_str": "error", "completed": false, "messages": [
                ["execution_start", {"prompt_id": "p2", "timestamp": 1000}],
                ["execution_error", {"prompt_id": "p2", "node_id": "5", "node_type": "KSampler", "executed": [],
                  "exception_message": "CUDA out of memory", "exception_type": "torch.OutOfMemoryError",
                  "traceback": ["line 1"], "current_inputs": {}, "current_outputs": {}, "timestamp": 4000}]]}}
            """#)))
        #expect(finished.state == .failed && finished.gpuSeconds == 3)
        #expect(finished.failure == JobFailure(
            code: "execution_error", message: "CUDA out of memory", nodeID: "5", classType: "KSampler",
            details: #"{"exception_type":"torch.OutOfMemoryError","traceback":["line 1"]}"#))
    }

    @Test func anInterruptionIsACancellation() throws {
        let finished = try #require(FinishedPrompt(historyEntry: try entry(#"""
            {"outputs": {}, "status": {"status_str": "error", "completed": false, "messages": [
                ["execution_start", {"prompt_id": "p3", "timestamp": 1000}],
                ["execution_interrupted", {"prompt_id": "p3", "node_id": "2", "node_type": "SaveImage", "executed": ["1"], "timestamp": 1500}]]}}
            """#)))
        #expect(finished.state == .canceled && finished.gpuSeconds == 0.5)
        #expect(finished.failure?.code == "interrupted" && finished.failure?.nodeID == "2")
    }

    @Test func anEntryWithoutStatusIsNotFinishedAndMissingTimesCountNoGPUTime() throws {
        #expect(FinishedPrompt(historyEntry: try entry(#"{"prompt": [], "outputs": {}}"#)) == nil)
        let bare = try #require(FinishedPrompt(historyEntry: try entry(#"{"status": {"status_str": "success", "messages": []}}"#)))
        #expect(bare.state == .succeeded && bare.gpuSeconds == 0 && bare.outputs.isEmpty)
        let odd = try #require(FinishedPrompt(historyEntry: try entry(#"{"status": {"status_str": "weird"}}"#)))
        #expect(odd.state == .failed && odd.failure?.code == "execution_error")
    }

    @Test func mediaTypesComeFromTheNameThenTheList() {
        #expect(MediaTypes.describe(fileName: "x.WEBM", listedAs: "images") == (.video, "video/webm"))
        #expect(MediaTypes.describe(fileName: "x", listedAs: "audio") == (.audio, "application/octet-stream"))
        #expect(MediaTypes.describe(fileName: "mesh.glb", listedAs: "3d") == (.file, "model/gltf-binary"))
        #expect(MediaTypes.describe(fileName: "noext", listedAs: "whatever") == (.file, "application/octet-stream"))
    }
}

public import ComfyGateCore
public import ComfyGatePolicy
public import Foundation

/// What a ComfyUI history entry says of a finished prompt, as a job records it: how it ended, the files it made,
/// why it failed, and how long it held the GPU.
public struct FinishedPrompt: Sendable, Equatable {
    /// `succeeded`, `failed`, or `canceled` (interrupted).
    public var state: JobState
    public var outputs: [JobOutput]
    public var failure: JobFailure?
    /// From `execution_start` to the message that ended it, by ComfyUI's own timestamps.
    public var startedAt: Date?
    public var completedAt: Date?
    /// The time between those two, 0 when either is missing.
    public var gpuSeconds: Double

    /// Reads `{"prompt", "outputs", "status": {"status_str", "completed", "messages"}, "meta"}`; nil when the entry
    /// has no `status` (ComfyUI writes it only once the prompt has finished).
    public init?(historyEntry entry: PolicyJSON) {
        guard let status = entry["status"], status.members != nil else { return nil }
        var start: Date?
        var end: Date?
        var ending: (event: String, data: PolicyJSON)?
        for message in status["messages"]?.arrayValue ?? [] {
            guard let pair = message.arrayValue, pair.count == 2, let event = pair[0].stringValue else { continue }
            let time = Self.date(pair[1]["timestamp"])
            switch event {
            case "execution_start": start = time
            case "execution_success", "execution_error", "execution_interrupted":
                end = time
                ending = (event, pair[1])
            default: break
            }
        }
        switch ending?.event {
        case "execution_interrupted":
            state = .canceled
            failure = JobFailure(
                code: "interrupted", message: "the prompt was interrupted", nodeID: ending?.data["node_id"]?.stringValue,
                classType: ending?.data["node_type"]?.stringValue)
        case "execution_error":
            state = .failed
            let data = ending?.data ?? .null
            let details = PolicyJSON.object(
                [("exception_type", data["exception_type"]), ("traceback", data["traceback"])].compactMap { key, value in
                    value.map { PolicyJSON.Member(key: key, value: $0) }
                })
            failure = JobFailure(
                code: "execution_error", message: data["exception_message"]?.stringValue ?? "the prompt failed",
                nodeID: data["node_id"]?.stringValue, classType: data["node_type"]?.stringValue,
                details: String(decoding: details.serialized(), as: UTF8.self))
        default:
            let succeeded = status["status_str"]?.stringValue == "success"
            state = succeeded ? .succeeded : .failed
            failure = succeeded ? nil : JobFailure(code: "execution_error", message: "the prompt failed")
        }
        startedAt = start
        completedAt = end
        gpuSeconds = start.flatMap { start in end.map { max(0, $0.timeIntervalSince(start)) } } ?? 0
        outputs = (entry["outputs"]?.members ?? []).flatMap { node in Self.files(of: node.key, in: node.value) }
    }

    /// The output and temp files one node's `ui` output lists (`images`, `gifs`, `audio`, `video`, …), read as the
    /// gateway reads them for `/view` checks.
    private static func files(of nodeID: String, in output: PolicyJSON) -> [JobOutput] {
        (output.members ?? []).flatMap { list in
            OwnershipIndex.FileReference.listed(inNodeOutput: .object([list])).compactMap { file -> JobOutput? in
                guard let type = JobOutput.FileType(rawValue: file.type) else { return nil }
                let (kind, contentType) = MediaTypes.describe(fileName: file.name, listedAs: list.key)
                return JobOutput(
                    nodeID: nodeID, fileName: file.name, subfolder: file.subfolder, fileType: type, mediaKind: kind,
                    contentType: contentType)
            }
        }
    }

    /// ComfyUI's message timestamps: milliseconds since 1970.
    private static func date(_ value: PolicyJSON?) -> Date? {
        guard case .number(let literal)? = value, let milliseconds = Double(literal) else { return nil }
        return Date(timeIntervalSince1970: milliseconds / 1000)
    }
}

/// What kind of file an output is, from its name, or from the list ComfyUI put it in when the name says nothing.
public enum MediaTypes {
    /// The media kind and content type of a file called `fileName`, listed under `list` (`images`, `audio`, …).
    public static func describe(fileName: String, listedAs list: String) -> (JobOutput.MediaKind, String) {
        let suffix = fileName.split(separator: ".").last.map { $0.lowercased() } ?? ""
        if let known = byExtension[suffix] { return known }
        switch list {
        case "images": return (.image, "application/octet-stream")
        case "audio": return (.audio, "application/octet-stream")
        case "video", "gifs", "videos": return (.video, "application/octet-stream")
        case "text": return (.text, "text/plain")
        default: return (.file, "application/octet-stream")
        }
    }

    private static let byExtension: [String: (JobOutput.MediaKind, String)] = [
        "png": (.image, "image/png"), "jpg": (.image, "image/jpeg"), "jpeg": (.image, "image/jpeg"),
        "webp": (.image, "image/webp"), "gif": (.image, "image/gif"), "bmp": (.image, "image/bmp"),
        "tif": (.image, "image/tiff"), "tiff": (.image, "image/tiff"), "exr": (.image, "image/x-exr"),
        "mp4": (.video, "video/mp4"), "webm": (.video, "video/webm"), "mov": (.video, "video/quicktime"),
        "mkv": (.video, "video/x-matroska"), "avi": (.video, "video/x-msvideo"),
        "flac": (.audio, "audio/flac"), "wav": (.audio, "audio/wav"), "mp3": (.audio, "audio/mpeg"),
        "ogg": (.audio, "audio/ogg"), "opus": (.audio, "audio/opus"), "m4a": (.audio, "audio/mp4"),
        "txt": (.text, "text/plain"), "json": (.text, "application/json"), "latent": (.latent, "application/octet-stream"),
        "glb": (.file, "model/gltf-binary"), "safetensors": (.file, "application/octet-stream"),
    ]
}

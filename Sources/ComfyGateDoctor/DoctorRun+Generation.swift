import ComfyUIClient
import Foundation

extension DoctorRun {
    /// Width and height of the test image.
    static let testImageSize = 64

    /// `generation`: the model-free workflow of §C (EmptyImage → SaveImage) end to end, timed.
    func checkGeneration() async {
        guard configuration.generate else {
            record(.generation, .skip, evidence: "not requested (--generate)")
            return
        }
        guard canCallComfyUI else {
            record(.generation, .skip, evidence: "needs an accepted token")
            return
        }
        await measure(.generation) {
            do {
                let client = try comfyUIClient()
                let run = try await Self.withTimeout(configuration.timeout * 6) {
                    try await Self.generate(with: client)
                }
                let bytes = try await client.view(run.image)
                guard let size = PNGHeader(bytes) else {
                    return (.fail, "\(run.image.filename): not a PNG (\(bytes.count) bytes)", Causes.imageInvalid("no PNG signature/IHDR"))
                }
                let evidence = "prompt accepted in \(run.submitted.shortText), finished after \(run.finished.shortText); "
                    + "/view: \(run.image.filename), PNG \(size.width)×\(size.height), \(bytes.count) bytes"
                guard size.width == Self.testImageSize, size.height == Self.testImageSize else {
                    return (.fail, evidence, Causes.imageInvalid("\(size.width)×\(size.height) instead of \(Self.testImageSize)×\(Self.testImageSize)"))
                }
                return (.pass, evidence, nil)
            } catch is DoctorTimeout {
                return (.fail, "not finished within \((configuration.timeout * 6).shortText)", Causes.generationTimeout)
            } catch let error as ComfyUIClientError where error.isKind(of: .promptRejected(status: 0, "")) {
                return (.fail, "POST /prompt: \(error)", Causes.promptRejected(error.detail))
            } catch let error as GenerationFailure {
                return (.fail, error.message, Causes.executionFailed(error.message))
            } catch {
                let (text, diagnosis) = describe(error)
                return (.fail, "generation: \(text)", diagnosis)
            }
        }
    }

    struct GenerationRun: Sendable {
        var image: ImageReference
        var submitted: Duration
        var finished: Duration
    }

    struct GenerationFailure: Error {
        var message: String
    }

    /// Opens the websocket first, submits with the same client id, follows events to `executing {node: null}`.
    static func generate(with client: ComfyUIClient) async throws -> GenerationRun {
        let clientID = UUID().uuidString.lowercased()
        // A random colour makes every run a new image (an identical graph would be served from cache).
        let color = Int.random(in: 1..<0xFFFFFF)
        let prompt: [String: JSONValue] = [
            "1": ["class_type": "EmptyImage", "inputs": [
                "width": .number(Double(testImageSize)), "height": .number(Double(testImageSize)), "batch_size": 1, "color": .number(Double(color)),
            ]],
            "2": ["class_type": "SaveImage", "inputs": ["images": ["1", 0], "filename_prefix": "comfygate-doctor"]],
        ]
        return try await client.withEvents(clientID: clientID) { session in
            let clock = ContinuousClock()
            var events = session.events.makeAsyncIterator()
            _ = try await events.next()  // the connect `status`: the socket is registered
            let start = clock.now
            let submission = try await client.submit(prompt: prompt, clientID: clientID)
            let submitted = start.duration(to: clock.now)
            var images: [ImageReference] = []
            while let event = try await events.next() {
                switch event {
                case .executed(let promptID, _, let produced) where promptID == submission.promptID:
                    images += produced
                case .executionError(let promptID, let node, let nodeType, let type, let message) where promptID == submission.promptID:
                    throw GenerationFailure(message: "node \(node) (\(nodeType)) raised \(type): \(message)")
                case .executionInterrupted(let promptID, _) where promptID == submission.promptID:
                    throw GenerationFailure(message: "the prompt was interrupted")
                case .executing(let promptID, nil) where promptID == submission.promptID:
                    let finished = start.duration(to: clock.now)
                    if images.isEmpty, let entry = try await client.history(promptID: submission.promptID) {
                        images = entry.images["2"] ?? []
                    }
                    guard let image = images.first else { throw GenerationFailure(message: "finished without an image") }
                    return GenerationRun(image: image, submitted: submitted, finished: finished)
                default:
                    continue
                }
            }
            throw ComfyUIClientError.webSocketClosed
        }
    }
}

/// Width and height from a PNG's signature and IHDR chunk.
struct PNGHeader: Equatable {
    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    var width: Int
    var height: Int

    init?(_ bytes: [UInt8]) {
        guard bytes.count >= 24, Array(bytes[0..<8]) == Self.signature, Array(bytes[12..<16]) == Array("IHDR".utf8) else { return nil }
        func uint32(_ offset: Int) -> Int { bytes[offset..<offset + 4].reduce(0) { $0 << 8 | Int($1) } }
        width = uint32(16)
        height = uint32(20)
    }
}

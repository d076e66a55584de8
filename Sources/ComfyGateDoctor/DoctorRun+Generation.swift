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

    /// The model-free graph run with ``WorkflowRun`` (the same run `comfygate generate` makes).
    static func generate(with client: ComfyUIClient) async throws -> GenerationRun {
        // A random colour makes every run a new image (an identical graph would be served from cache).
        let color = Int.random(in: 1..<0xFFFFFF)
        let prompt: [String: JSONValue] = [
            "1": ["class_type": "EmptyImage", "inputs": [
                "width": .number(Double(testImageSize)), "height": .number(Double(testImageSize)), "batch_size": 1, "color": .number(Double(color)),
            ]],
            "2": ["class_type": "SaveImage", "inputs": ["images": ["1", 0], "filename_prefix": "comfygate-doctor"]],
        ]
        do {
            let outcome = try await WorkflowRun.run(prompt, with: client)
            return GenerationRun(image: outcome.outputs[0], submitted: outcome.submitted, finished: outcome.finished)
        } catch let failure as WorkflowRun.Failure {
            if case .rejected(let detail) = failure { throw ComfyUIClientError.promptRejected(status: 400, detail) }
            throw GenerationFailure(message: failure.description)
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

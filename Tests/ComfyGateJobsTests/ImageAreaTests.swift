import ComfyGateJobs
import ComfyGatePolicy
import Testing

private func area(_ prompt: String) throws -> ImageArea? {
    ImageArea.largest(in: try PolicyJSON(parsing: Array(prompt.utf8)))
}

@Suite struct ImageAreaTests {
    @Test func theLargestSizedNodeCounts() throws {
        let prompt = #"""
            {"3": {"class_type": "EmptySD3LatentImage", "inputs": {"width": 1328, "height": 1328, "batch_size": 1}},
             "4": {"class_type": "EmptyLatentImage", "inputs": {"width": " 1024 ", "height": 768.9, "batch_size": 4}},
             "5": {"class_type": "KSampler", "inputs": {"seed": 99999999999}}}
            """#
        #expect(try area(prompt) == ImageArea(nodeID: "3", classType: "EmptySD3LatentImage", pixels: 1328 * 1328))
    }

    @Test func megapixelsCountAsComfyUIScalesThem() throws {
        let prompt = #"{"7": {"class_type": "ImageScaleToTotalPixels", "inputs": {"image": ["6", 0], "megapixels": 1.5, "upscale_method": "lanczos"}}}"#
        #expect(try area(prompt)?.pixels == 1_572_864)
    }

    @Test func sizesFedByLinksOrMissingAreUnknown() throws {
        #expect(try area(#"{"1": {"class_type": "EmptyLatentImage", "inputs": {"width": ["9", 0], "height": 512}}}"#) == nil)
        #expect(try area(#"{"1": {"class_type": "EmptyImage", "inputs": {"width": 512}}}"#) == nil)
        #expect(try area(#"{"1": {"class_type": "EmptyImage", "inputs": {"width": "512.5", "height": 512}}}"#) == nil, "int('512.5') fails")
        #expect(try area(#"{"1": {"class_type": "SaveImage", "inputs": {"width": 512, "height": 512}}}"#) == nil)
        #expect(try area("[]") == nil)
    }

    @Test func hugeOrNegativeSizesNeitherOverflowNorCountBelowZero() throws {
        let huge = try area(#"{"1": {"class_type": "EmptyLatentImage", "inputs": {"width": 1e300, "height": 1e300}}}"#)
        #expect(huge?.pixels == (1 << 24) * (1 << 24))
        #expect(try area(#"{"1": {"class_type": "EmptyLatentImage", "inputs": {"width": -5, "height": 512}}}"#) == nil)
    }
}

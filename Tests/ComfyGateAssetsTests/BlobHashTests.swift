import ComfyGateAssets
import Testing

@Suite struct BlobHashTests {
    /// BLAKE3 of no input.
    private let emptyHex = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"

    @Test func digestFormatsAsPrefixAndLowercaseHex() {
        let hash = BlobHash(digest: BLAKE3Hasher.hash([UInt8]()))
        #expect(hash.hex == emptyHex)
        #expect(hash.description == "blake3:" + emptyHex)
        #expect("\(hash)" == "blake3:" + emptyHex)
    }

    @Test func parsingAndFormattingRoundTrip() throws {
        let text = "blake3:" + emptyHex
        let hash = try #require(BlobHash(text))
        #expect(hash.description == text)
        #expect(BlobHash(digest: hash.digest) == hash)
        #expect(hash.digest == BLAKE3Hasher.hash([UInt8]()))
    }

    @Test func everyByteValueRoundTrips() throws {
        let digest = (0..<32).map { UInt8($0 * 8 + 7) }
        let hash = BlobHash(digest: digest)
        #expect(try #require(BlobHash(hash.description)) == hash)
        #expect(hash.digest == digest)
        let leading: [UInt8] = [0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF]
        let everyDigit = BlobHash(digest: leading + Array(repeating: 0xFF, count: 24))
        #expect(everyDigit.hex == "0123456789abcdef" + String(repeating: "f", count: 48))
    }

    @Test(arguments: [
        "",
        "blake3:",
        "blake3",
        "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
        "sha256:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
        "BLAKE3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
        "blake3-af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
        "blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f326",
        "blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f32620",
        "blake3:AF1349B9F5F9A1A6A0404DEA36DCC9499BCB25C9ADC112B7CC9A93CAE41F3262",
        "blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f326A",
        "blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f326g",
        "blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f32 2",
        "blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f32é",
        " blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
        "blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262\n",
        "blake3: af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
    ])
    func malformedTextIsRefused(_ text: String) {
        #expect(BlobHash(text) == nil)
    }
}

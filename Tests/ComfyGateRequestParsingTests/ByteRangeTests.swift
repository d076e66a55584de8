import ComfyGateRequestParsing
import Testing

@Suite struct ByteRangeTests {
    @Test(arguments: [
        ("bytes=0-9", 69, ByteRange.Request.part(0..<10)),
        ("bytes=60-", 69, .part(60..<69)),
        ("bytes=60-1000", 69, .part(60..<69)),
        ("bytes=-5", 69, .part(64..<69)),
        ("bytes=-500", 69, .part(0..<69)),
        ("bytes=69-", 69, .unsatisfiable),
        ("bytes=-0", 69, .unsatisfiable),
        ("bytes=9-3", 69, .whole),
        ("bytes=0-1,5-6", 69, .whole),
        ("items=0-1", 69, .whole),
        ("bytes=x-1", 69, .whole),
    ])
    func aRangeHeaderIsReadAsRFC9110Says(header: String, size: Int, expected: ByteRange.Request) {
        #expect(ByteRange.request(header, size: size) == expected)
    }

    @Test func noHeaderMeansTheWholeBody() {
        #expect(ByteRange.request(nil, size: 10) == .whole)
    }
}

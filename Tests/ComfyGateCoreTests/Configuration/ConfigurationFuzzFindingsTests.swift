import ComfyGateCore
import Testing

/// Inputs found by Fuzz/FuzzConfig: durations that parse but trap once the server turns them into Int64
/// milliseconds or nanoseconds (`request_head_timeout = "1e20s"` stops `serve` with SIGILL).
@Suite struct ConfigurationFuzzFindingsTests {
    @Test(arguments: ["1e308w", "1e20s", "1e12d", "inf", "nan"])
    func durationsNoTimerCanHoldAreRefused(_ text: String) {
        #expect(DurationParser.seconds(text) == nil)
    }
}

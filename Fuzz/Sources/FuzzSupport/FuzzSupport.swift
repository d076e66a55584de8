import CLibFuzzer
import Foundation

/// Runs libFuzzer on `test` with the process's arguments (`-max_total_time=30 corpus/`, …) and exits.
///
/// SwiftPM gives every executable target a `main` of its own, so libFuzzer's `main` is never linked; this is
/// what it would do.
public func runFuzzer(_ test: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> Never {
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, test))
}

/// libFuzzer's input as a buffer.
public func fuzzInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> UnsafeBufferPointer<UInt8> {
    UnsafeBufferPointer(start: data, count: size)
}

public import Foundation

#if canImport(Glibc)
    import Glibc
    private let systemRead = Glibc.read
#elseif canImport(Darwin)
    import Darwin
    private let systemRead = Darwin.read
#endif

extension FileHandle {
    /// The bytes that can be read now (blocking until some are), empty at the end of the file. Unlike
    /// `availableData`, which traps when a signal interrupts the read (a child process ending sends one), this
    /// reads again.
    public func readAvailableBytes() -> Data {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = systemRead(fileDescriptor, &buffer, buffer.count)
            if count < 0, errno == EINTR { continue }
            return count > 0 ? Data(buffer[0..<count]) : Data()
        }
    }
}

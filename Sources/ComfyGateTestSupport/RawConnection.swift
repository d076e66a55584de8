import ComfyGateCore
import Dispatch
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A bare TCP client for what HTTP libraries hide: interim `100 Continue` answers, refused upgrades, malformed
/// requests, half-sent heads and closed connections.
///
/// Its blocking socket calls run on threads of their own, never on Swift concurrency's few threads (the
/// servers under test need those).
public final class RawConnection: @unchecked Sendable {
    private let descriptor: Int32

    public init(port: Int, timeoutSeconds: Int = 30) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw RawError.socket }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            close(descriptor)
            throw RawError.connect
        }
    }

    deinit { close(descriptor) }

    public func write(_ text: String) async throws {
        try await write(Array(text.utf8))
    }

    public func write(_ bytes: [UInt8]) async throws {
        try await DedicatedThread.run(name: "raw-connection") { try self.blockingWrite(bytes) }
    }

    private func blockingWrite(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard sent > 0 else { throw RawError.write }
            offset += sent
        }
    }

    /// Reads until `marker` has arrived (or the peer closes / the timeout passes) and returns everything read.
    public func read(until marker: String) async -> String {
        let bytes = await readBytes { String(decoding: $0, as: UTF8.self).contains(marker) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Reads until what has arrived is `complete` (or the peer closes / the timeout passes) and returns everything read.
    public func readBytes(until complete: @escaping @Sendable ([UInt8]) -> Bool) async -> [UInt8] {
        await DedicatedThread.run(name: "raw-connection") { self.blockingRead(until: complete) }
    }

    private func blockingRead(until complete: ([UInt8]) -> Bool) -> [UInt8] {
        var received = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 16384)
        while !complete(received) {
            let count = recv(descriptor, &chunk, chunk.count, 0)
            if count <= 0 { break }
            received += chunk[0..<count]
        }
        return received
    }

    /// Reads until the peer closes the connection (or the timeout passes): everything read, and whether the
    /// peer closed (an orderly close or a reset) rather than the wait timing out.
    public func readToEnd() async -> (text: String, closed: Bool) {
        let (bytes, closed) = await readBytesToEnd()
        return (String(decoding: bytes, as: UTF8.self), closed)
    }

    /// ``readToEnd()`` as bytes, for what is not text (websocket frames).
    public func readBytesToEnd() async -> (bytes: [UInt8], closed: Bool) {
        await DedicatedThread.run(name: "raw-connection") { self.blockingReadToEnd() }
    }

    private func blockingReadToEnd() -> (bytes: [UInt8], closed: Bool) {
        var received = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(descriptor, &chunk, chunk.count, 0)
            if count > 0 {
                received += chunk[0..<count]
                continue
            }
            return (received, count == 0 || errno == ECONNRESET)
        }
    }

    public enum RawError: Error {
        case socket, connect, write
    }
}

import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Loopback ports for servers a test starts with a port of its choosing.
public enum LoopbackPort {
    public struct Unavailable: Error {}

    /// A port on 127.0.0.1 nothing listens on now, below the system's ephemeral range when there is room there: a port
    /// the kernel hands out (to a listener on port 0 or to an outgoing connection) could be taken between this check
    /// and its use, and a test running beside this one would then hold it.
    public static func free() throws(Unavailable) -> Int {
        let ephemeralStart = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8))
            .flatMap { Int($0.split(whereSeparator: \.isWhitespace).first ?? "") } ?? 32768
        if ephemeralStart > 12_000 {
            for _ in 0..<64 {
                let candidate = Int.random(in: 10_000..<ephemeralStart)
                if bound(candidate) == candidate { return candidate }
            }
        }
        guard let port = bound(0) else { throw Unavailable() }
        return port
    }

    /// Binds `port` (0: any) on 127.0.0.1 and releases it at once: the port bound, or nil when it is taken.
    private static func bound(_ port: Int) -> Int? {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0
            }
        }
        return bound ? Int(UInt16(bigEndian: address.sin_port)) : nil
    }
}

import AsyncHTTPClient
import ComfyGateCore
import Foundation
import NIOCore
import NIOHTTP1

#if canImport(Glibc)
    import Glibc
#endif

/// The small questions setup asks of this machine: is a program there and what does it say, does a URL answer,
/// is a port free.
enum Probes {
    /// Runs a program; nil when it is not installed.
    static func run(_ command: [String], directory: String? = nil, timeout: Duration = .seconds(30)) async -> ChildProcess.Completion? {
        do {
            return try await ChildProcess.run(command, directory: directory, timeout: timeout)
        } catch {
            return nil
        }
    }

    /// The last non-empty line a program printed, for one-line reports.
    static func lastLine(_ text: String) -> String {
        text.split(whereSeparator: \.isNewline).last.map { String($0).trimmingCharacters(in: .whitespaces) } ?? "(no output)"
    }

    /// The status and body of a GET, or the reason it got none.
    static func get(_ url: String, timeout: Duration = .seconds(5)) async -> Result<(status: Int, body: String), ProbeFailure> {
        do {
            let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .init(timeout))
            let body = try await response.body.collect(upTo: 1 << 20)
            return .success((Int(response.status.code), String(buffer: body)))
        } catch let error as HTTPClientError where error == .deadlineExceeded {
            return .failure(ProbeFailure(description: "no answer within \(timeout.components.seconds) s"))
        } catch {
            let text = "\(error)"
            return .failure(ProbeFailure(description: text.lowercased().contains("connection refused") ? "connection refused" : text))
        }
    }

    struct ProbeFailure: Error, CustomStringConvertible {
        let description: String
    }

    /// Whether a TCP listener could bind `host:port` now.
    static func portIsFree(host: String, port: Int) -> Bool {
        var hints = addrinfo()
        hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &list) == 0, let info = list else { return false }
        defer { freeaddrinfo(list) }
        let socket = Glibc.socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { return false }
        defer { close(socket) }
        var reuse: Int32 = 1
        setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
        return bind(socket, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0
    }
}

import ComfyGateCore
import Foundation
import FuzzSupport

/// The configuration loader. The input up to its first NUL byte is the TOML file; after it, lines `--key=value`
/// are flags and lines `NAME=value` environment variables. Any input gives a configuration whose every setting
/// is within its documented range, or a `ConfigurationError` listing at least one problem — never a trap.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzConfig(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = fuzzInput(data, size)
    let fileEnd = bytes.firstIndex(of: 0) ?? size
    let fileText = String(decoding: bytes[..<fileEnd], as: UTF8.self)
    var flags: [String: String] = [:]
    var environment: [String: String] = [:]
    for line in String(decoding: bytes[min(fileEnd + 1, size)...], as: UTF8.self).split(separator: "\n") {
        guard let equals = line.firstIndex(of: "=") else { continue }
        let (name, value) = (String(line[..<equals]), String(line[line.index(after: equals)...]))
        if name.hasPrefix("--") { flags[String(name.dropFirst(2))] = value } else { environment[name] = value }
    }
    let configuration: GatewayConfiguration
    do {
        let layers = try ConfigurationLayers(flags: flags, environment: environment, fileText: fileText, filePath: "fuzz.toml")
        configuration = try GatewayConfiguration(layers: layers)
    } catch {
        precondition(!error.problems.isEmpty && error.problems.allSatisfy { !$0.isEmpty }, "an error without a problem")
        return 0
    }
    let c = configuration
    precondition(!c.listenHost.isEmpty && (0...65535).contains(c.listenPort), "listen \(c.listenHost):\(c.listenPort)")
    for url in [c.upstream, c.publicURL].compactMap({ $0 }) {
        precondition(["http", "https"].contains(url.scheme?.lowercased()) && url.host?.isEmpty == false, "URL \(url)")
    }
    precondition(!c.dataDirectory.isEmpty, "empty data directory")
    precondition(c.databaseURL.map { $0.hasPrefix("postgres://") || $0.hasPrefix("postgresql://") } ?? true, "database_url")
    let durations = [
        c.sessionIdleTimeout, c.sessionAbsoluteTimeout, c.upstreamConnectTimeout, c.upstreamTimeout, c.tokenCacheLifetime,
        c.requestHeadTimeout, c.keepAliveTimeout, c.requestBodyTimeout,
    ]
    // The server turns timeouts into NIO `TimeAmount`s and Swift `Duration`s: Int64 nanoseconds, which trap beyond.
    precondition(durations.allSatisfy { $0 > 0 && Int64(exactly: ($0 * 1e9).rounded(.up)) != nil }, "durations \(durations)")
    precondition(c.sessionIdleTimeout <= c.sessionAbsoluteTimeout, "idle timeout longer than absolute")
    precondition((1024...(1 << 30)).contains(c.maxWebSocketFrame) && (1...64).contains(c.bcryptConcurrency), "counts")
    precondition(["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(c.logLevel), "log level \(c.logLevel)")
    precondition(c.maxConnections.map { (1...1_000_000).contains($0) } ?? true, "max_connections \(c.maxConnections!)")
    precondition(c.trustedProxies.allSatisfy { !$0.isEmpty }, "empty trusted proxy")
    return 0
}

runFuzzer(fuzzConfig)

import Foundation
import ComfyGateCore

/// A certificate authority made for a test with `openssl` (on PATH), and the server certificates it signs, in a
/// temporary directory of its own. Nothing trusts it but what a test tells to.
public struct TestCertificateAuthority: Sendable {
    /// A PEM certificate and its PEM key, as ComfyUI's `--tls-certfile` and `--tls-keyfile` take them.
    public struct Issued: Sendable {
        public let certificateFile: String
        public let keyFile: String
    }

    /// `openssl` failed.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public let directory: String
    /// The authority's own certificate (PEM), the trust root to hand to a client.
    public var certificateFile: String { directory + "/ca.pem" }

    /// Makes a new authority (P-256, valid for two days) in a fresh temporary directory.
    public static func make() async throws -> TestCertificateAuthority {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("comfygate-ca-" + UUID().uuidString).path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let authority = TestCertificateAuthority(directory: directory)
        try await authority.openssl([
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
            "-keyout", directory + "/ca.key", "-out", authority.certificateFile, "-subj", "/CN=ComfyGate test CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        ])
        return authority
    }

    /// A server certificate and key signed by this authority for `names` (IP addresses or DNS names).
    public func issue(for names: [String], as fileName: String) async throws -> Issued {
        let base = directory + "/" + fileName
        let alternativeNames = names.map { (($0.contains(":") || $0.allSatisfy { $0.isNumber || $0 == "." }) ? "IP:" : "DNS:") + $0 }
        try "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=\(alternativeNames.joined(separator: ","))\n"
            .write(toFile: base + ".ext", atomically: true, encoding: .utf8)
        try await openssl([
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", base + ".key",
            "-out", base + ".csr", "-subj", "/CN=\(names.first ?? fileName)",
        ])
        try await openssl([
            "x509", "-req", "-in", base + ".csr", "-CA", certificateFile, "-CAkey", directory + "/ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", base + ".ext", "-out", base + ".pem",
        ])
        return Issued(certificateFile: base + ".pem", keyFile: base + ".key")
    }

    /// Deletes the directory and everything in it.
    public func remove() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func openssl(_ arguments: [String]) async throws {
        let completion = try await ChildProcess.run(["openssl"] + arguments, timeout: .seconds(60))
        guard completion.status == 0 else {
            throw Failure(description: "openssl \(arguments.first ?? "") failed: \(completion.output.suffix(500))")
        }
    }
}

import Foundation
import ComfyGateCore
#if canImport(Glibc)
    import Glibc
#endif

/// Runs nginx (on PATH, or /usr/sbin/nginx) on `127.0.0.1:<free port>` for the duration of `body`, serving the
/// http backend on `backendPort` under `prefix` (`/comfy`) as a reverse proxy deployment does: the prefix is
/// stripped, websocket upgrades pass, `Host` is the client's. It runs unprivileged from a temporary directory.
/// - Returns: what `body`, given nginx's port, returns.
public func withPrefixingReverseProxy<T: Sendable>(
    prefix: String, to backendPort: Int, _ body: (Int) async throws -> T
) async throws -> T {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("comfygate-nginx-" + UUID().uuidString).path
    try FileManager.default.createDirectory(atPath: directory + "/logs", withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let port = try LoopbackPort.free()
    // Workers of a master started as root would run as nobody, who cannot use the temporary directory.
    let user = getuid() == 0 ? "user root;\n" : ""
    try """
        \(user)worker_processes 1;
        pid \(directory)/nginx.pid;
        error_log \(directory)/logs/error.log;
        events { worker_connections 64; }
        http {
            access_log off;
            client_body_temp_path \(directory)/client_body;
            proxy_temp_path \(directory)/proxy;
            fastcgi_temp_path \(directory)/fastcgi;
            uwsgi_temp_path \(directory)/uwsgi;
            scgi_temp_path \(directory)/scgi;
            server {
                listen 127.0.0.1:\(port);
                location \(prefix)/ {
                    proxy_pass http://127.0.0.1:\(backendPort)/;
                    proxy_http_version 1.1;
                    proxy_set_header Host $http_host;
                    proxy_set_header Upgrade $http_upgrade;
                    proxy_set_header Connection "upgrade";
                    proxy_read_timeout 1h;
                }
            }
        }

        """.write(toFile: directory + "/nginx.conf", atomically: true, encoding: .utf8)
    let executable = FileManager.default.isExecutableFile(atPath: "/usr/sbin/nginx") ? "/usr/sbin/nginx" : "nginx"
    let nginx = try ChildProcess(
        [executable, "-p", directory, "-c", directory + "/nginx.conf", "-e", directory + "/logs/error.log", "-g", "daemon off;"],
        standardOutput: .null, standardError: .null)
    defer {
        nginx.send(SIGTERM)
        _ = nginx.waitForExit()
    }
    let listening = try await eventually(within: .seconds(20)) {
        nginx.isRunning && (try? RawConnection(port: port, timeoutSeconds: 1)) != nil
    }
    guard listening else {
        let log = (try? String(contentsOfFile: directory + "/logs/error.log", encoding: .utf8)) ?? ""
        throw ReverseProxyStartError(description: "nginx did not start listening on 127.0.0.1:\(port): \(log.suffix(500))")
    }
    return try await body(port)
}

/// nginx did not start.
public struct ReverseProxyStartError: Error, CustomStringConvertible {
    public let description: String
}

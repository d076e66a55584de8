import ComfyGateCore
import Foundation
import NIOSSL
import PostgresNIO

/// A parsed `postgres://user:password@host:port/database?sslmode=…` URL.
///
/// `sslmode` follows libpq: `disable`, `prefer` and `require` (encrypt without checking the certificate),
/// `verify-ca` (check the chain), `verify-full` (check the chain and the host name). Without `sslmode`,
/// loopback hosts use `disable` and every other host `verify-full`. Error messages never contain the
/// password.
struct PostgresURL {
    var host: String
    var port: Int
    var username: String
    var password: String?
    var database: String
    var sslMode: String

    static let sslModes = ["disable", "prefer", "require", "verify-ca", "verify-full"]

    init(_ url: String) throws(StoreError) {
        guard let components = URLComponents(string: url),
            let scheme = components.scheme, ["postgres", "postgresql"].contains(scheme.lowercased())
        else {
            throw Self.invalid("expected postgres://user:password@host:port/database")
        }
        guard var host = components.host, !host.isEmpty else { throw Self.invalid("the host is missing") }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard let username = components.user, !username.isEmpty else { throw Self.invalid("the user name is missing") }

        let database = String(components.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty, !database.contains("/") else {
            throw Self.invalid("the path must name one database, e.g. /comfygate")
        }

        var sslMode: String?
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                guard let value = item.value, Self.sslModes.contains(value) else {
                    throw Self.invalid("sslmode must be one of \(Self.sslModes.joined(separator: ", "))")
                }
                sslMode = value
            default:
                throw Self.invalid("unsupported parameter '\(item.name)' (only sslmode is supported)")
            }
        }

        self.host = host
        self.port = components.port ?? 5432
        self.username = username
        self.password = components.password
        self.database = database
        self.sslMode = sslMode ?? (Self.isLoopback(host) ? "disable" : "verify-full")
    }

    /// `host:port/database`: where the store is, for messages. Never includes credentials.
    var location: String {
        let shownHost = host.contains(":") ? "[\(host)]" : host
        return "postgres at \(shownHost):\(port)/\(database)"
    }

    /// The client configuration for this URL.
    var clientConfiguration: PostgresClient.Configuration {
        PostgresClient.Configuration(
            host: host,
            port: port,
            username: username,
            password: password,
            database: database,
            tls: tls
        )
    }

    private var tls: PostgresClient.Configuration.TLS {
        guard let (configuration, required) = tlsSetting else { return .disable }
        return required ? .require(configuration) : .prefer(configuration)
    }

    /// The configuration of one direct connection (the first check, whose failure is reported as it is).
    func connectionConfiguration() throws -> PostgresConnection.Configuration {
        var tls = PostgresConnection.Configuration.TLS.disable
        if let (configuration, required) = tlsSetting {
            let context = try NIOSSLContext(configuration: configuration)
            tls = required ? .require(context) : .prefer(context)
        }
        return PostgresConnection.Configuration(
            host: host, port: port, username: username, password: password, database: database, tls: tls)
    }

    /// The TLS settings of `sslmode`: nil for none; else the configuration and whether TLS is required.
    private var tlsSetting: (configuration: TLSConfiguration, required: Bool)? {
        var configuration = TLSConfiguration.makeClientConfiguration()
        switch sslMode {
        case "disable":
            return nil
        case "prefer":
            configuration.certificateVerification = .none
            return (configuration, false)
        case "require":
            configuration.certificateVerification = .none
            return (configuration, true)
        case "verify-ca":
            configuration.certificateVerification = .noHostnameVerification
            return (configuration, true)
        default:
            return (configuration, true)
        }
    }

    private static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    private static func invalid(_ why: String) -> StoreError {
        .unavailable("invalid PostgreSQL URL: \(why)")
    }
}

public import ComfyGatePolicy
import ComfyGateTOML
public import Foundation

/// Everything `comfygate serve` needs to know, validated.
///
/// Settings (file key / flag / environment variable):
/// - `listen` / `--listen` / `COMFYGATE_LISTEN`: `host:port` to accept clients on (default `127.0.0.1:8189`; port 0
///   picks a free port, logged at start).
/// - `upstream`: ComfyUI's base URL (default `http://127.0.0.1:8188`): the one-backend shorthand, named `comfyui`.
/// - `[[backends]]` (file only): several ComfyUI backends, each `name`, `url`, `weight`, `in_flight`, `labels` (see
///   ``BackendConfiguration``); the file may have these or `upstream`, and `--upstream`/`COMFYGATE_UPSTREAM` replace them.
/// - `data`: directory for the embedded store (default `./comfygate-data`).
/// - `database_url`: a `postgres://` URL to share state between replicas instead of the embedded SQLite file.
/// - `public_url`: the URL browsers use; `https` makes session cookies `Secure`.
/// - `site_name`: the deployment's name on the sign-in page and the gateway's pages (default `ComfyUI`).
/// - `trusted_proxies`: comma-separated addresses whose `X-Forwarded-*` headers are believed.
/// - `session_idle_timeout` (default `12h`), `session_absolute_timeout` (default `7d`).
/// - `upstream_connect_timeout` (default `5s`), `upstream_timeout`: longest silence from ComfyUI (default `300s`).
/// - `max_websocket_frame`: largest websocket frame relayed, in bytes (default 16 MiB).
/// - `token_cache_lifetime`: how long a bcrypt check of an imported token is remembered (default `5m`).
/// - `bcrypt_concurrency`: bcrypt computations at once for token checks, and as many again for password logins
///   (default 2).
/// - `log_level`: `trace`, `debug`, `info` (default), `notice`, `warning`, `error`.
/// - `log_format`: `logfmt` (default: one `key=value` line per event) or `json` (one JSON object per line, with the
///   keys `time`, `level`, `label`, `msg`, then the event's own): the form of every log line.
/// - `access_log`: one line per request at level info — method, path without its query, status, bytes, duration,
///   user, client address, route class and request path; never a credential (default `true`).
/// - `metrics`: counts and times requests, sign-in failures, websockets, the job queue and ComfyUI for
///   `GET /metrics` in Prometheus' text format, which admins may read (default `true`; `false` records nothing and
///   `/metrics` answers 404).
/// - `metrics_token_file`: a file (mode 0600 or stricter) whose first line is a token of at least 16 characters
///   that a Prometheus scraper sends as `Authorization: Bearer <token>` to read `/metrics`, and nothing else.
/// - `max_connections`: open client connections at once; more are closed as they arrive (default: from the
///   file-descriptor limit, see ``ConnectionLimits``).
/// - `request_head_timeout` (default `15s`): longest time from a request's first byte (a new connection's
///   accept) to the end of its head.
/// - `keep_alive_timeout` (default `75s`): longest wait for the next request on an idle connection.
/// - `request_body_timeout` (default `60s`): longest wait for more of a request body the gateway is ready to read.
/// - `[policy]` `admin_only_paths`, `denied_paths`: route patterns (`/route` or `/route/*`, without `/api`) only admins
///   may use, or nobody; `denied_nodes`: node class types non-admins may not run.
/// - `[jobs]` `in_flight`: jobs handed to ComfyUI at once, running or waiting there (default 2); `fair_share_window`:
///   how far back GPU time counts when choosing whose job goes next (default `1h`); `retention`: how long finished
///   jobs and their outputs are kept (default `30d`); `dispatch_lease`: with replicas, how long a job claimed by one is
///   left to it before another takes it back (default `30s`).
/// - `[quotas.admin]`, `[quotas.user]`, `[quotas.viewer]`: each role's limits, `max_waiting_jobs`, `jobs_per_day`,
///   `gpu_seconds_per_day`, `max_image_area` (pixels); none by default. Per-user settings override them.
public struct GatewayConfiguration: Sendable, Equatable {
    public var listenHost: String
    public var listenPort: Int
    /// ComfyUI's base URL: the one backend when ``configuredBackends`` is empty, else the first backend's.
    public var upstream: URL
    /// The `[[backends]]` tables; empty means the one backend at ``upstream``.
    public var configuredBackends: [BackendConfiguration]
    public var dataDirectory: String
    public var databaseURL: String?
    public var publicURL: URL?
    /// The deployment's name, shown on the gateway's pages.
    public var siteName: String
    public var trustedProxies: [String]
    public var sessionIdleTimeout: TimeInterval
    public var sessionAbsoluteTimeout: TimeInterval
    public var upstreamConnectTimeout: TimeInterval
    public var upstreamTimeout: TimeInterval
    public var maxWebSocketFrame: Int
    public var tokenCacheLifetime: TimeInterval
    public var bcryptConcurrency: Int
    public var logLevel: String
    /// The form of every log line.
    public var logFormat: LogFormat
    /// Whether each request is logged.
    public var accessLog: Bool
    /// Whether the gateway keeps metrics and serves them at `/metrics`.
    public var metrics: Bool
    /// The scraper's token for `/metrics`, read from `metrics_token_file` at start.
    public var metricsToken: ScrapeToken?
    /// Open client connections at once; nil derives the cap from the file-descriptor limit.
    public var maxConnections: Int?
    public var requestHeadTimeout: TimeInterval
    public var keepAliveTimeout: TimeInterval
    public var requestBodyTimeout: TimeInterval
    /// What the `[policy]` section adds to the built-in access rules.
    public var policy: PolicyRules
    /// How the gateway's job queue runs.
    public var jobs: JobSettings
    /// Each role's quota limits (a role without an entry has none).
    public var quotas: [Role: QuotaLimits]

    /// Every setting name, as written in the configuration file.
    public static let knownKeys: Set<String> = Set([
        "listen", "upstream", "data", "database_url", "public_url", "site_name", "trusted_proxies", "session_idle_timeout",
        "session_absolute_timeout", "upstream_connect_timeout", "upstream_timeout", "max_websocket_frame",
        "token_cache_lifetime", "bcrypt_concurrency", "log_level", "log_format", "access_log", "metrics", "metrics_token_file",
        "max_connections", "request_head_timeout",
        "keep_alive_timeout", "request_body_timeout", "policy.admin_only_paths", "policy.denied_paths", "policy.denied_nodes",
        "jobs.in_flight", "jobs.fair_share_window", "jobs.retention", "jobs.dispatch_lease",
    ]).union(Role.allCases.flatMap { role in QuotaLimits.Setting.allCases.map { "quotas.\(role.rawValue).\($0.rawValue)" } })

    /// The defaults, as used when nothing is configured.
    public init(
        listenHost: String = "127.0.0.1",
        listenPort: Int = 8189,
        upstream: URL = URL(string: "http://127.0.0.1:8188")!,
        configuredBackends: [BackendConfiguration] = [],
        dataDirectory: String = "./comfygate-data",
        databaseURL: String? = nil,
        publicURL: URL? = nil,
        siteName: String = "ComfyUI",
        trustedProxies: [String] = [],
        sessionIdleTimeout: TimeInterval = 12 * 3600,
        sessionAbsoluteTimeout: TimeInterval = 7 * 86_400,
        upstreamConnectTimeout: TimeInterval = 5,
        upstreamTimeout: TimeInterval = 300,
        maxWebSocketFrame: Int = 16 << 20,
        tokenCacheLifetime: TimeInterval = 300,
        bcryptConcurrency: Int = 2,
        logLevel: String = "info",
        logFormat: LogFormat = .logfmt,
        accessLog: Bool = true,
        metrics: Bool = true,
        metricsToken: ScrapeToken? = nil,
        maxConnections: Int? = nil,
        requestHeadTimeout: TimeInterval = 15,
        keepAliveTimeout: TimeInterval = 75,
        requestBodyTimeout: TimeInterval = 60,
        policy: PolicyRules = PolicyRules(),
        jobs: JobSettings = JobSettings(),
        quotas: [Role: QuotaLimits] = [:]
    ) {
        self.listenHost = listenHost
        self.listenPort = listenPort
        self.upstream = configuredBackends.first?.url ?? upstream
        self.configuredBackends = configuredBackends
        self.dataDirectory = dataDirectory
        self.databaseURL = databaseURL
        self.publicURL = publicURL
        self.siteName = siteName
        self.trustedProxies = trustedProxies
        self.sessionIdleTimeout = sessionIdleTimeout
        self.sessionAbsoluteTimeout = sessionAbsoluteTimeout
        self.upstreamConnectTimeout = upstreamConnectTimeout
        self.upstreamTimeout = upstreamTimeout
        self.maxWebSocketFrame = maxWebSocketFrame
        self.tokenCacheLifetime = tokenCacheLifetime
        self.bcryptConcurrency = bcryptConcurrency
        self.logLevel = logLevel
        self.logFormat = logFormat
        self.accessLog = accessLog
        self.metrics = metrics
        self.metricsToken = metricsToken
        self.maxConnections = maxConnections
        self.requestHeadTimeout = requestHeadTimeout
        self.keepAliveTimeout = keepAliveTimeout
        self.requestBodyTimeout = requestBodyTimeout
        self.policy = policy
        self.jobs = jobs
        self.quotas = quotas
    }

    /// Reads and validates every setting, reporting all problems at once.
    public init(layers: ConfigurationLayers) throws(ConfigurationError) {
        self.init()
        var problems: [String] = []
        func read<T>(_ key: String, _ parse: (String) -> T?, expected: String) -> T? {
            guard let value = layers[key] else { return nil }
            if let parsed = parse(value.text) { return parsed }
            problems.append("\(key) (from \(value.source)): '\(value.text)' is not \(expected)")
            return nil
        }
        if let (host, port) = read("listen", Self.parseHostPort, expected: "host:port with a port from 0 to 65535") {
            listenHost = host
            listenPort = port
        }
        if let url = read("upstream", Self.parseHTTPURL, expected: "an http:// or https:// URL") { upstream = url }
        if !layers.backendTables.isEmpty {
            if let chosen = layers["upstream"], chosen.source == layers.backendSource {
                problems.append("\(chosen.source): has both upstream and [[backends]]: keep one (upstream is the one-backend shorthand)")
            } else if layers["upstream"] == nil {
                configuredBackends = Self.parseBackends(layers.backendTables, source: layers.backendSource, problems: &problems)
                if let first = configuredBackends.first { upstream = first.url }
            }
        }
        if let directory = read("data", { $0.isEmpty ? nil : $0 }, expected: "a directory path") { dataDirectory = directory }
        databaseURL = read("database_url", { $0.hasPrefix("postgres://") || $0.hasPrefix("postgresql://") ? $0 : nil },
            expected: "a postgres:// URL")
        publicURL = read("public_url", Self.parseHTTPURL, expected: "an http:// or https:// URL")
        if let name = read("site_name", { text in
            let trimmed = text.trimmingCharacters(in: .whitespaces)
            return (1...80).contains(trimmed.count) && !trimmed.contains(where: \.isNewline) ? trimmed : nil
        }, expected: "a name of 1 to 80 characters on one line") { siteName = name }
        if let proxies = read("trusted_proxies", Self.parseAddressList, expected: "a comma-separated list of IP addresses") {
            trustedProxies = proxies
        }
        let duration = { (text: String) in DurationParser.seconds(text) }
        let durationText = "a duration such as 90s, 30m, 12h or 7d"
        if let value = read("session_idle_timeout", duration, expected: durationText) { sessionIdleTimeout = value }
        if let value = read("session_absolute_timeout", duration, expected: durationText) { sessionAbsoluteTimeout = value }
        if let value = read("upstream_connect_timeout", duration, expected: durationText) { upstreamConnectTimeout = value }
        if let value = read("upstream_timeout", duration, expected: durationText) { upstreamTimeout = value }
        if let value = read("token_cache_lifetime", duration, expected: durationText) { tokenCacheLifetime = value }
        if let value = read("max_websocket_frame", { Int($0).flatMap { (1024...(1 << 30)).contains($0) ? $0 : nil } },
            expected: "a byte count from 1024 to 1073741824") { maxWebSocketFrame = value }
        if let value = read("bcrypt_concurrency", { Int($0).flatMap { (1...64).contains($0) ? $0 : nil } },
            expected: "a whole number from 1 to 64") { bcryptConcurrency = value }
        if let value = read("request_head_timeout", duration, expected: durationText) { requestHeadTimeout = value }
        if let value = read("keep_alive_timeout", duration, expected: durationText) { keepAliveTimeout = value }
        if let value = read("request_body_timeout", duration, expected: durationText) { requestBodyTimeout = value }
        if let value = read("max_connections", { Int($0).flatMap { (1...1_000_000).contains($0) ? $0 : nil } },
            expected: "a whole number from 1 to 1000000") { maxConnections = value }
        let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
        if let value = read("log_level", { levels.contains($0.lowercased()) ? $0.lowercased() : nil },
            expected: "one of " + levels.joined(separator: ", ")) { logLevel = value }
        if let value = read("log_format", { LogFormat(rawValue: $0.lowercased()) },
            expected: "one of " + LogFormat.allCases.map(\.rawValue).joined(separator: ", ")) { logFormat = value }
        let boolean = { (text: String) -> Bool? in ["true": true, "false": false][text.lowercased()] }
        if let value = read("access_log", boolean, expected: "true or false") { accessLog = value }
        if let value = read("metrics", boolean, expected: "true or false") { metrics = value }
        if let file = layers["metrics_token_file"] {
            do {
                metricsToken = try ScrapeToken(file: file.text)
            } catch {
                problems.append("metrics_token_file (from \(file.source)): \(error)")
            }
        }
        let patterns = { (text: String) -> [PathPattern]? in
            let items = Self.listItems(text)
            let parsed = items.compactMap(PathPattern.init)
            return parsed.count == items.count ? parsed : nil
        }
        let patternText = "a list of routes such as \"/free\" or \"/manager/*\" (a leading /, * only as a final /*, no /api prefix)"
        if let value = read("policy.admin_only_paths", patterns, expected: patternText) { policy.adminOnlyPaths = value }
        if let value = read("policy.denied_paths", patterns, expected: patternText) { policy.deniedPaths = value }
        if let value = read("policy.denied_nodes", { Set(Self.listItems($0)) }, expected: "a list of node class types") {
            policy.deniedNodeClasses = value
        }
        if let value = read("jobs.in_flight", { Int($0).flatMap { (1...64).contains($0) ? $0 : nil } },
            expected: "a whole number from 1 to 64") { jobs.inFlight = value }
        if let value = read("jobs.fair_share_window", duration, expected: durationText) { jobs.fairShareWindow = value }
        if let value = read("jobs.retention", duration, expected: durationText) { jobs.retention = value }
        if let value = read("jobs.dispatch_lease", { DurationParser.seconds($0).flatMap { (3...3600).contains($0) ? $0 : nil } },
            expected: "a duration from 3s to 1h") { jobs.dispatchLease = value }
        for role in Role.allCases {
            var limits = QuotaLimits()
            for setting in QuotaLimits.Setting.allCases {
                limits[setting] = read("quotas.\(role.rawValue).\(setting.rawValue)", { QuotaLimits.parse($0, for: setting) },
                    expected: setting.isWholeNumber ? "a whole number, 0 or more" : "a number of seconds, 0 or more")
            }
            if limits != QuotaLimits() { quotas[role] = limits }
        }
        if sessionIdleTimeout > sessionAbsoluteTimeout {
            problems.append("session_idle_timeout is longer than session_absolute_timeout")
        }
        if !problems.isEmpty { throw ConfigurationError(problems: problems) }
    }

    /// The backends jobs go to: the `[[backends]]` tables, or the one at ``upstream`` named `comfyui`; a backend's
    /// slots default to `[jobs] in_flight`.
    public var backends: [BackendConfiguration] {
        let listed = configuredBackends.isEmpty
            ? [BackendConfiguration(name: BackendConfiguration.shorthandName, url: upstream)] : configuredBackends
        return listed.map { backend in
            var resolved = backend
            resolved.slots = backend.slots ?? jobs.inFlight
            return resolved
        }
    }

    /// Reads `[[backends]]` tables, naming the table and key of every problem.
    static func parseBackends(_ tables: [TOMLTable], source: String, problems: inout [String]) -> [BackendConfiguration] {
        var backends: [BackendConfiguration] = []
        for (index, table) in tables.enumerated() {
            let place = "\(source): [[backends]] #\(index + 1)"
            for key in table.keys where !BackendConfiguration.knownKeys.contains(key) {
                problems.append("\(place): unknown setting '\(key)'")
            }
            guard let name = table["name"]?.string, BackendConfiguration.isValidName(name) else {
                problems.append("\(place): name must be 1 to 40 of a-z, 0-9, - and _")
                continue
            }
            guard let url = table["url"]?.string.flatMap(parseHTTPURL) else {
                problems.append("\(place) (\(name)): url must be an http:// or https:// URL")
                continue
            }
            var backend = BackendConfiguration(name: name, url: url)
            if let weight = table["weight"] {
                let value = weight.float ?? weight.integer.map(Double.init)
                if let value, value > 0, value <= 1000 { backend.weight = value } else {
                    problems.append("\(place) (\(name)): weight must be a number above 0 and at most 1000")
                }
            }
            if let slots = table["in_flight"] {
                if let value = slots.integer, (1...64).contains(value) { backend.slots = Int(value) } else {
                    problems.append("\(place) (\(name)): in_flight must be a whole number from 1 to 64")
                }
            }
            if let labels = table["labels"] {
                let strings = labels.table.map { table in table.compactMap { entry in entry.value.string.map { (entry.key, $0) } } }
                if let strings, strings.count == labels.table?.count {
                    backend.labels = Dictionary(strings, uniquingKeysWith: { $1 })
                } else {
                    problems.append("\(place) (\(name)): labels must be a table of strings, e.g. { gpu = \"RTX 4090\" }")
                }
            }
            if backends.contains(where: { $0.name == name }) {
                problems.append("\(place): the name '\(name)' is used by another backend")
            } else if backends.contains(where: { $0.url == url }) {
                problems.append("\(place) (\(name)): \(url.absoluteString) is already another backend's url")
            } else {
                backends.append(backend)
            }
        }
        return backends
    }

    /// Session cookies get `Secure` when browsers reach the gateway over https.
    public var usesSecureCookies: Bool { publicURL?.scheme == "https" }

    static func parseHostPort(_ text: String) -> (String, Int)? {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        return (host, port)
    }

    static func parseHTTPURL(_ text: String) -> URL? {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme),
            let host = url.host, !host.isEmpty
        else { return nil }
        return url
    }

    /// The items of a comma-separated list, trimmed, empty ones dropped.
    static func listItems(_ text: String) -> [String] {
        text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    static func parseAddressList(_ text: String) -> [String]? {
        let items = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let isAddress = { (item: String) in
            item.allSatisfy { $0.isHexDigit || $0 == "." || $0 == ":" } && (item.contains(".") || item.contains(":"))
        }
        return items.allSatisfy(isAddress) ? items : nil
    }
}

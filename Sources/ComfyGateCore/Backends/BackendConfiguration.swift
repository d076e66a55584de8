public import Foundation

/// One ComfyUI the gateway dispatches jobs to, as configured in a `[[backends]]` table of `comfygate.toml`.
///
/// ```toml
/// [[backends]]
/// name = "gpu0"
/// url = "http://127.0.0.1:8188"
/// weight = 2          # share of the work when several could take a job (default 1)
/// in_flight = 2       # jobs handed to it at once (default: [jobs] in_flight)
/// labels = { gpu = "RTX 4090" }
/// ```
public struct BackendConfiguration: Sendable, Equatable {
    /// How commands, logs, metrics and stored jobs name it: 1 to 40 of `a-z`, `0-9`, `-`, `_`.
    public var name: String
    /// Its base URL, `http` or `https`, with an optional path prefix (behind a reverse proxy).
    public var url: URL
    /// Its share of the work relative to the others: load is compared as jobs out there divided by weight.
    public var weight: Double
    /// Jobs handed to it at once, running or waiting in its own queue; nil takes `[jobs] in_flight`.
    public var slots: Int?
    /// Free-form labels shown by `comfygate backends` and on the admin page.
    public var labels: [String: String]

    public init(name: String, url: URL, weight: Double = 1, slots: Int? = nil, labels: [String: String] = [:]) {
        self.name = name
        self.url = url
        self.weight = weight
        self.slots = slots
        self.labels = labels
    }

    /// The name `--upstream` (the one-backend shorthand) gives its backend.
    public static let shorthandName = "comfyui"

    /// The keys a `[[backends]]` table may have.
    static let knownKeys: Set<String> = ["name", "url", "weight", "in_flight", "labels"]

    /// Whether a name is usable: 1 to 40 of `a-z`, `0-9`, `-`, `_`, starting with a letter or digit.
    public static func isValidName(_ name: String) -> Bool {
        guard (1...40).contains(name.count), let first = name.unicodeScalars.first, first != "-", first != "_" else {
            return false
        }
        return name.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" || $0 == "_" }
    }
}

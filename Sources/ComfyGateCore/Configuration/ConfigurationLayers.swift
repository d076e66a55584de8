import ComfyGateTOML
import Foundation

/// Raw configuration values from every source, merged with precedence flags > environment > file > defaults.
///
/// Each key is written the same way everywhere: `public_url` in the file, `--public-url` as a flag and
/// `COMFYGATE_PUBLIC_URL` in the environment. A value remembers where it came from so errors can name it.
public struct ConfigurationLayers: Sendable {
    /// A value and the place it came from, e.g. `--listen`, `COMFYGATE_LISTEN` or `comfygate.toml`.
    public struct Value: Sendable, Equatable {
        public var text: String
        public var source: String
    }

    private var values: [String: Value] = [:]
    /// Keys present in the file that no setting knows about.
    public private(set) var unknownFileKeys: [String] = []
    /// The file's `[[backends]]` tables, in order, and the file they came from; empty when it has none.
    private(set) var backendTables: [TOMLTable] = []
    private(set) var backendSource = "configuration file"

    public init() {}

    /// Merges the layers. `flags` are keyed by setting name (`public_url`); `environment` is the whole process
    /// environment, of which only `COMFYGATE_*` variables are read.
    public init(flags: [String: String], environment: [String: String], fileText: String?, filePath: String?) throws(ConfigurationError) {
        if let fileText {
            let path = filePath ?? "configuration file"
            let table: TOMLTable
            do {
                table = try TOML.parse(fileText)
            } catch {
                throw ConfigurationError(problems: [error.message(file: path)])
            }
            if let backends = table["backends"] {
                backendSource = path
                guard let tables = backends.array?.compactMap(\.table), tables.count == backends.array?.count, !tables.isEmpty else {
                    throw ConfigurationError(problems: ["\(path): backends must be [[backends]] tables, each with a name and a url"])
                }
                backendTables = tables
            }
            for (key, node) in Self.flattenSections(table) where key != "backends" {
                guard GatewayConfiguration.knownKeys.contains(key) else {
                    unknownFileKeys.append(key)
                    continue
                }
                values[key] = Value(text: Self.render(node), source: path)
            }
            if !unknownFileKeys.isEmpty {
                throw ConfigurationError(problems: unknownFileKeys.sorted().map { "\(path): unknown setting '\($0)'" })
            }
        }
        for key in GatewayConfiguration.knownKeys {
            let variable = "COMFYGATE_" + key.uppercased().replacingOccurrences(of: ".", with: "_")
            if let text = environment[variable] { values[key] = Value(text: text, source: variable) }
        }
        for (key, text) in flags {
            values[key] = Value(text: text, source: "--" + key.replacingOccurrences(of: "_", with: "-"))
        }
    }

    public subscript(key: String) -> Value? { values[key] }

    /// The file's settings with those of its sections (`[policy]`, `[quotas.user]`) named `section.key`.
    private static func flattenSections(_ table: TOMLTable, prefix: String = "") -> [(String, TOMLValue)] {
        var flat: [(String, TOMLValue)] = []
        for (key, node) in table {
            let path = prefix + key
            if case .table(let section) = node, GatewayConfiguration.knownKeys.contains(where: { $0.hasPrefix(path + ".") }) {
                flat += flattenSections(section, prefix: path + ".")
            } else {
                flat.append((path, node))
            }
        }
        return flat
    }

    /// Arrays become comma-separated lists; other values their plain text.
    private static func render(_ node: TOMLValue) -> String {
        switch node {
        case .string(let string): string
        case .integer(let integer): String(integer)
        case .float(let float): String(float)
        case .boolean(let boolean): String(boolean)
        case .dateTime(let dateTime): dateTime.text
        case .array(let array): array.map(render).joined(separator: ",")
        case .table(let table): "{" + table.map { "\($0.key) = \(render($0.value))" }.joined(separator: ", ") + "}"
        }
    }
}

/// One or more problems with the configuration, each naming the setting and where its value came from.
public struct ConfigurationError: Error, Equatable, CustomStringConvertible {
    public var problems: [String]

    public init(problems: [String]) { self.problems = problems }

    public var description: String { problems.joined(separator: "\n") }
}

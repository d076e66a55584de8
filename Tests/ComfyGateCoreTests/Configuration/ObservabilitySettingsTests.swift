import ComfyGateCore
import Foundation
import Testing

/// `log_format`, `access_log`, `metrics` and `metrics_token_file`.
@Suite struct ObservabilitySettingsTests {
    /// A scrape token file with `mode`, removed after `body`.
    static func withTokenFile<T>(_ text: String, mode: Int, _ body: (String) throws -> T) throws -> T {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("comfygate-scrape-" + UUID().uuidString)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("scrape-token")
        try Data(text.utf8).write(to: file)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: file.path)
        return try body(file.path)
    }

    static func configuration(_ fileText: String, environment: [String: String] = [:]) throws -> GatewayConfiguration {
        try GatewayConfiguration(
            layers: ConfigurationLayers(flags: [:], environment: environment, fileText: fileText, filePath: "gate.toml"))
    }

    @Test func theDefaultsLogLogfmtAndEveryRequestAndKeepMetricsWithoutAScrapeToken() throws {
        let configuration = try GatewayConfiguration(layers: ConfigurationLayers())
        #expect(configuration.logFormat == .logfmt)
        #expect(configuration.accessLog)
        #expect(configuration.metrics)
        #expect(configuration.metricsToken == nil)
    }

    @Test func theSettingsAreReadFromTheFileAndTheEnvironment() throws {
        let token = "scrape-" + String(repeating: "k", count: 24)
        try Self.withTokenFile(token + "\n", mode: 0o600) { path in
            let configuration = try Self.configuration(
                "log_format = \"json\"\naccess_log = false\nmetrics_token_file = \"\(path)\"\n", environment: ["COMFYGATE_METRICS": "false"])
            #expect(configuration.logFormat == .json)
            #expect(!configuration.accessLog)
            #expect(!configuration.metrics)
            let scrapeToken = try #require(configuration.metricsToken)
            #expect(scrapeToken.matches(token))
            #expect(!scrapeToken.matches(token + "x"))
            #expect(!scrapeToken.matches(String(token.dropLast())))
            #expect(!"\(configuration)".contains(token), "the token never shows in a description")
        }
        try Self.withTokenFile(String(repeating: "t", count: 16), mode: 0o400) { path in
            let configuration = try Self.configuration("metrics_token_file = \"\(path)\"")
            #expect(configuration.metricsToken != nil, "0400 is stricter than 0600")
        }
    }

    @Test func aScrapeTokenFileOthersCanReadIsRefusedWithOneClearLine() throws {
        let token = String(repeating: "s", count: 32)
        try Self.withTokenFile(token, mode: 0o644) { path in
            let error = #expect(throws: ConfigurationError.self) { try Self.configuration("metrics_token_file = \"\(path)\"") }
            #expect(error?.problems == [
                "metrics_token_file (from gate.toml): \(path) has mode 0644: the scrape token file must be readable by its owner only (chmod 600 \(path))"
            ])
            #expect(error.map { !"\($0)".contains(token) } == true)
        }
    }

    @Test func badValuesAreReportedWithTheirKeys() throws {
        try Self.withTokenFile("short\n", mode: 0o600) { path in
            let error = #expect(throws: ConfigurationError.self) {
                try Self.configuration(
                    "log_format = \"xml\"\naccess_log = \"sometimes\"\nmetrics = 1\nmetrics_token_file = \"\(path)\"\n")
            }
            let problems = error?.problems ?? []
            #expect(problems.count == 4)
            #expect(problems.contains("log_format (from gate.toml): 'xml' is not one of logfmt, json"))
            #expect(problems.contains("access_log (from gate.toml): 'sometimes' is not true or false"))
            #expect(problems.contains("metrics (from gate.toml): '1' is not true or false"))
            #expect(problems.contains(
                "metrics_token_file (from gate.toml): \(path) does not hold a token of at least 16 printable ASCII characters on its first line"))
        }
        let missing = #expect(throws: ConfigurationError.self) { try Self.configuration("metrics_token_file = \"/nonexistent/scrape\"") }
        #expect(missing?.problems == ["metrics_token_file (from gate.toml): /nonexistent/scrape does not exist"])
    }
}

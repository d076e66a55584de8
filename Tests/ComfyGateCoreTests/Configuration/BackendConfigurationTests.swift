import ComfyGateCore
import Foundation
import Testing

@Suite struct BackendConfigurationTests {
    private func configuration(file: String, flags: [String: String] = [:], environment: [String: String] = [:]) throws
        -> GatewayConfiguration
    {
        try GatewayConfiguration(layers: ConfigurationLayers(flags: flags, environment: environment, fileText: file, filePath: "comfygate.toml"))
    }

    private func problems(file: String) -> [String] {
        do {
            _ = try configuration(file: file)
            return []
        } catch let error as ConfigurationError {
            return error.problems
        } catch {
            return ["\(error)"]
        }
    }

    @Test func twoGPUsReadWithTheirSettings() throws {
        let read = try configuration(file: """
            [jobs]
            in_flight = 3

            [[backends]]
            name = "gpu0"
            url = "http://127.0.0.1:8188"
            weight = 2
            labels = { gpu = "RTX 4090" }

            [[backends]]
            name = "gpu1"
            url = "https://comfy.internal/gpu1/"
            in_flight = 1
            """)
        #expect(read.backends.map(\.name) == ["gpu0", "gpu1"])
        #expect(read.backends[0].weight == 2)
        #expect(read.backends[0].slots == 3, "a backend's slots default to [jobs] in_flight")
        #expect(read.backends[0].labels == ["gpu": "RTX 4090"])
        #expect(read.backends[1].slots == 1)
        #expect(read.backends[1].url.absoluteString == "https://comfy.internal/gpu1/")
        #expect(read.upstream.absoluteString == "http://127.0.0.1:8188", "upstream is the first backend's URL")
    }

    @Test func upstreamIsTheOneBackendShorthand() throws {
        let read = try configuration(file: #"upstream = "http://127.0.0.1:9000""#)
        #expect(read.backends == [BackendConfiguration(name: "comfyui", url: URL(string: "http://127.0.0.1:9000")!, slots: 2)])
        #expect(GatewayConfiguration().backends.map(\.url.absoluteString) == ["http://127.0.0.1:8188"])
    }

    @Test func anUpstreamFlagReplacesTheFilesBackends() throws {
        let file = """
            [[backends]]
            name = "gpu0"
            url = "http://127.0.0.1:8188"
            """
        let read = try configuration(file: file, flags: ["upstream": "http://127.0.0.1:7000"])
        #expect(read.backends.map(\.name) == ["comfyui"])
        #expect(read.backends[0].url.absoluteString == "http://127.0.0.1:7000")
        let fromEnvironment = try configuration(file: file, environment: ["COMFYGATE_UPSTREAM": "http://127.0.0.1:7001"])
        #expect(fromEnvironment.backends.map(\.url.absoluteString) == ["http://127.0.0.1:7001"])
    }

    /// Five `[[backends]]` tables, each with problems.
    private static let badTables = """
        [[backends]]
        name = "GPU zero"
        url = "http://127.0.0.1:8188"

        [[backends]]
        name = "gpu1"
        url = "ftp://example"

        [[backends]]
        name = "gpu2"
        url = "http://127.0.0.1:8190"
        weight = 0
        in_flight = 100
        labels = { gpu = 4090 }
        colour = "blue"

        [[backends]]
        name = "gpu2"
        url = "http://127.0.0.1:8191"

        [[backends]]
        name = "gpu3"
        url = "http://127.0.0.1:8190"
        """

    @Test func everyProblemIsNamedWithItsTable() {
        let found = problems(file: #"upstream = "http://127.0.0.1:1""# + "\n\n" + Self.badTables)
        #expect(found.contains("comfygate.toml: has both upstream and [[backends]]: keep one (upstream is the one-backend shorthand)"))
        let tables = problems(file: Self.badTables)
        #expect(tables == [
            "comfygate.toml: [[backends]] #1: name must be 1 to 40 of a-z, 0-9, - and _",
            "comfygate.toml: [[backends]] #2 (gpu1): url must be an http:// or https:// URL",
            "comfygate.toml: [[backends]] #3: unknown setting 'colour'",
            "comfygate.toml: [[backends]] #3 (gpu2): weight must be a number above 0 and at most 1000",
            "comfygate.toml: [[backends]] #3 (gpu2): in_flight must be a whole number from 1 to 64",
            "comfygate.toml: [[backends]] #3 (gpu2): labels must be a table of strings, e.g. { gpu = \"RTX 4090\" }",
            "comfygate.toml: [[backends]] #4: the name 'gpu2' is used by another backend",
            "comfygate.toml: [[backends]] #5 (gpu3): http://127.0.0.1:8190 is already another backend's url",
        ])
        #expect(problems(file: #"backends = "http://127.0.0.1:8188""#)
            == ["comfygate.toml: backends must be [[backends]] tables, each with a name and a url"])
    }
}

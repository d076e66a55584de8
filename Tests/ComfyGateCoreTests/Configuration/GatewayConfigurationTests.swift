import ComfyGateCore
import Foundation
import Testing

@Suite struct GatewayConfigurationTests {
    @Test func defaultsMatchTheDocumentation() throws {
        let configuration = try GatewayConfiguration(layers: ConfigurationLayers())
        #expect(configuration.listenHost == "127.0.0.1")
        #expect(configuration.listenPort == 8189)
        #expect(configuration.upstream.absoluteString == "http://127.0.0.1:8188")
        #expect(configuration.dataDirectory == "./comfygate-data")
        #expect(!configuration.usesSecureCookies)
    }

    @Test func flagsBeatEnvironmentBeatFile() throws {
        let file = """
            listen = "127.0.0.1:7000"
            upstream = "http://127.0.0.1:9000"
            data = "/from/file"
            trusted_proxies = ["10.0.0.1", "::1"]
            session_idle_timeout = "30m"
            """
        let layers = try ConfigurationLayers(
            flags: ["listen": "0.0.0.0:9999"],
            environment: ["COMFYGATE_LISTEN": "127.0.0.1:8000", "COMFYGATE_DATA": "/from/env", "UNRELATED": "x"],
            fileText: file,
            filePath: "comfygate.toml"
        )
        let configuration = try GatewayConfiguration(layers: layers)
        #expect(configuration.listenHost == "0.0.0.0")
        #expect(configuration.listenPort == 9999)
        #expect(configuration.dataDirectory == "/from/env")
        #expect(configuration.upstream.absoluteString == "http://127.0.0.1:9000")
        #expect(configuration.trustedProxies == ["10.0.0.1", "::1"])
        #expect(configuration.sessionIdleTimeout == 1800)
    }

    @Test func everyBadValueIsReportedWithItsKeyAndSource() {
        do {
            let layers = try ConfigurationLayers(
                flags: ["listen": "nowhere", "upstream": "ftp://x"],
                environment: ["COMFYGATE_SESSION_IDLE_TIMEOUT": "soon"],
                fileText: "log_level = \"loud\"",
                filePath: "gate.toml"
            )
            _ = try GatewayConfiguration(layers: layers)
            Issue.record("bad values must be refused")
        } catch {
            #expect(error.problems.count == 4)
            #expect(error.description.contains("listen (from --listen): 'nowhere'"))
            #expect(error.description.contains("upstream (from --upstream)"))
            #expect(error.description.contains("session_idle_timeout (from COMFYGATE_SESSION_IDLE_TIMEOUT)"))
            #expect(error.description.contains("log_level (from gate.toml)"))
        }
    }

    @Test func unknownFileKeysAndBrokenTOMLAreRefused() {
        #expect(throws: ConfigurationError(problems: ["gate.toml: unknown setting 'lisen'"])) {
            try ConfigurationLayers(flags: [:], environment: [:], fileText: "lisen = \"x\"", filePath: "gate.toml")
        }
        do {
            _ = try ConfigurationLayers(flags: [:], environment: [:], fileText: "listen = ", filePath: "gate.toml")
            Issue.record("broken TOML must be refused")
        } catch {
            #expect(error.description == "gate.toml:1:10: not valid TOML: expected a value, found the end of the file")
        }
    }

    @Test func httpsPublicURLMakesCookiesSecure() throws {
        let layers = try ConfigurationLayers(flags: ["public_url": "https://comfy.example"], environment: [:], fileText: nil, filePath: nil)
        #expect(try GatewayConfiguration(layers: layers).usesSecureCookies)
    }

    @Test(arguments: [("45s", 45.0), ("90m", 5400), ("12h", 43200), ("30d", 2_592_000), ("2w", 1_209_600), ("120", 120)])
    func durationsParse(_ text: String, _ seconds: Double) {
        #expect(DurationParser.seconds(text) == seconds)
    }

    @Test(arguments: ["", "d", "-5m", "0", "abc", "5y"])
    func badDurationsAreRejected(_ text: String) {
        #expect(DurationParser.seconds(text) == nil)
    }
}

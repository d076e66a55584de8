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

    @Test func jobsAndRoleQuotasAreReadFromTheirSectionsAndTheEnvironment() throws {
        let file = """
            [jobs]
            in_flight = 3
            fair_share_window = "30m"

            [quotas.user]
            max_waiting_jobs = 10
            gpu_seconds_per_day = 3600.5

            [quotas.viewer]
            jobs_per_day = 0
            """
        let layers = try ConfigurationLayers(
            flags: [:], environment: ["COMFYGATE_QUOTAS_USER_MAX_IMAGE_AREA": "1048576", "COMFYGATE_JOBS_RETENTION": "7d"],
            fileText: file, filePath: "gate.toml")
        let configuration = try GatewayConfiguration(layers: layers)
        #expect(configuration.jobs == JobSettings(inFlight: 3, fairShareWindow: 1800, retention: 7 * 86_400))
        #expect(configuration.quotas == [
            .user: QuotaLimits(maxWaitingJobs: 10, gpuSecondsPerDay: 3600.5, maxImageArea: 1_048_576),
            .viewer: QuotaLimits(jobsPerDay: 0),
        ])
        let defaults = try GatewayConfiguration(layers: ConfigurationLayers())
        #expect(defaults.jobs == JobSettings(inFlight: 2, fairShareWindow: 3600, retention: 30 * 86_400))
        #expect(defaults.quotas.isEmpty, "no limits unless configured")
    }

    @Test func badJobAndQuotaValuesAreReported() throws {
        let file = """
            [jobs]
            in_flight = 0
            [quotas.user]
            jobs_per_day = -1
            max_image_area = "big"
            """
        #expect(throws: ConfigurationError(problems: ["gate.toml: unknown setting 'quotas.guest'"])) {
            try ConfigurationLayers(flags: [:], environment: [:], fileText: file + "\n[quotas.guest]\njobs_per_day = 1\n", filePath: "gate.toml")
        }
        let layers = try ConfigurationLayers(flags: [:], environment: [:], fileText: file, filePath: "gate.toml")
        #expect(throws: ConfigurationError(problems: [
            "jobs.in_flight (from gate.toml): '0' is not a whole number from 1 to 64",
            "quotas.user.jobs_per_day (from gate.toml): '-1' is not a whole number, 0 or more",
            "quotas.user.max_image_area (from gate.toml): 'big' is not a whole number, 0 or more",
        ])) {
            try GatewayConfiguration(layers: layers)
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

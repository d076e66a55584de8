// swift-tools-version:6.2
import PackageDescription

/// Compiler settings shared by every target (appended in the loop at the end).
let sharedSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "comfygate",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "comfygate", targets: ["comfygate"]),
        .library(name: "ComfyGateCore", targets: ["ComfyGateCore"]),
        .library(name: "ComfyGateJobs", targets: ["ComfyGateJobs"]),
        .library(name: "ComfyGatePolicy", targets: ["ComfyGatePolicy"]),
        .library(name: "ComfyGateRequestParsing", targets: ["ComfyGateRequestParsing"]),
        .library(name: "ComfyGateServer", targets: ["ComfyGateServer"]),
        .library(name: "ComfyUIClient", targets: ["ComfyUIClient"]),
        .library(name: "ComfyGateDoctor", targets: ["ComfyGateDoctor"]),
        .library(name: "ComfyGateTOML", targets: ["ComfyGateTOML"]),
        .library(name: "ComfyGateAssets", targets: ["ComfyGateAssets"]),
        .library(name: "ComfyGateModels", targets: ["ComfyGateModels"]),
        .library(name: "ComfyGateSetup", targets: ["ComfyGateSetup"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.0.0"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.81.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.24.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.27.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.20.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.4.0"),
        .package(url: "https://github.com/hummingbird-project/swift-websocket.git", from: "1.3.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.25.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/vapor/multipart-kit.git", from: "4.7.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.25.0"),
    ],
    targets: [
        // Domain model, tokens, passwords, secrets and the storage protocol. No server, client or database driver.
        .target(
            name: "ComfyGateCore",
            dependencies: [
                "ComfyGatePolicy",
                "ComfyGateTOML",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // A strict TOML 1.0 reader with no dependencies, for configuration files and secrets manifests.
        .target(name: "ComfyGateTOML"),
        // What clients send, read without a server: credentials, cookies, query strings, redirect targets.
        .target(
            name: "ComfyGateRequestParsing",
            dependencies: [.product(name: "HTTPTypes", package: "swift-http-types")]
        ),
        // Who may do what: one decision per request for every request path, and the rewrites that keep each user
        // to their own work. No server, client or store.
        .target(name: "ComfyGatePolicy", dependencies: ["ComfyGateRequestParsing"]),
        // Content-addressed blobs hashed with BLAKE3, for assets. No server code.
        .target(name: "ComfyGateAssets"),
        // How held jobs reach ComfyUI: fair share of the GPU among users, prompts checked as ComfyUI checks them
        // before they wait, quotas. No server, client or store.
        .target(name: "ComfyGateJobs", dependencies: ["ComfyGateCore", "ComfyGatePolicy"]),
        // The embedded store: SQLite through GRDB.
        .target(
            name: "ComfyGateSQLite",
            dependencies: [
                "ComfyGateCore",
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        // The shared store for several gateway replicas: PostgreSQL through PostgresNIO.
        .target(
            name: "ComfyGatePostgres",
            dependencies: [
                "ComfyGateCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // A typed client for ComfyUI's HTTP and websocket API. Depends on nothing of ours.
        .target(
            name: "ComfyUIClient",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "WSClient", package: "swift-websocket"),
                .product(name: "WSCore", package: "swift-websocket"),
            ]
        ),
        // `comfygate models`: the model manifest, resumable verified downloads, progress. No server code.
        .target(
            name: "ComfyGateModels",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // `comfygate doctor`: end-to-end checks of a ComfyUI deployment, their causes and fixes, reports, watch mode.
        .target(
            name: "ComfyGateDoctor",
            dependencies: [
                "ComfyGateCore",
                "ComfyGateTOML",
                "ComfyUIClient",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        // `comfygate setup`: prerequisites, the deployment directory, accounts and secrets, models, start, readiness,
        // the test generation and the report.
        .target(
            name: "ComfyGateSetup",
            dependencies: [
                "ComfyGateCore",
                "ComfyGateDoctor",
                "ComfyGateModels",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // The authenticating reverse proxy: routes, middleware, proxy transport, websocket relay.
        .target(
            name: "ComfyGateServer",
            dependencies: [
                "ComfyGateAssets",
                "ComfyGateCore",
                "ComfyGateJobs",
                "ComfyGatePolicy",
                "ComfyGateRequestParsing",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "MultipartKit", package: "multipart-kit"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "WSClient", package: "swift-websocket"),
                .product(name: "WSCore", package: "swift-websocket"),
            ]
        ),
        // The thin `comfygate` command: parse, configure, call a library, map errors to exit codes.
        .executableTarget(
            name: "comfygate",
            dependencies: [
                "ComfyGateCore",
                "ComfyGateDoctor",
                "ComfyGateModels",
                "ComfyGatePostgres",
                "ComfyGateServer",
                "ComfyGateSetup",
                "ComfyGateSQLite",
                "ComfyUIClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        // A development tool for bench/run: times the native token check on an in-memory store.
        .executableTarget(name: "comfygate-microbench", dependencies: ["ComfyGateCore"]),
        // Used by test targets only: the ComfyUI stand-in server, the store conformance suite and a WebDriver client.
        .target(
            name: "ComfyGateTestSupport",
            dependencies: [
                "ComfyGateCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(name: "ComfyGateCoreTests", dependencies: ["ComfyGateCore", "ComfyGateTestSupport"]),
        .testTarget(
            name: "ComfyGateJobsTests",
            dependencies: [
                "ComfyGateCore",
                "ComfyGateJobs",
                "ComfyGatePolicy",
                "ComfyGateTestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .testTarget(name: "ComfyGatePolicyTests", dependencies: ["ComfyGatePolicy"]),
        .testTarget(name: "ComfyGateTOMLTests", dependencies: ["ComfyGateTOML"]),
        .testTarget(name: "ComfyGateAssetsTests", dependencies: ["ComfyGateAssets"]),
        .testTarget(
            name: "ComfyGateModelsTests",
            dependencies: [
                "ComfyGateModels",
                "ComfyGateTestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(
            name: "ComfyGateRequestParsingTests",
            dependencies: ["ComfyGateRequestParsing", .product(name: "HTTPTypes", package: "swift-http-types")]
        ),
        .testTarget(
            name: "ComfyGateSQLiteTests",
            dependencies: ["ComfyGateCore", "ComfyGateSQLite", "ComfyGateTestSupport"]
        ),
        .testTarget(
            name: "ComfyGatePostgresTests",
            dependencies: [
                "ComfyGateCore",
                "ComfyGatePostgres",
                "ComfyGateTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ]
        ),
        .testTarget(
            name: "ComfyUIClientTests",
            dependencies: [
                "ComfyUIClient",
                "ComfyGateTestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "WSClient", package: "swift-websocket"),
            ]
        ),
        .testTarget(
            name: "ComfyGateDoctorTests",
            dependencies: [
                "ComfyGateCore",
                "ComfyGateDoctor",
                "ComfyGateServer",
                "ComfyGateSQLite",
                "ComfyGateTestSupport",
                "ComfyUIClient",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(
            name: "ComfyGateServerTests",
            dependencies: [
                "ComfyGateAssets",
                "ComfyGateCore",
                "ComfyGateServer",
                "ComfyGateSQLite",
                "ComfyGateTestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "WSClient", package: "swift-websocket"),
            ]
        ),
        .testTarget(
            name: "comfygateTests",
            dependencies: [
                "comfygate",
                "ComfyGateCore",
                "ComfyGateDoctor",
                "ComfyGatePostgres",
                "ComfyGateSQLite",
                "ComfyGateTestSupport",
                "ComfyUIClient",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
    ]
)

for target in package.targets {
    target.swiftSettings = (target.swiftSettings ?? []) + sharedSettings
}

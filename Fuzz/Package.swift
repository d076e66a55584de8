// swift-tools-version:6.2
import Foundation
import PackageDescription

// libFuzzer targets for ComfyGate's parsers; scripts/fuzz builds them with `-sanitize=fuzzer,address` and runs them.
// A package of its own, so the main package never sees executables without `main`.

/// SwiftPM names a path dependency after its directory, which depends on where the repository was cloned.
let mainPackage = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent

let requestParsing = Target.Dependency.product(name: "ComfyGateRequestParsing", package: mainPackage)
let core = Target.Dependency.product(name: "ComfyGateCore", package: mainPackage)
let toml = Target.Dependency.product(name: "ComfyGateTOML", package: mainPackage)
let policy = Target.Dependency.product(name: "ComfyGatePolicy", package: mainPackage)
let support = Target.Dependency.target(name: "FuzzSupport")

let package = Package(
    name: "comfygate-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.3.0"),
    ],
    targets: [
        // libFuzzer's driver entry point, for FuzzSupport.
        .systemLibrary(name: "CLibFuzzer"),
        // Starts libFuzzer from an executable's own `main`.
        .target(name: "FuzzSupport", dependencies: ["CLibFuzzer"]),
        .executableTarget(
            name: "FuzzCredentials",
            dependencies: [support, requestParsing, .product(name: "HTTPTypes", package: "swift-http-types")]
        ),
        .executableTarget(name: "FuzzQuery", dependencies: [support, requestParsing]),
        .executableTarget(name: "FuzzRedirect", dependencies: [support, requestParsing]),
        .executableTarget(name: "FuzzDotenv", dependencies: [support, core]),
        .executableTarget(name: "FuzzConfig", dependencies: [support, core]),
        .executableTarget(name: "FuzzTOML", dependencies: [support, toml]),
        .executableTarget(name: "FuzzAnswers", dependencies: [support, policy]),
    ]
)

for target in package.targets where target.type != .system {
    target.swiftSettings = [
        .enableUpcomingFeature("ExistentialAny"),
        .enableUpcomingFeature("MemberImportVisibility"),
        .enableUpcomingFeature("InternalImportsByDefault"),
    ]
}

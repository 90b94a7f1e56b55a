// swift-tools-version: 6.3
import PackageDescription

let package = Package(
    name: "Weft",
    products: [
        .library(name: "Weft", targets: ["Weft"]),
        // Optional integrations with the Swift server ecosystem. A package that
        // uses only `Weft` resolves and builds none of their dependencies
        // (Scripts/check-weft-alone).
        .library(name: "WeftLogging", targets: ["WeftLogging"]),
        .library(name: "WeftMetrics", targets: ["WeftMetrics"]),
        .library(name: "WeftServiceLifecycle", targets: ["WeftServiceLifecycle"]),
        .executable(name: "weft-timers", targets: ["weft-timers"]),
        .executable(name: "weft-echo", targets: ["weft-echo"]),
        .executable(name: "weft-hello", targets: ["weft-hello"]),
        .executable(name: "weft-bench", targets: ["weft-bench"]),
        .executable(name: "weft-cat", targets: ["weft-cat"]),
        // Experimental: Swift concurrency on Weft's loops (WeftDefaultExecutor).
        .executable(name: "weft-default-executor", targets: ["weft-default-executor"]),
    ],
    // Each integration is a trait, off by default: a package that uses only
    // `Weft` neither fetches nor builds the package an integration needs.
    // Enable one with `.package(url: ..., traits: ["Logging"])`.
    traits: [
        .trait(name: "Logging", description: "WeftLogging: the runtime's events through swift-log"),
        .trait(name: "Metrics", description: "WeftMetrics: each loop's statistics through swift-metrics"),
        .trait(name: "ServiceLifecycle", description: "WeftServiceLifecycle: a Weft server and loop group as Services"),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.4.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
    ],
    targets: [
        // The C boundary: libuv itself, from Debian's libuv1-dev.
        .systemLibrary(
            name: "CLibUV",
            path: "CSupport/CLibUV",
            pkgConfig: "libuv",
            providers: [.apt(["libuv1-dev"]), .brew(["libuv"])]
        ),
        // Small C helpers: handle casts, a thread-local, a fast per-thread RNG.
        .target(
            name: "CWeftSupport",
            dependencies: ["CLibUV"],
            path: "CSupport/CWeftSupport"
        ),
        .target(
            name: "Weft",
            dependencies: ["CLibUV", "CWeftSupport"]
        ),
        // swift-log: a Logger for the runtime's events (RuntimeEvents).
        .target(name: "WeftLogging", dependencies: [
            "Weft", .product(name: "Logging", package: "swift-log", condition: .when(traits: ["Logging"])),
        ]),
        // swift-metrics: each loop's statistics (RuntimeStatistics) as metrics.
        .target(name: "WeftMetrics", dependencies: [
            "Weft", .product(name: "CoreMetrics", package: "swift-metrics", condition: .when(traits: ["Metrics"])),
        ]),
        // swift-service-lifecycle: a Weft server and a loop group as Services.
        .target(name: "WeftServiceLifecycle", dependencies: [
            "Weft",
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle", condition: .when(traits: ["ServiceLifecycle"])),
        ]),
        .executableTarget(name: "weft-timers", dependencies: ["SampleSupport", "Weft"]),
        // What the sample servers share: command line, messages, listen address.
        .target(name: "SampleSupport", dependencies: ["Weft"]),
        .executableTarget(name: "weft-echo", dependencies: ["SampleSupport", "Weft"]),
        // The async book's web server: the handler is a library so tests reach it.
        .target(name: "HelloServer", dependencies: ["Weft"]),
        .executableTarget(name: "weft-hello", dependencies: ["HelloServer", "SampleSupport", "Weft"]),
        .executableTarget(name: "weft-bench", dependencies: ["Weft", "CWeftSupport"]),
        // cat on Weft's files: standard input and output adopted as files.
        .executableTarget(name: "weft-cat", dependencies: ["SampleSupport", "Weft"]),
        .executableTarget(name: "weft-default-executor", dependencies: ["SampleSupport", "Weft"]),
        // Top-level `await` code, run by TopLevelProgramTests: each call must
        // resolve to the async form, never silently to a poll builder.
        .executableTarget(name: "weft-top-level-check", dependencies: ["Weft"], path: "Tests/TopLevelAwait"),
        .testTarget(name: "WeftTests", dependencies: ["Weft", "HelloServer", "CLibUV", "CWeftSupport"]),
        .testTarget(name: "WeftLoggingTests", dependencies: [
            "WeftLogging", "Weft", .product(name: "Logging", package: "swift-log", condition: .when(traits: ["Logging"])),
        ]),
        .testTarget(name: "WeftMetricsTests", dependencies: [
            "WeftMetrics", "Weft",
            .product(name: "CoreMetrics", package: "swift-metrics", condition: .when(traits: ["Metrics"])),
            .product(name: "MetricsTestKit", package: "swift-metrics", condition: .when(traits: ["Metrics"])),
        ]),
        .testTarget(name: "WeftServiceLifecycleTests", dependencies: [
            "WeftServiceLifecycle", "Weft",
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle", condition: .when(traits: ["ServiceLifecycle"])),
            .product(name: "Logging", package: "swift-log", condition: .when(traits: ["ServiceLifecycle"])),
        ]),
    ]
)

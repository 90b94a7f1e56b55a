// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "Weft",
    products: [
        .library(name: "Weft", targets: ["Weft"]),
        // Optional integrations with the Swift server ecosystem. A package that
        // uses only `Weft` resolves and builds none of their dependencies
        // (Scripts/check-weft-alone).
        .library(name: "WeftLogging", targets: ["WeftLogging"]),
        .executable(name: "weft-timers", targets: ["weft-timers"]),
        .executable(name: "weft-echo", targets: ["weft-echo"]),
        .executable(name: "weft-hello", targets: ["weft-hello"]),
        .executable(name: "weft-bench", targets: ["weft-bench"]),
        // Experimental: Swift concurrency on Weft's loops (WeftDefaultExecutor).
        .executable(name: "weft-default-executor", targets: ["weft-default-executor"]),
    ],
    // Each integration is a trait, off by default: a package that uses only
    // `Weft` neither fetches nor builds the package an integration needs.
    // Enable one with `.package(url: ..., traits: ["Logging"])`.
    traits: [
        .trait(name: "Logging", description: "WeftLogging: the runtime's events through swift-log"),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        // The C boundary: libuv itself, from Debian's libuv1-dev.
        .systemLibrary(
            name: "CLibUV",
            path: "CSupport/CLibUV",
            pkgConfig: "libuv",
            providers: [.apt(["libuv1-dev"])]
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
        .executableTarget(name: "weft-timers", dependencies: ["Weft"]),
        .executableTarget(name: "weft-echo", dependencies: ["Weft"]),
        // The async book's web server: the handler is a library so tests reach it.
        .target(name: "HelloServer", dependencies: ["Weft"]),
        .executableTarget(name: "weft-hello", dependencies: ["HelloServer", "Weft"]),
        .executableTarget(name: "weft-bench", dependencies: ["Weft", "CWeftSupport"]),
        .executableTarget(name: "weft-default-executor", dependencies: ["Weft"]),
        .testTarget(name: "WeftTests", dependencies: ["Weft", "HelloServer", "CLibUV", "CWeftSupport"]),
        .testTarget(name: "WeftLoggingTests", dependencies: [
            "WeftLogging", "Weft", .product(name: "Logging", package: "swift-log", condition: .when(traits: ["Logging"])),
        ]),
    ]
)

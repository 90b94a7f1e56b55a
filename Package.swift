// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "Weft",
    products: [
        .library(name: "Weft", targets: ["Weft"]),
        .executable(name: "weft-timers", targets: ["weft-timers"]),
        .executable(name: "weft-echo", targets: ["weft-echo"]),
        .executable(name: "weft-hello", targets: ["weft-hello"]),
        .executable(name: "weft-bench", targets: ["weft-bench"]),
        // Experimental: Swift concurrency on Weft's loops (WeftDefaultExecutor).
        .executable(name: "weft-default-executor", targets: ["weft-default-executor"]),
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
        .executableTarget(name: "weft-timers", dependencies: ["Weft"]),
        .executableTarget(name: "weft-echo", dependencies: ["Weft"]),
        // The async book's web server: the handler is a library so tests reach it.
        .target(name: "HelloServer", dependencies: ["Weft"]),
        .executableTarget(name: "weft-hello", dependencies: ["HelloServer", "Weft"]),
        .executableTarget(name: "weft-bench", dependencies: ["Weft", "CWeftSupport"]),
        .executableTarget(name: "weft-default-executor", dependencies: ["Weft"]),
        .testTarget(name: "WeftTests", dependencies: ["Weft", "HelloServer", "CLibUV", "CWeftSupport"]),
    ]
)

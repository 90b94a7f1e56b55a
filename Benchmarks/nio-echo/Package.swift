// swift-tools-version:6.0
// SwiftNIO's echo server, the third baseline of Benchmarks/echo/compare.py.
// A package of its own so that users of Weft never build SwiftNIO.
import PackageDescription

let package = Package(
    name: "nio-echo",
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        .executableTarget(
            name: "nio-echo",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
    ]
)

// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "PretrainedVision",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "Checkpoint", targets: ["Checkpoint"]),
        .executable(name: "convert-weights", targets: ["convert-weights"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2")
    ],
    targets: [
        .systemLibrary(
            name: "CZlib",
            path: "Sources/CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"]), .brew(["zlib"])]
        ),
        .target(name: "Checkpoint", dependencies: ["CZlib"]),
        .executableTarget(
            name: "convert-weights",
            dependencies: [
                "Checkpoint",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(
            name: "CheckpointTests",
            dependencies: ["Checkpoint", "convert-weights"]
        ),
    ]
)

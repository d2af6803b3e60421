// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "PretrainedVision",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "Checkpoint", targets: ["Checkpoint"]),
        .library(name: "NeuralNet", targets: ["NeuralNet"]),
        .library(name: "VisionModels", targets: ["VisionModels"]),
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
        .systemLibrary(
            name: "CBLAS",
            path: "Sources/CBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .target(name: "Checkpoint", dependencies: ["CZlib"]),
        .target(
            name: "NeuralNet",
            dependencies: [.target(name: "CBLAS", condition: .when(platforms: [.linux]))],
            linkerSettings: [.linkedFramework("Accelerate", .when(platforms: [.macOS, .iOS]))]
        ),
        .target(name: "VisionModels", dependencies: ["Checkpoint", "NeuralNet"]),
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
        .testTarget(name: "NeuralNetTests", dependencies: ["NeuralNet", "Checkpoint"]),
        .testTarget(name: "VisionModelsTests", dependencies: ["VisionModels", "Checkpoint", "NeuralNet"]),
    ]
)

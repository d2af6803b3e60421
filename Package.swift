// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "PretrainedVision",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "Checkpoint", targets: ["Checkpoint"]),
        .library(name: "NeuralNet", targets: ["NeuralNet"]),
        .library(name: "VisionModels", targets: ["VisionModels"]),
        .library(name: "VisionData", targets: ["VisionData"]),
        .executable(name: "convert-weights", targets: ["convert-weights"]),
        .executable(name: "classify", targets: ["classify"]),
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
        .systemLibrary(
            name: "CHDF5",
            path: "Sources/CHDF5",
            pkgConfig: "hdf5",
            providers: [.apt(["libhdf5-dev"]), .brew(["hdf5"])]
        ),
        .target(name: "Checkpoint", dependencies: ["CZlib", "CHDF5"]),
        .target(name: "CKernels"),
        .target(
            name: "NeuralNet",
            dependencies: [.target(name: "CBLAS", condition: .when(platforms: [.linux])), "CKernels"],
            linkerSettings: [.linkedFramework("Accelerate", .when(platforms: [.macOS, .iOS]))]
        ),
        .systemLibrary(
            name: "CJPEG",
            path: "Sources/CImage/CJPEG",
            pkgConfig: "libjpeg",
            providers: [.apt(["libjpeg62-turbo-dev"]), .brew(["jpeg-turbo"])]
        ),
        .systemLibrary(
            name: "CPNG",
            path: "Sources/CImage/CPNG",
            pkgConfig: "libpng",
            providers: [.apt(["libpng-dev"]), .brew(["libpng"])]
        ),
        .target(name: "CImage", dependencies: ["CJPEG", "CPNG"], path: "Sources/CImage/CImage"),
        .target(name: "VisionData", dependencies: ["NeuralNet", "Checkpoint", "CImage"]),
        .target(name: "VisionModels", dependencies: ["Checkpoint", "NeuralNet", "VisionData"]),
        .executableTarget(
            name: "classify",
            dependencies: [
                "VisionModels", "VisionData", "Checkpoint", "NeuralNet",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "convert-weights",
            dependencies: [
                "Checkpoint",
                "VisionModels",
                "NeuralNet",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(
            name: "CheckpointTests",
            dependencies: ["Checkpoint", "convert-weights"]
        ),
        .testTarget(name: "NeuralNetTests", dependencies: ["NeuralNet", "Checkpoint"]),
        .testTarget(name: "VisionModelsTests", dependencies: ["VisionModels", "Checkpoint", "NeuralNet"]),
        .testTarget(name: "VisionDataTests", dependencies: ["VisionData", "Checkpoint", "NeuralNet"]),
        .testTarget(name: "ClassifyTests", dependencies: ["classify", "VisionModels", "VisionData", "Checkpoint"]),
    ]
)

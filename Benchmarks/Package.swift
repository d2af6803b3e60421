// swift-tools-version:6.0
// The benchmark lives in its own package so that it stays out of the library's dependency graph.
import PackageDescription

let package = Package(
    name: "PretrainedVisionBenchmarks",
    platforms: [.macOS(.v13)],
    dependencies: [.package(name: "PretrainedVision", path: "..")],
    targets: [
        .executableTarget(
            name: "bench",
            dependencies: [
                .product(name: "VisionModels", package: "PretrainedVision"),
                .product(name: "NeuralNet", package: "PretrainedVision"),
                .product(name: "Checkpoint", package: "PretrainedVision"),
            ]
        )
    ]
)

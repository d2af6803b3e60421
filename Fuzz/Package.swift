// swift-tools-version:6.0
// libFuzzer targets for the package's parsers. A separate package (it depends on the root package by
// path) so that the fuzzers stay out of the library's dependency graph. Build and run with `tools/fuzz`
// from the repository root; see Fuzz/README.md.
import PackageDescription

/// One executable per fuzz target; each defines `LLVMFuzzerTestOneInput` and needs libFuzzer's
/// `main`, which `-sanitize=fuzzer` links (tools/fuzz passes it).
func fuzzTarget(_ name: String, _ products: [String]) -> Target {
    .executableTarget(
        name: name,
        dependencies: products.map { .product(name: $0, package: "PretrainedVision") },
        path: "Sources/\(name)",
        swiftSettings: [.unsafeFlags(["-parse-as-library"])]
    )
}

let package = Package(
    name: "PretrainedVisionFuzz",
    platforms: [.macOS(.v13)],
    dependencies: [.package(name: "PretrainedVision", path: "..")],
    targets: [
        fuzzTarget("fuzz-unpickler", ["Checkpoint"]),
        fuzzTarget("fuzz-zip", ["Checkpoint"]),
        fuzzTarget("fuzz-legacy-stream", ["Checkpoint"]),
        fuzzTarget("fuzz-tar", ["Checkpoint"]),
        fuzzTarget("fuzz-safetensors", ["Checkpoint"]),
        fuzzTarget("fuzz-checkpoint", ["Checkpoint"]),
        fuzzTarget("fuzz-cifar", ["VisionData", "Checkpoint"]),
        fuzzTarget("fuzz-image", ["VisionData"]),
    ]
)

import Foundation

@testable import Checkpoint

/// Locates committed fixtures and their expected values (`Tests/Fixtures/checkpoint/expected.json`,
/// written by `tools/make_fixtures.py`).
enum Fixtures {
    /// `Tests/Fixtures`.
    static let root: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    static let checkpointDir = root.appendingPathComponent("checkpoint")

    static func path(_ name: String) -> String { checkpointDir.appendingPathComponent(name).path }

    /// The parsed expected.json: fixture file name → its entry.
    nonisolated(unsafe) static let expected: [String: [String: Any]] = {
        let url = checkpointDir.appendingPathComponent("expected.json")
        guard let data = try? Data(contentsOf: url),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: [String: Any]]
        else { return [:] }
        return object
    }()

    /// Fixtures that read successfully (no "error" entry), sorted by name.
    static var readable: [String] { expected.filter { $0.value["error"] == nil }.map(\.key).sorted() }

    /// Fixtures that must be refused, sorted by name.
    static var refused: [String] { expected.filter { $0.value["error"] != nil }.map(\.key).sorted() }

    /// Every fixture file in the checkpoint folder (not the JSON or README).
    static var allFiles: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: checkpointDir.path)) ?? []
        return names.filter { !$0.hasSuffix(".json") && !$0.hasSuffix(".md") }.sorted()
    }

    /// Options a fixture needs to be read (a whole-module pickle needs `allowModulePickle`).
    static func options(for name: String) -> ReadOptions {
        var o = ReadOptions()
        if let needs = expected[name]?["needs_option"] as? String, needs == "allow_module_pickle" { o.allowModulePickle = true }
        return o
    }
}

/// Hex SHA-256 of a byte window.
func sha256Hex(_ slice: ByteSlice) -> String { SHA256.hex(SHA256.hash(slice.raw)) }

/// Hex SHA-256 of float32 values as little-endian bytes.
func sha256Hex(_ floats: [Float]) -> String {
    floats.withUnsafeBytes { SHA256.hex(SHA256.hash($0)) }
}

/// A small deterministic generator for corruption tests.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A fingerprint of a state dict's contents: names, dtypes, shapes and raw-byte hashes.
func fingerprint(_ sd: StateDict) throws(CheckpointError) -> [String] {
    var out: [String] = []
    for e in sd.entries {
        out.append("\(e.name) \(e.tensor.dtype.name) \(e.tensor.shape) \(sha256Hex(try e.tensor.contiguousBytes()))")
    }
    return out
}

import Checkpoint
import Foundation
import Testing

/// Pins `FormulaWeights` (the Swift twin of `tools/formula_weights.py`) against the values Python wrote
/// into `Tests/Fixtures/golden/formula_samples.json` (`tools/make_goldens.py`): the float32 bit patterns
/// of the first 8 values, the sequential float64 sum of all values (compared bit for bit), and the SHA-256
/// of a whole architecture's state. Tolerance: none; the formula is bit-exact by construction.
@Suite("FormulaWeights")
struct FormulaWeightsTests {
    struct TensorSample: Decodable, Sendable, CustomTestStringConvertible {
        var key: String
        var shape: [Int]
        var index: Int
        /// The architecture the values are for (absent: none, i.e. the default classifier salt).
        var architecture: String?
        var role: String
        var count: Int
        var first8_bits: [UInt32]
        var sum_bits: String
        var testDescription: String { "\(architecture.map { $0 + " " } ?? "")\(key) \(shape) p=\(index)" }
    }

    struct InputSample: Decodable, Sendable, CustomTestStringConvertible {
        var shape: [Int]
        var seed: UInt32
        var count: Int
        var first8_bits: [UInt32]
        var sum_bits: String
        var testDescription: String { "input \(shape) seed \(seed)" }
    }

    struct Samples: Decodable, Sendable {
        struct Constants: Decodable, Sendable {
            var tensor_salt: UInt32
            var linear_salt: UInt32
            var input_salt: UInt32
            /// Per-architecture classifier salts (absent in files written before the SE/CIFAR networks).
            var arch_linear_salts: [String: UInt32]?
            /// Per-architecture `[low, width]` of the bn2/bn3 gamma.
            var arch_residual_gamma: [String: [Float]]?
        }
        var constants: Constants
        var tensors: [TensorSample]
        var inputs: [InputSample]
        var sha256_all: [String: String]
    }

    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    static let samples: Samples? = {
        let url = fixtures.appendingPathComponent("golden/formula_samples.json")
        guard let data = try? Data(contentsOf: url) else { return nil }
        return try? JSONDecoder().decode(Samples.self, from: data)
    }()

    static func manifest(_ arch: String) throws -> [(key: String, shape: [Int])] {
        let url = fixtures.appendingPathComponent("manifests/\(arch).txt")
        let text = try String(contentsOf: url, encoding: .utf8)
        return try #require(FormulaWeights.parseManifest(text), "malformed manifest \(url.path)")
    }

    /// Sequential float64 sum in index order, as hex bits (Python: `np.cumsum(float64)[-1]`).
    static func sumBits(_ values: [Float]) -> String {
        var s = 0.0
        for v in values { s += Double(v) }
        let hex = String(s.bitPattern, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    @Test("the sample file loads and its constants match the Swift constants")
    func constants() throws {
        let s = try #require(Self.samples, "Tests/Fixtures/golden/formula_samples.json missing or malformed")
        #expect(s.constants.tensor_salt == FormulaWeights.tensorSalt)
        #expect(s.constants.linear_salt == FormulaWeights.linearSalt)
        #expect(s.constants.input_salt == FormulaWeights.inputSalt)
        #expect((s.constants.arch_linear_salts ?? [:]) == FormulaWeights.architectureLinearSalts)
        #expect((s.constants.arch_residual_gamma ?? [:]) == FormulaWeights.architectureResidualGamma.mapValues { [$0.low, $0.width] })
        #expect(s.tensors.count >= 10 && s.inputs.count >= 4)
    }

    @Test("tensor values are bit-identical to Python", arguments: samples?.tensors ?? [])
    func tensor(_ sample: TensorSample) {
        let v = FormulaWeights.values(key: sample.key, shape: sample.shape, index: sample.index,
                                      architecture: sample.architecture)
        #expect(FormulaWeights.role(key: sample.key, shape: sample.shape).rawValue == sample.role)
        #expect(v.count == sample.count)
        #expect(v.prefix(8).map(\.bitPattern) == sample.first8_bits)
        #expect(Self.sumBits(v) == sample.sum_bits)
    }

    @Test("input values are bit-identical to Python", arguments: samples?.inputs ?? [])
    func input(_ sample: InputSample) {
        let v = FormulaWeights.input(shape: sample.shape, seed: sample.seed)
        #expect(v.count == sample.count)
        #expect(v.prefix(8).map(\.bitPattern) == sample.first8_bits)
        #expect(Self.sumBits(v) == sample.sum_bits)
        #expect(v.allSatisfy { $0 >= -1 && $0 < 1 })
    }

    /// The whole state of an architecture: SHA-256 of every manifest entry's values as float32
    /// little-endian, in manifest order (num_batches_tracked as one float32 0). Other architectures
    /// are listed in the JSON too; set FORMULA_WEIGHTS_ALL=1 to check all of them (about 1.3 G values).
    /// seresnet18 (a per-architecture classifier salt) and resnet20 (CIFAR) are small enough to run always.
    @Test("SHA-256 of all values equals Python's", arguments: ["resnet18", "densenet121", "seresnet18", "resnet20"])
    func wholeState(_ arch: String) throws {
        try Self.checkWholeState(arch)
    }

    @Test(
        "SHA-256 of all values equals Python's, every architecture",
        .enabled(if: ProcessInfo.processInfo.environment["FORMULA_WEIGHTS_ALL"] == "1"))
    func wholeStateAll() throws {
        let s = try #require(Self.samples)
        for arch in s.sha256_all.keys.sorted() { try Self.checkWholeState(arch) }
    }

    static func checkWholeState(_ arch: String) throws {
        let s = try #require(samples)
        let expected = try #require(s.sha256_all[arch], "no sha256_all entry for \(arch)")
        var hasher = SHA256()
        for (p, entry) in try manifest(arch).enumerated() {
            let v = FormulaWeights.values(key: entry.key, shape: entry.shape, index: p, architecture: arch)
            v.withUnsafeBytes { hasher.update($0) }
        }
        #expect(SHA256.hex(hasher.finalize()) == expected, "\(arch)")
    }

    @Test("manifest headers agree with their entries", arguments: samples.map { Array($0.sha256_all.keys).sorted() } ?? [])
    func manifestHeader(_ arch: String) throws {
        let url = Self.fixtures.appendingPathComponent("manifests/\(arch).txt")
        let text = try String(contentsOf: url, encoding: .utf8)
        let header = try #require(text.split(separator: "\n").first)
        let entries = try Self.manifest(arch)
        #expect(header == "# \(arch) params=\(header.split(separator: "=")[1].split(separator: " ")[0]) keys=\(entries.count)")
        let params = entries.filter {
            !$0.key.hasSuffix(".running_mean") && !$0.key.hasSuffix(".running_var")
                && !$0.key.hasSuffix(".num_batches_tracked")
        }.reduce(0) { $0 + FormulaWeights.count($1.shape) }
        #expect(header.hasSuffix("params=\(params) keys=\(entries.count)"))
    }
}

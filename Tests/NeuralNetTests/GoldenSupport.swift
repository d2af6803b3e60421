import Checkpoint
import Foundation
import NeuralNet
import Testing

/// The committed goldens in `Tests/Fixtures/neuralnet`, written by `tools/make_neuralnet_goldens.py`
/// (torch 2.13.0+cpu; see the README beside them).
enum Golden {
    static let directory: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures").appendingPathComponent("neuralnet")

    /// The relative bound of every floating-point golden: max |ours - torch| / max |torch| <= 1e-5.
    static let relativeBound: Double = 1e-5

    /// Each fixture file read once with the project's own reader.
    static let files: [String: Result<StateDict, CheckpointError>] = {
        var out: [String: Result<StateDict, CheckpointError>] = [:]
        for name in ["conv.pth", "norm_linear.pth", "pool.pth", "elementwise.pth"] {
            let path = directory.appendingPathComponent(name).path
            out[name] = Result { () throws(CheckpointError) -> StateDict in try CheckpointReader.read(path) }
        }
        return out
    }()

    /// One fixture file.
    static func file(_ name: String) throws -> StateDict {
        guard let result = files[name] else { throw GoldenError("no fixture file \(name)") }
        return try result.get()
    }

    /// The named tensor of a fixture as a NeuralNet `Tensor` (same shape, values converted to float32).
    static func tensor(_ sd: StateDict, _ key: String) throws -> Tensor {
        guard let t = sd[key] else { throw GoldenError("fixture has no tensor \(key)") }
        return try Tensor(shape: t.shape, data: try t.floats())
    }

    /// The named tensor's values, or nil when the fixture lacks it (e.g. a convolution without bias).
    static func optionalFloats(_ sd: StateDict, _ key: String) throws -> [Float]? {
        guard let t = sd[key] else { return nil }
        return try t.floats()
    }

    /// The named integer vector (a case's `.config`).
    static func ints(_ sd: StateDict, _ key: String) throws -> [Int] {
        try tensor(sd, key).data.map { Int($0) }
    }

    /// Checks `ours` against torch's `reference` within `relativeBound` (scaled by the reference's largest
    /// magnitude), prints the measured error, and returns the relative error.
    @discardableResult
    static func expectClose(
        _ ours: Tensor, _ reference: Tensor, _ label: String, bound: Double = relativeBound,
        sourceLocation: SourceLocation = #_sourceLocation
    ) -> Double {
        #expect(ours.shape == reference.shape, "\(label): shape", sourceLocation: sourceLocation)
        guard ours.shape == reference.shape, ours.data.count == reference.data.count else { return .infinity }
        var maxDiff = 0.0, maxRef = 0.0, worst = 0
        for i in 0..<ours.data.count {
            let d = abs(Double(ours.data[i]) - Double(reference.data[i]))
            if d > maxDiff || d.isNaN {
                maxDiff = d
                worst = i
            }
            maxRef = max(maxRef, abs(Double(reference.data[i])))
        }
        let rel = maxRef > 0 ? maxDiff / maxRef : maxDiff
        print("golden \(label): max|diff| = \(maxDiff), relative = \(rel), worst index \(worst)")
        #expect(rel <= bound, "\(label): relative error \(rel) > \(bound) at index \(worst)", sourceLocation: sourceLocation)
        return rel
    }

    /// Checks bit-for-bit equality of shape and values (NaN never occurs in these goldens).
    static func expectExact(
        _ ours: Tensor, _ reference: Tensor, _ label: String, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(ours.shape == reference.shape, "\(label): shape", sourceLocation: sourceLocation)
        let mismatches = zip(ours.data, reference.data).filter { $0.0.bitPattern != $0.1.bitPattern }.count
        print("golden \(label): exact, \(mismatches) mismatching values of \(reference.data.count)")
        #expect(
            ours.data.count == reference.data.count && mismatches == 0, "\(label): not bit-identical",
            sourceLocation: sourceLocation)
    }

    /// A convolution geometry from a `.config` vector
    /// `[kernelH, kernelW, strideH, strideW, padH, padW, dilationH, dilationW, groups]`.
    static func convConfig(_ v: [Int], inChannels: Int, outChannels: Int) throws -> Conv2dConfig {
        guard v.count == 9 else { throw GoldenError("conv config needs 9 values, found \(v.count)") }
        var c = Conv2dConfig(inChannels: inChannels, outChannels: outChannels, kernel: v[0], groups: v[8])
        c.kernelW = v[1]
        (c.strideH, c.strideW, c.padH, c.padW, c.dilationH, c.dilationW) = (v[2], v[3], v[4], v[5], v[6], v[7])
        return c
    }

    /// The convolution stored under `name` (weight `[out, in/groups, kh, kw]`, optional bias).
    static func conv(_ sd: StateDict, _ name: String, inChannels: Int) throws -> Conv2d {
        let w = try tensor(sd, "\(name).weight")
        let config = try convConfig(try ints(sd, "\(name).config"), inChannels: inChannels, outChannels: w.shape[0])
        return try Conv2d(config: config, weight: w.data, bias: try optionalFloats(sd, "\(name).bias"))
    }

    /// The batch norm stored under `prefix` (`.weight`, `.bias`, `.running_mean`, `.running_var`; eps 1e-5).
    static func batchNorm(_ sd: StateDict, _ prefix: String) throws -> BatchNorm2d {
        try BatchNorm2d(
            weight: try tensor(sd, "\(prefix).weight").data, bias: try tensor(sd, "\(prefix).bias").data,
            runningMean: try tensor(sd, "\(prefix).running_mean").data,
            runningVar: try tensor(sd, "\(prefix).running_var").data, eps: 1e-5)
    }
}

/// A problem with the fixtures themselves.
struct GoldenError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

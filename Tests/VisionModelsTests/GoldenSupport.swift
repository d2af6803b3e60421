import Checkpoint
import Foundation
import NeuralNet

@testable import VisionModels

/// Paths and comparisons for the golden tests (fixtures made by tools/make_manifests.py and
/// tools/make_goldens.py with torch 2.13 / torchvision 0.28).
enum Golden {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    static func path(_ relative: String) -> String { fixtures.appendingPathComponent(relative).path }

    /// The bound of the numerics contract: max |ours - reference| / max |reference| per tap.
    static let relativeBound: Float = 1e-4

    /// Parses a manifest: `key shape` lines (shape comma-separated, `-` or nothing for 0-d).
    static func manifest(_ arch: String) throws -> (specs: [ParameterSpec], params: Int?) {
        let text = try String(contentsOfFile: path("manifests/\(arch).txt"), encoding: .utf8)
        var specs: [ParameterSpec] = []
        var params: Int?
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if line.hasPrefix("#") {
                if let r = line.range(of: "params=") {
                    params = Int(line[r.upperBound...].prefix { $0.isNumber })
                }
                continue
            }
            let parts = line.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
            let shapeText = parts.count > 1 ? parts[1].trimmingCharacters(in: .whitespaces) : ""
            let shape = shapeText.isEmpty || shapeText == "-" ? [] : shapeText.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            specs.append(ParameterSpec(name: String(parts[0]), shape: shape))
        }
        return (specs, params)
    }

    /// Relative error of `ours` against `reference` (scaled by the reference's max magnitude), and the worst index.
    static func relativeError(_ ours: [Float], _ reference: [Float]) -> (error: Float, index: Int, maxAbs: Float) {
        precondition(ours.count == reference.count)
        var scale: Float = 0
        for v in reference { scale = max(scale, abs(v)) }
        var worst: Float = 0
        var index = 0
        for i in 0..<ours.count {
            let d = abs(ours[i] - reference[i])
            if d > worst { worst = d; index = i }
        }
        return (scale > 0 ? worst / scale : worst, index, scale)
    }

    /// Indices of the top `k` values, highest first.
    static func topK(_ v: ArraySlice<Float>, _ k: Int) -> [Int] {
        Array(v.indices.sorted { v[$0] > v[$1] || (v[$0] == v[$1] && $0 < $1) }.prefix(k)).map { $0 - v.startIndex }
    }
}

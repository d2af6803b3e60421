import ArgumentParser
import Checkpoint
import Foundation
import NeuralNet
import VisionModels

/// `convert-weights verify FILE --arch NAME --reference REF`: runs the Swift model on the reference's
/// input and compares every tap with the reference framework's activations.
struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check that a checkpoint computes what the reference framework computes.",
        discussion: """
            REF holds an `input` tensor [N, 3, H, W] and the reference framework's activations at the \
            architecture's taps (stem, each stage, prelogits, logits), as written by \
            tools/reference_taps.py. FILE (any supported format) is loaded into the architecture, run on \
            that input, and each tap is compared: max |ours - ref|, the relative error (scaled by the \
            reference's max magnitude) and the worst index. Exit status 0 only if every tap is within \
            the numerics bound (relative error <= 1e-4) and every sample's top-5 logits agree.
            """
    )

    @Argument(help: "The checkpoint to check.", completion: .file())
    var file: String

    @Option(help: ArgumentHelp("The architecture (e.g. resnet50, keras_resnet50).", valueName: "name"))
    var arch: String

    @Option(help: ArgumentHelp("A JSON file describing the architecture.", valueName: "file"))
    var archConfig: String?

    @Option(help: ArgumentHelp("The reference activations (tools/reference_taps.py).", valueName: "file"))
    var reference: String

    @Option(help: ArgumentHelp("The relative-error bound.", valueName: "x"))
    var bound: Float = 1e-4

    @Flag(help: "Load weights whose names show another flavor than the architecture's.")
    var allowFlavorMismatch = false

    func run() throws {
        do {
            let passed = try VerifyRun(command: self).run()
            if !passed { throw ExitCode.failure }
        } catch let failure as ConvertRun.Failure {
            StandardError.print(failure.description)
            throw ExitCode.failure
        }
    }
}

/// One comparison of a tap.
struct TapComparison: Equatable {
    var tap: String
    var shape: [Int]
    var maxReference: Float
    var maxAbsError: Float
    var relativeError: Float
    /// Multi-index of the largest absolute error.
    var worstIndex: [Int]

    /// Compares `ours` with `reference` (same count), both row-major of `shape`.
    init(tap: String, shape: [Int], ours: [Float], reference: [Float]) {
        self.tap = tap
        self.shape = shape
        var scale: Float = 0
        for v in reference { scale = max(scale, abs(v)) }
        var worst: Float = 0
        var at = 0
        for i in 0..<min(ours.count, reference.count) {
            let d = abs(ours[i] - reference[i])
            if d > worst || d.isNaN {
                worst = d
                at = i
                if d.isNaN { break }
            }
        }
        maxReference = scale
        maxAbsError = worst
        relativeError = scale > 0 ? worst / scale : worst
        var index: [Int] = []
        var rest = at
        for d in shape.reversed() {
            index.insert(d > 0 ? rest % d : 0, at: 0)
            rest = d > 0 ? rest / d : 0
        }
        worstIndex = index
    }
}

struct VerifyRun {
    let command: Verify

    /// Prints the table; returns whether everything is within the bound.
    func run() throws(ConvertRun.Failure) -> Bool {
        let c = command
        let architecture: Architecture
        do throws(ConvertArchitecture.Failure) {
            architecture = try ConvertArchitecture.resolve(c.arch, configFile: c.archConfig)
        } catch {
            throw ConvertRun.Failure(description: error.description)
        }
        let reference: StateDict
        do throws(CheckpointError) {
            reference = try CheckpointReader.read(c.reference)
        } catch {
            throw ConvertRun.Failure(description: error.description)
        }
        guard let inputData = reference["input"], inputData.shape.count == 4 else {
            throw ConvertRun.Failure(description: "\(c.reference): error: malformed: no 'input' tensor [N, 3, H, W]")
        }
        var options = LoadOptions()
        options.allowFlavorMismatch = c.allowFlavorMismatch
        let input: Tensor
        do throws(CheckpointError) {
            let values = try inputData.floats()
            do throws(NeuralNetError) {
                input = try Tensor(shape: inputData.shape, data: values)
            } catch {
                throw CheckpointError(.malformed, "input: \(error.message)", member: "input", file: c.reference)
            }
        } catch {
            throw ConvertRun.Failure(description: error.description)
        }
        let model: Model
        let taps: [(name: String, tensor: Tensor)]
        do throws(ModelError) {
            model = try Model.load(architecture, pretrained: .file(URL(fileURLWithPath: c.file)), options: options)
            taps = try model.features(input)
        } catch {
            throw ConvertRun.Failure(description: error.description)
        }

        print("verify: \(c.file) as \(model.architecture.name) (\(model.architecture.flavorName)) against \(c.reference)")
        let framework = metadata(reference)["framework"]
        print("reference: \(framework ?? "unknown framework"), input \(inputData.shape)")
        print("")
        var table = TextTable(columns: [
            .init("tap"), .init("shape"), .init("max |ref|", alignRight: true), .init("max abs err", alignRight: true),
            .init("max rel err", alignRight: true), .init("worst index"), .init(""),
        ])
        var passed = true
        var compared = 0
        for (name, ours) in taps {
            guard let ref = reference[name] else {
                table.append([name, shapeText(ours.shape), "-", "-", "-", "-", "not in reference"])
                continue
            }
            guard ref.shape == ours.shape, let values = try? ref.floats() else {
                table.append([name, shapeText(ours.shape), "-", "-", "-", "-", "FAIL: reference shape \(shapeText(ref.shape))"])
                passed = false
                continue
            }
            let r = TapComparison(tap: name, shape: ours.shape, ours: ours.data, reference: values)
            let ok = r.relativeError <= c.bound
            passed = passed && ok
            compared += 1
            table.append([
                name, shapeText(ours.shape), String(format: "%.4g", r.maxReference), String(format: "%.3e", r.maxAbsError),
                String(format: "%.3e", r.relativeError), shapeText(r.worstIndex), ok ? "ok" : "FAIL",
            ])
        }
        print(table.render(), terminator: "")
        if compared == 0 {
            print("no tap of \(model.architecture.name) is in the reference (\(reference.names.joined(separator: ", ")))")
            passed = false
        }
        // Top-5 of every sample.
        if let logits = taps.last?.tensor, let refLogits = try? reference["logits"]?.floats(), refLogits.count == logits.data.count,
            logits.shape.count == 2
        {
            let n = logits.shape[0], k = min(5, logits.shape[1]), classes = logits.shape[1]
            var same = 0
            for s in 0..<n {
                let a = topK(logits.data[(s * classes)..<((s + 1) * classes)], k)
                let b = topK(refLogits[(s * classes)..<((s + 1) * classes)], k)
                if a == b { same += 1 } else { print("sample \(s): top-\(k) \(a) but the reference has \(b)") }
            }
            print("top-\(k): identical for \(same) of \(n) samples")
            passed = passed && same == n
        }
        print(
            passed
                ? "PASS: every tap within relative error \(c.bound) of the reference, identical top-5"
                : "FAIL: outside the numerics bound (relative error <= \(c.bound), identical top-5)")
        return passed
    }

    private func metadata(_ sd: StateDict) -> [String: String] {
        var out: [String: String] = [:]
        for e in sd.extras where e.name == "__metadata__" {
            for entry in e.value.dictEntries ?? [] {
                if let k = entry.key.stringValue, let v = entry.value.stringValue { out[k] = v }
            }
        }
        return out
    }

    private func shapeText(_ shape: [Int]) -> String { "[" + shape.map(String.init).joined(separator: ", ") + "]" }

    private func topK(_ v: ArraySlice<Float>, _ k: Int) -> [Int] {
        Array(v.indices.sorted { v[$0] > v[$1] || (v[$0] == v[$1] && $0 < $1) }.prefix(k)).map { $0 - v.startIndex }
    }
}

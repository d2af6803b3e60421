import Checkpoint
import NeuralNet
import Testing

@testable import VisionModels

/// `Model.load`: remapping, strict validation and the load report, on tiny architectures built in memory.
@Suite("Loading")
struct LoadTests {
    static let tinyResNet = Architecture(
        name: "tiny_resnet", family: .resnet(ResNetConfig(block: .basic, layers: [1, 1], stemWidth: 4, stageWidths: [4, 8], numClasses: 3)))
    static let tinyDenseNet = Architecture(
        name: "tiny_densenet", family: .densenet(DenseNetConfig(growthRate: 2, blockConfig: [1, 2], numInitFeatures: 4, bnSize: 2, numClasses: 5)))

    /// A state dict for `arch` with small deterministic values (positive running variances).
    static func stateDict(_ arch: Architecture, rename: (String) -> String? = { $0 }, reshape: [String: [Int]] = [:], extra: [String] = []) throws -> StateDict {
        var entries: [(name: String, tensor: TensorData)] = []
        for (p, spec) in arch.parameters.enumerated() {
            guard let name = rename(spec.name) else { continue }
            let shape = reshape[spec.name] ?? spec.shape
            let n = shape.reduce(1, *)
            let values = (0..<n).map { i -> Float in
                spec.name.hasSuffix("running_var") ? 1 + Float((i + p) % 5) * 0.1 : Float(((i * 7 + p * 13) % 17) - 8) * 0.05
            }
            entries.append((name, try TensorData(float32: values, shape: shape)))
        }
        for e in extra { entries.append((e, try TensorData(float32: [1], shape: [1]))) }
        return try StateDict(tensors: entries, name: "tiny.pth")
    }

    @Test("a complete state dict loads with a clean report")
    func clean() throws {
        let model = try Model.load(Self.tinyResNet, pretrained: .stateDict(Self.stateDict(Self.tinyResNet)))
        #expect(model.report.isCompatible)
        #expect(model.report.matched == Self.tinyResNet.parameters.count)
        #expect(model.numClasses == 3)
        #expect(model.report.numClassesInferred)
        #expect(try model.parameter(named: "fc.bias")?.floats().count == 3)
    }

    @Test("every loaded parameter reads back bit for bit (weights are not kept twice)", arguments: [LoadTests.tinyResNet, LoadTests.tinyDenseNet])
    func parametersReadBack(_ arch: Architecture) throws {
        let sd = try Self.stateDict(arch)
        let model = try Model.load(arch, pretrained: .stateDict(sd))
        #expect(model.parameterNames == arch.parameters.map(\.name))
        for (name, tensor) in sd.entries {
            let back = try #require(model.parameter(named: name), "\(name) missing")
            #expect(back.dtype == tensor.dtype && back.shape == tensor.shape, "\(name)")
            let a = try back.floats(), b = try tensor.floats()
            #expect(a.elementsEqual(b) { $0.bitPattern == $1.bitPattern }, "\(name) differs")
        }
    }

    @Test("missing num_batches_tracked is defaulted, not missing")
    func optionalKeys() throws {
        let sd = try Self.stateDict(Self.tinyResNet, rename: { $0.hasSuffix("num_batches_tracked") ? nil : $0 })
        let model = try Model.load(Self.tinyResNet, pretrained: .stateDict(sd))
        #expect(model.report.defaulted.count == Self.tinyResNet.parameters.filter(\.isOptional).count)
        #expect(model.report.missing.isEmpty)
    }

    @Test("missing, unexpected and did-you-mean are reported with full paths")
    func missingAndSuggestions() throws {
        let sd = try Self.stateDict(Self.tinyResNet, rename: { $0 == "layer1.0.bn2.weight" ? "layer1.0.bn_2.weight" : $0 })
        do {
            _ = try Model.load(Self.tinyResNet, pretrained: .stateDict(sd))
            Issue.record("loaded with a missing key")
        } catch {
            let report = try #require(error.report)
            #expect(error.kind == .incompatibleWeights)
            #expect(report.missing == ["layer1.0.bn2.weight"])
            #expect(report.unexpected == ["layer1.0.bn_2.weight"])
            #expect(report.suggestions["layer1.0.bn2.weight"] == "layer1.0.bn_2.weight")
            #expect(error.description.contains("missing: layer1.0.bn2.weight (did you mean 'layer1.0.bn_2.weight'?)"))
        }
    }

    @Test("a shape mismatch names the key, the expected and the found shape")
    func shapeMismatch() throws {
        let sd = try Self.stateDict(Self.tinyResNet, reshape: ["layer2.0.conv1.weight": [8, 4, 1, 1]])
        do {
            _ = try Model.load(Self.tinyResNet, pretrained: .stateDict(sd))
            Issue.record("loaded with a wrong shape")
        } catch {
            let m = try #require(error.report?.shapeMismatches.first)
            #expect(m == LoadReport.ShapeMismatch(key: "layer2.0.conv1.weight", expected: [8, 4, 3, 3], found: [8, 4, 1, 1]))
            #expect(error.description.contains("shape mismatch: layer2.0.conv1.weight: expected [8, 4, 3, 3], found [8, 4, 1, 1]"))
        }
    }

    @Test("unexpected keys fail strict loading and are ignored otherwise")
    func unexpected() throws {
        let sd = try Self.stateDict(Self.tinyResNet, extra: ["aux.weight"])
        #expect(throws: ModelError.self) { _ = try Model.load(Self.tinyResNet, pretrained: .stateDict(sd)) }
        var lenient = LoadOptions()
        lenient.strict = false
        let model = try Model.load(Self.tinyResNet, pretrained: .stateDict(sd), options: lenient)
        #expect(model.report.unexpected == ["aux.weight"])
    }

    @Test("legacy DenseNet names load and are reported as renamed")
    func legacyDenseNet() throws {
        let legacy = try Self.stateDict(Self.tinyDenseNet, rename: { name in
            guard name.contains("denselayer"), !name.hasSuffix("num_batches_tracked") else {
                return name.hasSuffix("num_batches_tracked") ? nil : name  // old files have no num_batches_tracked
            }
            for p in ["norm1", "norm2", "conv1", "conv2"] where name.contains(".\(p).") {
                return name.replacingOccurrences(of: ".\(p).", with: ".\(p.dropLast()).\(p.last!).")
            }
            return name
        })
        let model = try Model.load(Self.tinyDenseNet, pretrained: .stateDict(legacy))
        let modern = try Model.load(Self.tinyDenseNet, pretrained: .stateDict(Self.stateDict(Self.tinyDenseNet)))
        #expect(model.report.renamed.count == 3 * 10)
        #expect(model.report.renamed.contains(LoadReport.Rename(
            from: "features.denseblock2.denselayer2.norm.1.weight", to: "features.denseblock2.denselayer2.norm1.weight")))
        let x = try Tensor(shape: [1, 3, 29, 29], data: (0..<(3 * 29 * 29)).map { Float($0 % 11) / 11 })
        #expect(try model(x) == modern(x))
    }

    @Test("the number of classes is inferred from the classifier, or given")
    func numClasses() throws {
        let ten = Self.tinyResNet.withNumClasses(10)
        let model = try Model.load(Self.tinyResNet, pretrained: .stateDict(Self.stateDict(ten)))
        #expect(model.numClasses == 10)
        var options = LoadOptions()
        options.numClasses = 3
        #expect(throws: ModelError.self) { _ = try Model.load(Self.tinyResNet, pretrained: .stateDict(Self.stateDict(ten)), options: options) }
    }

    @Test("any input size the architecture accepts, and batches", arguments: [[1, 3, 32, 32], [1, 3, 193, 257], [3, 3, 40, 24]])
    func inputSizes(_ shape: [Int]) throws {
        let model = try Model.load(Self.tinyResNet, pretrained: .stateDict(Self.stateDict(Self.tinyResNet)))
        let x = try Tensor(shape: shape, data: (0..<shape.reduce(1, *)).map { Float($0 % 13) / 13 })
        let taps = try model.features(x)
        #expect(taps.map(\.name) == ["stem", "layer1", "layer2", "prelogits", "logits"])
        #expect(taps.last!.tensor.shape == [shape[0], 3])
        #expect(try model(x) == taps.last!.tensor)
    }

    @Test("wrong input shapes are typed errors", arguments: [[1, 4, 32, 32], [1, 3, 32], [0, 3, 32, 32]])
    func badInput(_ shape: [Int]) throws {
        let model = try Model.load(Self.tinyResNet, pretrained: .stateDict(Self.stateDict(Self.tinyResNet)))
        let x = Tensor(zeros: shape)
        #expect(throws: ModelError.self) { _ = try model(x) }
    }

    @Test("one model called from 8 tasks at once gives bit-identical logits")
    func concurrency() async throws {
        let model = try Model.load(Self.tinyDenseNet, pretrained: .stateDict(Self.stateDict(Self.tinyDenseNet)))
        let x = try Tensor(shape: [2, 3, 33, 35], data: (0..<(2 * 3 * 33 * 35)).map { Float($0 % 29) / 29 - 0.5 })
        let serial = try model(x)
        let results = try await withThrowingTaskGroup(of: Tensor.self) { group in
            for _ in 0..<8 { group.addTask { try model(x) } }
            var out: [Tensor] = []
            for try await r in group { out.append(r) }
            return out
        }
        #expect(results.count == 8)
        #expect(results.allSatisfy { $0 == serial })
    }
}

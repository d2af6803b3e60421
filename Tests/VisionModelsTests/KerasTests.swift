import Checkpoint
import Foundation
import NeuralNet
import Testing

@testable import VisionModels

/// Keras weights into the ResNet and DenseNet graphs: names, layouts, flavors, and the activations
/// Keras 3.15 itself computed (tools/make_hdf5_fixtures.py). Bound: relative error <= 1e-4 per tap.
@Suite("Keras flavors")
struct KerasTests {
    static let dir = Golden.fixtures.appendingPathComponent("hdf5")
    static func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    /// The tiny configurations of configs.json.
    static let tinyResNet = Architecture(
        name: "keras_resnet_tiny", family: .resnet(.keras(layers: [2, 1, 1, 1], stageWidths: [2, 4, 8, 16], numClasses: 10)))
    static let tinyCaffe = Architecture(
        name: "keras_resnet_caffe_tiny",
        family: .resnet(.keras(layers: [2, 1, 1, 1], stageWidths: [2, 4, 8, 16], numClasses: 10, caffeNames: true)))
    static let tinyDenseNet: Architecture = {
        var c = DenseNetConfig.keras(blockConfig: [2, 1, 1, 1], numClasses: 10)
        c.growthRate = 8
        return Architecture(name: "keras_densenet_tiny", family: .densenet(c))
    }()

    static let files: [(String, String)] = [
        ("keras3_resnet.weights.h5", "resnet"), ("keras3_resnet_noname.weights.h5", "resnet"), ("keras3_legacy_resnet.h5", "resnet"),
        ("keras3_full_resnet.h5", "resnet"), ("keras2_resnet_tf.h5", "resnet"), ("keras22_resnet_caffe.h5", "caffe"),
        ("keras3_densenet.weights.h5", "densenet"), ("keras3_legacy_densenet.h5", "densenet"),
    ]

    static func architecture(_ kind: String) -> (Architecture, String) {
        switch kind {
        case "resnet": return (tinyResNet, "keras_resnet_tiny.ref.safetensors")
        case "caffe": return (tinyCaffe, "keras_resnet_caffe_tiny.ref.safetensors")
        default: return (tinyDenseNet, "keras_densenet_tiny.ref.safetensors")
        }
    }

    @Test("every tap within 1e-4 of Keras, identical top-5", arguments: files)
    func matchesKeras(_ file: String, _ kind: String) throws {
        let (arch, refName) = Self.architecture(kind)
        let model = try Model.load(arch, pretrained: .file(URL(fileURLWithPath: Self.path(file))))
        #expect(model.report.isCompatible)
        #expect(model.report.renamed.count == model.report.matched)
        let ref = try CheckpointReader.read(Self.path(refName))
        let input = try #require(ref["input"])
        let taps = try model.features(try Tensor(shape: input.shape, data: input.floats()))
        #expect(taps.map(\.name) == arch.tapNames)
        for (tap, ours) in taps {
            let reference = try #require(ref[tap], "reference lacks \(tap)")
            #expect(ours.shape == reference.shape, "\(file) \(tap)")
            let r = Golden.relativeError(ours.data, try reference.floats())
            #expect(r.error <= Golden.relativeBound, "\(file) \(tap): relative error \(r.error) at \(r.index)")
        }
        let logits = taps.last!.tensor
        let refLogits = try ref["logits"]!.floats()
        for n in 0..<logits.shape[0] {
            let c = logits.shape[1]
            #expect(Golden.topK(logits.data[(n * c)..<((n + 1) * c)], 5) == Golden.topK(refLogits[(n * c)..<((n + 1) * c)], 5))
        }
    }

    @Test("keras.applications' layer order, which numbers Keras 3's automatic names, is reproduced for the full-size models")
    func layerOrder() throws {
        let data = try Data(contentsOf: Self.dir.appendingPathComponent("keras_layer_order.json"))
        let order = try #require(try JSONSerialization.jsonObject(with: data) as? [String: [String]])
        #expect(order.count == 6)
        for (name, names) in order {
            let arch = try #require(Architecture.named(name))
            #expect(KerasNames.layerOrder(for: arch).map(\.name) == names, "\(name)")
            let automatic = KerasNames.automaticNames(for: arch)
            #expect(automatic.count == names.count)
            #expect(Set(automatic.values) == Set(names))
        }
    }

    @Test("every Keras layer of the full-size models maps to a distinct parameter of the architecture")
    func fullSizeNames() throws {
        for arch in Architecture.kerasApplications {
            let flavor = try #require(KerasFlavor(arch))
            let family = flavor.family
            let expected = Set(arch.parameters.map(\.name))
            var produced = Set<String>()
            let variables: [KerasNames.Kind: [String]] = [
                .conv: ["kernel", "bias"], .bn: ["gamma", "beta", "moving_mean", "moving_variance"], .dense: ["kernel", "bias"],
            ]
            var layers = KerasNames.layerOrder(for: arch).map(\.name)
            if flavor.naming == .caffe { layers = Self.caffeLayers(arch) }
            for layer in layers {
                let (module, kind) = try #require(
                    KerasNames.module(layer, family: family, naming: flavor.naming, architecture: arch), "\(arch.name): \(layer)")
                for v in variables[kind]! {
                    if kind == .conv, v == "bias", family == "densenet" { continue }
                    let p = try #require(KerasNames.parameter(v, layer: layer, kind: kind))
                    #expect(produced.insert(module + "." + p).inserted, "\(arch.name): \(layer)/\(v) collides")
                }
            }
            #expect(produced == expected.filter { !$0.hasSuffix("num_batches_tracked") }, "\(arch.name)")
        }
    }

    /// The Keras 2.2 ResNet50's weighted layers (keras-applications 1.0.8 resnet50.py).
    static func caffeLayers(_ arch: Architecture) -> [String] {
        guard case .resnet(let c) = arch.family else { return [] }
        var out = ["conv1", "bn_conv1"]
        for (s, count) in c.layers.enumerated() {
            for b in 0..<count {
                let letter = String(UnicodeScalar(UInt8(ascii: "a") + UInt8(b)))
                for branch in ["2a", "2b", "2c"] + (b == 0 ? ["1"] : []) {
                    out += ["res\(s + 2)\(letter)_branch\(branch)", "bn\(s + 2)\(letter)_branch\(branch)"]
                }
            }
        }
        return out + ["fc1000"]
    }

    @Test("parameter counts match Keras's count_params (FORMATS.md §4.3, §4.4)")
    func parameterCounts() {
        func all(_ a: Architecture) -> Int { a.parameters.filter { !$0.isOptional }.reduce(0) { $0 + $1.shape.reduce(1, *) } }
        #expect(all(.keras_resnet50) == 25_636_712)
        #expect(all(.keras_densenet121) == 8_062_504)
        #expect(all(.keras_densenet201) == 20_242_984)
        #expect(all(.keras_resnet101) - all(Architecture.resnet101) == 52_672)
    }

    @Test("flavors: which architectures are Keras, and the preprocessing their weights expect")
    func flavors() {
        #expect(KerasFlavor(.keras_resnet50)?.naming == .applications)
        #expect(KerasFlavor(.keras_resnet50_caffe)?.naming == .caffe)
        #expect(KerasFlavor(.keras_densenet169)?.family == "densenet")
        #expect(KerasFlavor(.resnet50) == nil && KerasFlavor(.densenet121) == nil)
        #expect(Architecture.keras_resnet152.expectedPreprocessing == "caffe-bgr")
        #expect(Architecture.keras_densenet121.expectedPreprocessing == "torch")
        #expect(Architecture.resnet50.expectedPreprocessing == "torch")
        #expect(Architecture.named("keras_resnet101") == .keras_resnet101)
        #expect(Architecture.named("resnet18") == .resnet18)
        if case .resnet(let c) = Architecture.keras_resnet50.family {
            #expect(c.convBias && c.stridePlacement == .firstConv1x1 && c.batchNormEps == 1.001e-5)
        }
        if case .resnet(let c) = Architecture.keras_resnet50_caffe.family { #expect(c.batchNormEps == 1e-3) }
    }

    @Test("name mapping examples")
    func names() {
        let a = Architecture.keras_resnet50
        #expect(
            KerasNames.module("conv2_block1_0_conv", family: "resnet", naming: .applications, architecture: a)?.0 == "layer1.0.downsample.0"
        )
        #expect(KerasNames.module("conv5_block3_3_bn", family: "resnet", naming: .applications, architecture: a)?.0 == "layer4.2.bn3")
        #expect(KerasNames.module("res4b1_branch2a", family: "resnet", naming: .caffe, architecture: a)?.0 == "layer3.1.conv1")
        #expect(KerasNames.module("bn3d_branch2c", family: "resnet", naming: .caffe, architecture: a)?.0 == "layer2.3.bn3")
        #expect(KerasNames.module("bn5a_branch1", family: "resnet", naming: .caffe, architecture: a)?.0 == "layer4.0.downsample.1")
        let d = Architecture.keras_densenet121
        #expect(
            KerasNames.module("conv3_block12_1_bn", family: "densenet", naming: .applications, architecture: d)?.0
                == "features.denseblock2.denselayer12.norm2")
        #expect(
            KerasNames.module("pool4_conv", family: "densenet", naming: .applications, architecture: d)?.0 == "features.transition3.conv")
        #expect(KerasNames.module("conv1_conv", family: "densenet", naming: .caffe, architecture: d) == nil)
        #expect(KerasNames.parameter("conv1_W", layer: "conv1", kind: .conv) == "weight")
        #expect(KerasNames.parameter("bn_conv1_running_std", layer: "bn_conv1", kind: .bn) == "running_var")
        #expect(KerasNames.isAutomatic("conv2d_12") && KerasNames.isAutomatic("dense") && !KerasNames.isAutomatic("conv2d_x"))
    }

    @Test("permuted views are zero-copy and index correctly")
    func permuted() throws {
        let t = try TensorData(float32: (0..<24).map(Float.init), shape: [2, 3, 4])
        let p = try t.permuted([2, 0, 1])
        #expect(p.shape == [4, 2, 3])
        #expect(p.storage.bytes.offset == t.storage.bytes.offset && p.storage.bytes.buffer === t.storage.bytes.buffer)
        let v = try p.floats()
        for a in 0..<4 { for b in 0..<2 { for c in 0..<3 { #expect(v[(a * 2 + b) * 3 + c] == Float((b * 3 + c) * 4 + a)) } } }
        #expect(throws: CheckpointError.self) { try t.permuted([0, 0, 1]) }
    }

    @Test("Keras weights meeting another flavor are refused, naming the architecture to use")
    func flavorMismatch() {
        let cases: [(String, Architecture, String)] = [
            ("keras3_legacy_resnet.h5", .resnet50, "keras_resnet50"),
            ("keras22_resnet_caffe.h5", Self.tinyResNet, "keras_resnet50_caffe"),
            ("keras3_densenet.weights.h5", .densenet121, "keras_densenet121"),
            ("keras1_channels_first.h5", Self.tinyResNet, "channels-first"),
        ]
        for (file, arch, phrase) in cases {
            #expect {
                try Model.load(arch, pretrained: .file(URL(fileURLWithPath: Self.path(file))))
            } throws: { error in
                guard let e = error as? ModelError else { return false }
                return e.kind == .incompatibleWeights && e.message.contains(phrase)
            }
        }
    }
}

import Checkpoint
import Foundation
import NeuralNet
import Testing

@testable import VisionModels
import VisionData

/// The weight registry: completeness, internal consistency and agreement with the architectures.
@Suite("Weight registry")
struct RegistryTests {
    static let torchvisionNames = [
        "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d",
        "wide_resnet50_2", "wide_resnet101_2", "densenet121", "densenet161", "densenet169", "densenet201",
    ]

    @Test("every torchvision architecture has its entries and exactly one default", arguments: torchvisionNames)
    func torchvisionComplete(_ arch: String) throws {
        let entries = WeightRegistry.entries(for: arch).filter { $0.origin == .torchvision }
        #expect(entries.filter(\.isDefault).count == 1)
        let tags = Set(entries.map(\.tag))
        #expect(tags.contains("IMAGENET1K_V1"))
        let hasV2 = !arch.hasPrefix("densenet") && arch != "resnet18" && arch != "resnet34" && arch != "resnext101_64x4d"
        #expect(tags.contains("IMAGENET1K_V2") == hasV2)
        let d = try #require(WeightRegistry.defaultEntry(for: arch))
        #expect(d.tag == (hasV2 ? "IMAGENET1K_V2" : "IMAGENET1K_V1"))
        let resize = hasV2 || arch == "resnext101_64x4d" ? 232 : 256
        if case .shorterSide(let r) = d.preprocessing.resize { #expect(r == resize) } else { Issue.record("resize") }
        // Parameter counts agree with the architecture's own manifest (weights and biases, no BN statistics).
        let architecture = try #require(Architecture(named: arch))
        let learnable = architecture.parameters.filter {
            !$0.name.hasSuffix("running_mean") && !$0.name.hasSuffix("running_var") && !$0.isOptional
        }
        let count = learnable.reduce(0) { $0 + $1.shape.reduce(1, *) }
        for e in entries where e.parameterCount != nil { #expect(e.parameterCount == count, "\(e.name)") }
    }

    @Test("counts: 21 torchvision enum entries, 9 legacy names, 16 SE entries, 14 Keras files")
    func counts() {
        let tv = WeightRegistry.entries.filter { $0.origin == .torchvision }
        #expect(tv.filter { $0.tag != "LEGACY" }.count == 21)
        #expect(tv.filter { $0.tag == "LEGACY" }.count == 9)
        #expect(WeightRegistry.entries.filter { $0.origin == .timm || $0.origin == .cadene }.count == 16)
        #expect(WeightRegistry.entries.filter { $0.origin == .keras }.count == 14)
    }

    @Test("hash rules: torch hub names carry their SHA-256 prefix, Keras files a 32-hex MD5")
    func integrityRules() {
        for e in WeightRegistry.entries {
            switch e.integrity {
            case .sha256Prefix(let p):
                #expect(e.origin != .keras)
                #expect(e.fileName.contains("-\(p)."), "\(e.name)")
                #expect(p.count >= 8)
            case .md5(let m):
                #expect(e.origin == .keras)
                #expect(m.count == 32 && m.allSatisfy(\.isHexDigit), "\(e.name)")
            case .none:
                Issue.record("\(e.name) has no integrity rule")
            }
            #expect(e.url.hasPrefix("https://") || (e.origin == .cadene && e.url.hasPrefix("http://")), "\(e.name)")
            #expect(e.url.hasSuffix("/" + e.fileName))
        }
        // Names are unique; file names too, except the two Keras ResNet50 generations and the Cadene
        // files timm mirrors under the same names (v0.1-cadene).
        #expect(Set(WeightRegistry.entries.map(\.name)).count == WeightRegistry.entries.count)
        let shared = Dictionary(grouping: WeightRegistry.entries, by: \.fileName).filter { $0.value.count > 1 }
        #expect(
            Set(shared.keys) == [
                "resnet50_weights_tf_dim_ordering_tf_kernels.h5", "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
                "se_resnet50-ce0d4300.pth", "se_resnet101-7e38fcc6.pth", "se_resnet152-d17c99b7.pth",
            ])
    }

    @Test("torch hub's hash rule from file names")
    func hubRule() {
        #expect(IntegrityRule.fromTorchHubFileName("resnet50-11ad3fa6.pth") == .sha256Prefix("11ad3fa6"))
        #expect(IntegrityRule.fromTorchHubFileName("seresnext26_32x4d-65ebdb501.pth") == .sha256Prefix("65ebdb501"))
        #expect(IntegrityRule.fromTorchHubFileName("legacy_se_resnext50_32x4d-f3651bad.pth") == .sha256Prefix("f3651bad"))
        #expect(IntegrityRule.fromTorchHubFileName("model.pth") == IntegrityRule.none)
        #expect(IntegrityRule.fromTorchHubFileName("a-XYZ.pth") == IntegrityRule.none)
        #expect(IntegrityRule.sha256Prefix("ab").accepts(sha256: "abcd", md5: ""))
        #expect(!IntegrityRule.md5("00").accepts(sha256: "", md5: "01"))
    }

    @Test("lookups: by tag, by name, by file name and stem; preprocessing and categories travel with entries")
    func lookups() throws {
        #expect(WeightRegistry.entry(for: "resnet50", tag: "imagenet1k_v2")?.fileName == "resnet50-11ad3fa6.pth")
        #expect(WeightRegistry.entry(named: "ResNet50_Weights.IMAGENET1K_V1")?.fileName == "resnet50-0676ba61.pth")
        #expect(WeightRegistry.entry(named: "resnet50-19c8e357.pth")?.tag == "LEGACY")
        #expect(WeightRegistry.entry(named: "densenet121-a639ec97")?.architecture == "densenet121")
        #expect(WeightRegistry.entry(matchingPath: "/x/weights/resnet50-11ad3fa6.safetensors")?.name == "ResNet50_Weights.IMAGENET1K_V2")
        let keras = try #require(WeightRegistry.entry(named: "keras.ResNet50"))
        #expect(keras.preprocessing.channelOrder == .bgr && keras.preprocessing.divisor == nil)
        #expect(keras.integrity == .md5("2cb95161c43110f7111970584f804107"))
        #expect(WeightRegistry.entry(named: "keras.DenseNet121.notop")?.categories == WeightEntry.Categories.none)
        let se18 = try #require(WeightRegistry.defaultEntry(for: "legacy_seresnet18"))
        #expect(se18.preprocessing.interpolation == .bicubic)
        #expect(se18.categories.names.count == 1000)
        #expect(WeightRegistry.entries(for: "se_resnet50").count == 2)
    }

    @Test("PretrainedSource resolves to registry entries like torchvision's weights= API")
    func sources() throws {
        #expect(try PretrainedSource.imagenet1kV2.registryEntry(for: .resnet50)?.name == "ResNet50_Weights.IMAGENET1K_V2")
        #expect(try PretrainedSource.default.registryEntry(for: .resnet50)?.name == "ResNet50_Weights.IMAGENET1K_V2")
        #expect(try PretrainedSource.default.registryEntry(for: .resnet18)?.name == "ResNet18_Weights.IMAGENET1K_V1")
        #expect(try PretrainedSource.named("LEGACY").registryEntry(for: .resnet34)?.fileName == "resnet34-333f7ec4.pth")
        let e = try #require(throws: ModelError.self) { try PretrainedSource.imagenet1kV2.registryEntry(for: .resnet18) }
        #expect(e.kind == .invalidConfiguration && e.message.contains("IMAGENET1K_V1"))
        let wrong = try #require(throws: ModelError.self) {
            try PretrainedSource.named("ResNet50_Weights.IMAGENET1K_V2").registryEntry(for: .resnet18)
        }
        #expect(wrong.message.contains("not resnet18"))
        #expect(try PretrainedSource.file(URL(fileURLWithPath: "/x.pth")).registryEntry(for: .resnet18) == nil)
    }

    @Test("top-k: softmax probabilities, descending order, ties by index, labels or 'class N'")
    func topK() throws {
        let logits = try NeuralNet.Tensor(shape: [2, 4], data: [1, 3, 3, -1, 0, 0, 0, 1000])
        let out = Model.topK(logits: logits, k: 3, labels: ["a", "b", "c"])
        #expect(out[0].map(\.index) == [1, 2, 0])
        #expect(out[0].map(\.label) == ["b", "c", "a"])
        let e = [exp(1.0), exp(3.0), exp(3.0), exp(-1.0)]
        #expect(abs(Double(out[0][0].probability) - e[1] / e.reduce(0, +)) < 1e-6)
        #expect(out[1][0].index == 3 && out[1][0].label == "class 3" && out[1][0].probability == 1)
        #expect(Model.topK(logits: logits, k: 10, labels: []).map(\.count) == [4, 4])
    }

    @Test("MD5 against the RFC 1321 test suite, in one piece and in pieces")
    func md5() {
        let vectors: [(String, String)] = [
            ("", "d41d8cd98f00b204e9800998ecf8427e"), ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"), ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            ("abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"),
            ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "d174ab98d277d9f5a5611c2c9f419d9f"),
            (String(repeating: "1234567890", count: 8), "57edf4a22be3c955ac49da2e2107b67a"),
        ]
        for (text, hex) in vectors {
            #expect(MD5.hex(MD5.hash(Array(text.utf8))) == hex, "\(text)")
            var m = MD5()
            for chunk in Array(text.utf8).chunked(7) { m.update(chunk) }
            #expect(MD5.hex(m.finalize()) == hex)
        }
        var million = MD5()
        let block = [UInt8](repeating: UInt8(ascii: "a"), count: 1000)
        for _ in 0..<1000 { million.update(block) }
        #expect(MD5.hex(million.finalize()) == "7707d6ae4e027c70eea2a935c2296f21")
    }
}

extension Array {
    func chunked(_ n: Int) -> [[Element]] {
        stride(from: 0, to: count, by: n).map { Array(self[$0..<Swift.min($0 + n, count)]) }
    }
}

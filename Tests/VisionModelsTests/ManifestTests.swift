import Testing

@testable import VisionModels

/// Each Swift graph's parameter list equals the manifest generated from torchvision
/// (`tools/make_manifests.py`): every key, in order, with its shape, and the parameter count.
@Suite("Manifests")
struct ManifestTests {
    @Test("parameter keys, order and shapes equal torchvision's", arguments: Architecture.all.map(\.name))
    func manifest(_ name: String) throws {
        let arch = try #require(Architecture(named: name))
        let (reference, params) = try Golden.manifest(name)
        let ours = arch.parameters
        #expect(ours.count == reference.count, "\(name): \(ours.count) keys, torchvision has \(reference.count)")
        for (o, r) in zip(ours, reference) where o != r {
            Issue.record("\(name): \(o.name) \(o.shape) but torchvision has \(r.name) \(r.shape)")
            break
        }
        #expect(arch.learnableParameterCount == params, "\(name) parameter count")
    }

    @Test("legacy DenseNet names are rewritten the way torchvision's loader does", arguments: [
        ("features.denseblock1.denselayer1.norm.1.weight", "features.denseblock1.denselayer1.norm1.weight"),
        ("features.denseblock4.denselayer16.conv.2.weight", "features.denseblock4.denselayer16.conv2.weight"),
        ("features.denseblock2.denselayer12.norm.2.running_var", "features.denseblock2.denselayer12.norm2.running_var"),
        ("module.features.denseblock3.denselayer7.relu.1.bias", "module.features.denseblock3.denselayer7.relu1.bias"),
    ])
    func legacyDenseNet(_ from: String, _ to: String) {
        #expect(KeyRemapper.legacyDenseNet(from) == to)
    }

    @Test("keys outside the legacy pattern are left alone", arguments: [
        "features.denseblock1.denselayer1.norm1.weight", "features.denseblock1.denselayer1.norm.1.num_batches_tracked",
        "features.norm5.weight", "features.transition1.norm.weight", "layer1.0.conv1.weight", "features.denselayer.norm.1.weight",
    ])
    func notLegacy(_ key: String) {
        #expect(KeyRemapper.legacyDenseNet(key) == nil)
    }

    @Test("edit distance is bounded")
    func distance() {
        #expect(KeyRemapper.distance("layer1.0.bn1.weight", "layer1.0.bn1.weight", limit: 3) == 0)
        #expect(KeyRemapper.distance("layer1.0.bn1.weight", "layer1.0.bn2.weight", limit: 3) == 1)
        #expect(KeyRemapper.distance("fc.weight", "classifier.weight", limit: 3) == nil)
    }
}

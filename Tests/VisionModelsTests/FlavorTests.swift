import Checkpoint
import NeuralNet
import Testing

@testable import VisionModels

/// Flavor detection (Cadene vs timm SE naming, torchvision vs SE, CIFAR options) and CIFAR depth
/// inference, on tiny configurations built in memory.
@Suite("Flavors")
struct FlavorTests {
    static func tiny(_ naming: ResNetConfig.Naming) -> Architecture {
        var c = ResNetConfig(block: .bottleneck, layers: [1, 1], stemWidth: 8, stageWidths: [32, 64], numClasses: 4)
        if naming == .cadene {
            c.naming = .cadene
            c.stem = .caffe
            c.headName = "last_linear"
            c.stridePlacement = .firstConv1x1
            c.squeezeExcitation = .init(reduction: 16, divisor: nil)
        } else {
            c.squeezeExcitation = .init(reduction: 16, divisor: 8)
        }
        return Architecture(name: naming == .cadene ? "tiny_se_resnet" : "tiny_seresnet", family: .resnet(c))
    }

    @Test("every built-in architecture's own keys are recognised as its flavor", arguments: Architecture.all.map(\.name))
    func detectOwnFlavor(_ name: String) throws {
        let arch = try #require(Architecture.all.first { $0.name == name })
        #expect(WeightFlavor.detect(arch.parameters.map { ($0.name, $0.shape) }) == arch.flavor)
    }

    @Test("Cadene SE weights are refused by a timm SE-ResNet, and the reverse, unless overridden")
    func cadeneVersusTimm() throws {
        let cadene = Self.tiny(.cadene), timm = Self.tiny(.torchvision)
        for (from, to) in [(cadene, timm), (timm, cadene)] {
            let sd = try LoadTests.stateDict(from)
            do {
                _ = try Model.load(to, pretrained: .stateDict(sd))
                Issue.record("\(from.name) weights loaded into \(to.name)")
            } catch {
                #expect(error.kind == .flavorMismatch)
                #expect(error.report?.detectedFlavor == from.flavor)
                #expect(error.message.contains("\(from.flavor) weights"))
            }
            var options = LoadOptions()
            options.allowFlavorMismatch = true
            let model = try Model.load(to, pretrained: .stateDict(sd), options: options)
            #expect(model.report.isCompatible)
            #expect(model.report.detectedFlavor == from.flavor)
            #expect(model.report.renamed.count == 6 + 8 + 2)  // stem conv + bn (6 keys), two SE modules (8), head (2)
            // The same weights compute differently in the other flavor (stride placement and stem pool).
            let native = try Model.load(from, pretrained: .stateDict(sd))
            let x = try Tensor(shape: [1, 3, 37, 41], data: (0..<(3 * 37 * 41)).map { Float($0 % 23) / 23 - 0.4 })
            #expect(try native(x) != model(x))
        }
    }

    @Test("plain torchvision ResNet weights are refused by an SE network")
    func torchvisionIntoSE() throws {
        var plainConfig = ResNetConfig(block: .bottleneck, layers: [1, 1, 1, 1], stemWidth: 8, stageWidths: [32, 32, 32, 32], numClasses: 4)
        plainConfig.squeezeExcitation = nil
        let plain = Architecture(name: "tiny_resnet", family: .resnet(plainConfig))
        var seConfig = plainConfig
        seConfig.squeezeExcitation = .init(reduction: 16, divisor: 8)
        let se = Architecture(name: "tiny_seresnet4", family: .resnet(seConfig))
        #expect(throws: ModelError.self) { _ = try Model.load(se, pretrained: .stateDict(LoadTests.stateDict(plain))) }
    }

    @Test("CIFAR depth and shortcut option come from the keys, never from the file name", arguments: [(20, false), (32, false), (56, true), (8, false)])
    func cifarDepth(_ depth: Int, _ optionB: Bool) throws {
        let arch = try #require(Architecture.cifarResNet(depth: depth, optionB: optionB))
        let sd = try LoadTests.stateDict(arch)
        let inferred = try Architecture.cifarResNet(inferringFrom: sd)
        #expect(inferred == arch)
        #expect(WeightFlavor.detect(sd) == (optionB ? .cifarOptionB : .cifarOptionA))
        // A resnet20 file loaded as resnet56 is refused with the missing blocks listed.
        if depth == 20 {
            do {
                _ = try Model.load(.resnet56, pretrained: .stateDict(sd))
                Issue.record("resnet20 weights loaded as resnet56")
            } catch {
                #expect(error.report?.missing.contains("layer1.3.conv1.weight") == true)
            }
        }
    }

    @Test("the shipped example is a CIFAR ResNet-8 with option A shortcuts, and it runs")
    func example() throws {
        let path = Golden.fixtures.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("weights/examples/cifar_resnet8_random.pth").path
        let sd = try CheckpointReader.read(path)
        let arch = try Architecture.cifarResNet(inferringFrom: sd)
        #expect(arch.name == "resnet8")
        let model = try Model.load(arch, pretrained: .stateDict(sd))
        #expect(model.report.isCompatible)
        let x = try Tensor(shape: [1, 3, 32, 32], data: [Float](repeating: 0.1, count: 3 * 32 * 32))
        #expect(try model(x).shape == [1, 10])
    }
}

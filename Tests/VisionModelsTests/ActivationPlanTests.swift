import Checkpoint
import NeuralNet
import Testing

@testable import VisionModels

/// The memory plan of the ResNet graphs: values largest first, each into the first slot none of whose
/// values is live at the same time.
@Suite("Activation plan")
struct ActivationPlanTests {
    @Test("greedy by size over lifetimes: exact slots, and the slots' memory as assigned")
    func greedyBySize() throws {
        let ws = Workspace(slots: 1)
        let dry = ActivationPlan(ws, firstSlot: 1, assignment: nil)
        #expect(dry.dry)
        // A block: input a (live to the end), branch b then c (b read by c), projection d after the
        // branch, in place; then e, the next block's first branch value.
        let a = dry.take(100).id
        let b = dry.take(40).id
        let c = dry.take(30).id
        dry.release(b)
        let d = dry.take(80).id
        dry.release(c)
        dry.release(a)
        let e = dry.take(60).id
        #expect([a, b, c, d, e] == [0, 1, 2, 3, 4])
        // Largest first: a (100) -> 0; d (80) lives with a -> 1; e (60) is born after a dies -> 0; b (40)
        // lives with a but dies before d is born -> 1; c (30) lives with a, b and d -> 2.
        #expect(ws.capacity == 0)  // recording takes no memory
        let assignment = dry.assign()
        #expect(assignment == [0, 1, 2, 1, 0])
        // Reserved for each slot's largest value (its first): slots 1, 2, 3 of the workspace hold 100, 80
        // and 30 floats; slot 0 is not the plan's.
        #expect(ws.capacity == 100 + 80 + 30)

        let plan = ActivationPlan(ws, firstSlot: 1, assignment: assignment)
        #expect(!plan.dry)
        let pa = plan.take(100).pointer
        let pb = plan.take(40).pointer
        _ = plan.take(30)
        let pd = plan.take(80).pointer
        let pe = plan.take(60).pointer
        #expect(pa == pe && pb == pd && pa != pb)  // no slot grew
        #expect(ws.capacity == 100 + 80 + 30)
    }
}

/// The DenseNet graph's two buffers: the block's and the bottleneck output's. The stem runs in parts of
/// a quarter of the bottleneck's channels, so that its output (4x the plane of a block) fits the
/// bottleneck slot at batch 1 instead of doubling it.
@Suite("DenseNet memory plan")
struct DenseNetPlanTests {
    @Test("the stem in parts: batch 1 keeps one block buffer and one bottleneck output; the logits match the whole stem's")
    func stemParts() throws {
        // growth 8, bottleneck 4 x 8 = 32 channels, stem 16 channels: two parts of 8.
        let arch = ConcurrencyTests.denseNet
        let dict = try ConcurrencyTests.stateDict(arch)
        let model = try Model.load(arch, pretrained: .stateDict(dict))
        #expect(model.workspaceBytes == 0)
        // 32 x 32: stem 16 x 16, pool 8 x 8; block 1 holds 16 + 2 x 8 = 32 channels (2048 floats), its
        // bottleneck output 32 channels (2048); a stem part 8 x 16 x 16 = 2048 (the whole stem: 4096).
        let one = try Tensor(shape: [1, 3, 32, 32], data: FormulaWeights.input(shape: [1, 3, 32, 32], seed: 7))
        let y1 = try model(one)
        #expect(model.workspaceBytes == (2048 + 2048) * 4)
        // Batch 2: both buffers hold two images; a stem part is still one image's.
        let two = try Tensor(shape: [2, 3, 32, 32], data: FormulaWeights.input(shape: [2, 3, 32, 32], seed: 7))
        let y2 = try model(two)
        #expect(model.workspaceBytes == (2 * 2048 + 2 * 2048) * 4)
        // Each image's logits the same whatever the batch (the stem runs image by image, part by part).
        let perImage = 10
        let first = try model(try Tensor(shape: [1, 3, 32, 32], data: Array(two.data[0..<3 * 32 * 32])))
        #expect(y1.data.count == perImage)
        #expect(y2.data[0..<perImage].map(\.bitPattern) == first.data.map(\.bitPattern))
        // The stem's parts together: the whole conv0 -> norm0 -> ReLU -> max pool of the reference ops.
        func floats(_ name: String) throws -> [Float] { try #require(dict[name]).floats() }
        let conv0 = try Conv2d(config: Conv2dConfig(inChannels: 3, outChannels: 16, kernel: 7, stride: 2, padding: 3),
                               weight: try floats("features.conv0.weight"), bias: nil)
        let norm0 = try BatchNorm2d(weight: try floats("features.norm0.weight"), bias: try floats("features.norm0.bias"),
                                    runningMean: try floats("features.norm0.running_mean"), runningVar: try floats("features.norm0.running_var"))
        let reference = try Ops.maxPool2d(try norm0(try conv0(two), activation: .relu), kernel: 3, stride: 2, padding: 1)
        let stem = try #require(try model.features(two).first { $0.name == "stem" }).tensor
        #expect(stem.shape == [2, 16, 8, 8])
        let scale = reference.data.map(abs).max()!
        let error = zip(stem.data, reference.data).map { abs($0 - $1) }.max()!
        #expect(scale > 0.1 && error <= 1e-5 * scale, "stem error \(error) against a largest value \(scale)")
    }
}

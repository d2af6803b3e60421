import NeuralNet
import Testing

/// PyTorch semantics that random goldens do not reach: NaN propagation and empty batches.
@Suite("Edge semantics")
struct SemanticsTests {
    @Test("maxPool2d and relu propagate NaN as PyTorch does")
    func nan() throws {
        // torch: F.max_pool2d(tensor([[[[nan, 1], [2, 3]]]]), 2) -> nan, and likewise with nan second.
        for data: [Float] in [[.nan, 1, 2, 3], [1, .nan, 2, 3]] {
            let y = try Ops.maxPool2d(try Tensor(shape: [1, 1, 2, 2], data: data), kernel: 2, stride: 2)
            #expect(y.shape == [1, 1, 1, 1])
            #expect(y.data[0].isNaN)
        }
        // torch.relu keeps NaN.
        let r = Ops.relu(try Tensor(shape: [3], data: [.nan, -1, 2]))
        #expect(r.data[0].isNaN && r.data[1] == 0 && r.data[2] == 2)
    }

    @Test("an empty batch gives an empty output of the right shape")
    func emptyBatch() throws {
        let conv = try Conv2d(
            config: Conv2dConfig(inChannels: 4, outChannels: 8, kernel: 3, padding: 1),
            weight: [Float](repeating: 0, count: 288), bias: nil)
        let y = try conv(Tensor(zeros: [0, 4, 8, 8]))
        #expect(y.shape == [0, 8, 8, 8] && y.data.isEmpty)
        let linear = try Linear(weight: [1, 2], bias: [0], inFeatures: 2, outFeatures: 1)
        #expect(try linear(Tensor(zeros: [0, 2])).shape == [0, 1])
        #expect(try Ops.maxPool2d(Tensor(zeros: [0, 3, 4, 4]), kernel: 2, stride: 2).shape == [0, 3, 2, 2])
    }

    @Test("1x1 convolutions take the GEMM-only paths and agree with the general im2col path")
    func pointwisePaths() throws {
        // The same 1x1 weights run as a plain GEMM (stride 1), subsample + GEMM (stride 2) and, with a
        // zero padding of 1 cropped away, through im2col; all three must agree exactly on shared pixels.
        let weights = (0..<24).map { Float($0 % 7) - 3 }
        let x = try Tensor(shape: [1, 4, 5, 5], data: (0..<100).map { Float($0 % 11) - 5 })
        let direct = try Conv2d(
            config: Conv2dConfig(inChannels: 4, outChannels: 6, kernel: 1), weight: weights, bias: nil)(x)
        let strided = try Conv2d(
            config: Conv2dConfig(inChannels: 4, outChannels: 6, kernel: 1, stride: 2), weight: weights, bias: nil)(x)
        let padded = try Conv2d(
            config: Conv2dConfig(inChannels: 4, outChannels: 6, kernel: 1, padding: 1), weight: weights, bias: nil)(x)
        #expect(direct.shape == [1, 6, 5, 5] && strided.shape == [1, 6, 3, 3] && padded.shape == [1, 6, 7, 7])
        for o in 0..<6 {
            for y in 0..<5 {
                for xx in 0..<5 {
                    let d = direct.data[(o * 5 + y) * 5 + xx]
                    #expect(padded.data[(o * 7 + y + 1) * 7 + xx + 1] == d)
                    if y % 2 == 0 && xx % 2 == 0 { #expect(strided.data[(o * 3 + y / 2) * 3 + xx / 2] == d) }
                }
            }
        }
    }
}

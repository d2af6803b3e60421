import Checkpoint
import NeuralNet
import Testing

/// Conv followed by BatchNorm2d in eval mode (`bn(conv(x))` in torch, `norm_goldens`), folded into one
/// convolution here; bound 1e-5 relative.
@Suite("BatchNorm folding, BatchNorm2d and Linear goldens")
struct NormLinearGoldenTests {
    @Test(
        "conv.folding(bn) matches torch's bn(conv(x)) and Swift's conv-then-BN",
        arguments: ["fold3x3", "fold1x1_bias", "fold3x3_groups4"])
    func folding(name: String) throws {
        let sd = try Golden.file("norm_linear.pth")
        let x = try Golden.tensor(sd, "\(name).input")
        let conv = try Golden.conv(sd, name, inChannels: x.shape[1])
        let bn = try Golden.batchNorm(sd, "\(name).bn")
        let folded = try conv.folding(bn)
        #expect(folded.bias != nil)
        let expected = try Golden.tensor(sd, "\(name).output")
        Golden.expectClose(try folded(x), expected, "\(name) folded")
        Golden.expectClose(
            try folded(x, activation: .relu), try Golden.tensor(sd, "\(name).output_relu"), "\(name) folded+relu")
        // Folding equals this module's own conv followed by batch norm.
        let unfolded = try bn(try conv(x))
        Golden.expectClose(try folded(x), unfolded, "\(name) folded vs conv-then-BN")
        Golden.expectClose(unfolded, expected, "\(name) conv-then-BN")
    }

    @Test("BatchNorm2d matches torch's BatchNorm2d in eval mode, with and without fused ReLU")
    func batchNorm() throws {
        let sd = try Golden.file("norm_linear.pth")
        let x = try Golden.tensor(sd, "batchnorm.input")
        let bn = try Golden.batchNorm(sd, "batchnorm.bn")
        Golden.expectClose(try bn(x), try Golden.tensor(sd, "batchnorm.output"), "batchnorm")
        Golden.expectClose(
            try bn(x, activation: .relu), try Golden.tensor(sd, "batchnorm.output_relu"), "batchnorm+relu")
    }

    @Test("Linear matches torch's nn.Linear", arguments: ["linear", "linear_nobias"])
    func linear(name: String) throws {
        let sd = try Golden.file("norm_linear.pth")
        let x = try Golden.tensor(sd, "\(name).input")
        let w = try Golden.tensor(sd, "\(name).weight")
        let layer = try Linear(
            weight: w.data, bias: try Golden.optionalFloats(sd, "\(name).bias"), inFeatures: w.shape[1],
            outFeatures: w.shape[0])
        Golden.expectClose(try layer(x), try Golden.tensor(sd, "\(name).output"), name)
    }

    @Test("scaleShift is batch norm's affine form, computed in Double and rounded once")
    func scaleShift() throws {
        let bn = try BatchNorm2d(weight: [2, 0.5], bias: [1, -1], runningMean: [3, -2], runningVar: [4, 0.25], eps: 0)
        let (scale, shift) = bn.scaleShift
        #expect(scale == [1, 1])
        #expect(shift == [-2, 1])
    }
}

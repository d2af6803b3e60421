import Checkpoint
import NeuralNet
import Testing

/// Convolutions against `F.conv2d` (torch 2.13): `tools/make_neuralnet_goldens.py`, `conv_goldens`, e.g.
/// `y = F.conv2d(x, weight, bias, stride=s, padding=p, dilation=d, groups=g)`; bound 1e-5 relative.
@Suite("Conv2d goldens")
struct ConvGoldenTests {
    static let cases = [
        "conv3x3", "conv7x7s2", "conv1x1", "conv1x1s2", "conv1x1_groups2", "conv3x3_groups4_s2",
        "conv3x3_depthwise", "conv3x3_dilation2", "conv_rect_1x3", "conv3x3_nopad_s2",
    ]

    @Test("conv2d matches F.conv2d, with and without fused ReLU", arguments: cases)
    func conv(name: String) throws {
        let sd = try Golden.file("conv.pth")
        let x = try Golden.tensor(sd, "\(name).input")
        let conv = try Golden.conv(sd, name, inChannels: x.shape[1])
        Golden.expectClose(try conv(x), try Golden.tensor(sd, "\(name).output"), name)
        Golden.expectClose(
            try conv(x, activation: .relu), try Golden.tensor(sd, "\(name).output_relu"), "\(name)+relu")
    }

    @Test("every conv golden case is listed")
    func allCasesListed() throws {
        let sd = try Golden.file("conv.pth")
        let inFile = Set(sd.names.filter { $0.hasSuffix(".config") }.map { String($0.dropLast(".config".count)) })
        #expect(inFile == Set(Self.cases))
    }
}

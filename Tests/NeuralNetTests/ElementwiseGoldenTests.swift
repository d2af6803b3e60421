import Checkpoint
import NeuralNet
import Testing

/// Element-wise and shape ops against torch (`elementwise_goldens` in `tools/make_neuralnet_goldens.py`):
/// relu, flatten, concat, add (+relu) and channel scaling are single IEEE operations or copies, so they
/// must be bit-exact; sigmoid (`torch.sigmoid`, an exp) within 1e-5 relative.
@Suite("Element-wise and shape goldens")
struct ElementwiseGoldenTests {
    @Test("relu equals torch.relu exactly")
    func relu() throws {
        let sd = try Golden.file("elementwise.pth")
        Golden.expectExact(Ops.relu(try Golden.tensor(sd, "relu.input")), try Golden.tensor(sd, "relu.output"), "relu")
    }

    @Test("flatten equals torch.flatten(x, 1) exactly")
    func flatten() throws {
        let sd = try Golden.file("elementwise.pth")
        Golden.expectExact(
            Ops.flatten(try Golden.tensor(sd, "flatten.input")), try Golden.tensor(sd, "flatten.output"), "flatten")
    }

    @Test("concatChannels equals torch.cat(dim=1) exactly")
    func concat() throws {
        let sd = try Golden.file("elementwise.pth")
        let xs = try (0..<3).map { i in try Golden.tensor(sd, "concat.input\(i)") }
        Golden.expectExact(try Ops.concatChannels(xs), try Golden.tensor(sd, "concat.output"), "concat")
    }

    @Test("add and add+relu equal torch exactly")
    func add() throws {
        let sd = try Golden.file("elementwise.pth")
        let a = try Golden.tensor(sd, "add.a"), b = try Golden.tensor(sd, "add.b")
        Golden.expectExact(try Ops.add(a, b), try Golden.tensor(sd, "add.output"), "add")
        Golden.expectExact(
            try Ops.add(a, b, activation: .relu), try Golden.tensor(sd, "add.output_relu"), "add+relu")
    }

    @Test("sigmoid matches torch.sigmoid")
    func sigmoid() throws {
        let sd = try Golden.file("elementwise.pth")
        Golden.expectClose(
            Ops.sigmoid(try Golden.tensor(sd, "sigmoid.input")), try Golden.tensor(sd, "sigmoid.output"), "sigmoid")
    }

    @Test("scaleChannels equals x * gates exactly, with gates [N, C, 1, 1] or [N, C]")
    func scaleChannels() throws {
        let sd = try Golden.file("elementwise.pth")
        let x = try Golden.tensor(sd, "scale_channels.input")
        let gates = try Golden.tensor(sd, "scale_channels.gates")
        let expected = try Golden.tensor(sd, "scale_channels.output")
        Golden.expectExact(try Ops.scaleChannels(x, by: gates), expected, "scaleChannels")
        let flatGates = try gates.reshaped([gates.shape[0], gates.shape[1]])
        Golden.expectExact(try Ops.scaleChannels(x, by: flatGates), expected, "scaleChannels [N, C] gates")
    }
}

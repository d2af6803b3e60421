import Checkpoint
import NeuralNet
import Testing

/// Pooling against torch (`pool_goldens` in `tools/make_neuralnet_goldens.py`):
/// `F.max_pool2d(x, k, s, p, ceil_mode=ceil)` bit-exact; `F.avg_pool2d(..., count_include_pad=True)` and
/// `F.adaptive_avg_pool2d(x, size)` within 1e-5 relative.
@Suite("Pooling goldens")
struct PoolGoldenTests {
    @Test(
        "maxPool2d equals F.max_pool2d exactly",
        arguments: [
            "maxpool_3x3s2p1_112", "maxpool_3x3s2p1_odd", "maxpool_3x3s2_ceil_112", "maxpool_3x3s2_ceil_13",
            "maxpool_2x2s2p1_ceil_drop", "maxpool_2x2s2",
        ])
    func maxPool(name: String) throws {
        let sd = try Golden.file("pool.pth")
        let c = try Golden.ints(sd, "\(name).config")
        let y = try Ops.maxPool2d(
            try Golden.tensor(sd, "\(name).input"), kernel: c[0], stride: c[1], padding: c[2], ceilMode: c[3] != 0)
        Golden.expectExact(y, try Golden.tensor(sd, "\(name).output"), name)
    }

    @Test(
        "avgPool2d matches F.avg_pool2d (count_include_pad)",
        arguments: ["avgpool_2x2s2", "avgpool_2x2s2_ceil", "avgpool_3x3s2p1_ceil", "avgpool_2x2s2p1_ceil_drop"])
    func avgPool(name: String) throws {
        let sd = try Golden.file("pool.pth")
        let c = try Golden.ints(sd, "\(name).config")
        let y = try Ops.avgPool2d(
            try Golden.tensor(sd, "\(name).input"), kernel: c[0], stride: c[1], padding: c[2], ceilMode: c[3] != 0)
        Golden.expectClose(y, try Golden.tensor(sd, "\(name).output"), name)
    }

    @Test(
        "adaptiveAvgPool2d matches F.adaptive_avg_pool2d",
        arguments: [
            "adaptive_7x7_to_1x1", "adaptive_7x7_to_3x3", "adaptive_10x13_to_3x3", "adaptive_10x13_to_4x5",
            "adaptive_3x2_to_5x4",
        ])
    func adaptiveAvgPool(name: String) throws {
        let sd = try Golden.file("pool.pth")
        let c = try Golden.ints(sd, "\(name).config")
        let y = try Ops.adaptiveAvgPool2d(try Golden.tensor(sd, "\(name).input"), outputH: c[0], outputW: c[1])
        Golden.expectClose(y, try Golden.tensor(sd, "\(name).output"), name)
    }
}

import NeuralNet
import Testing

/// Forward passes are pure functions of immutable layers: the same convolution run from 8 concurrent tasks
/// must give results bit-identical to a serial run (this exercises concurrent `cblas_sgemm` calls into
/// OpenBLAS's threaded build).
@Suite("Concurrency")
struct ConcurrencyTests {
    /// A deterministic pseudo-random vector in [-1, 1).
    static func values(_ count: Int, seed: UInt64) -> [Float] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(Int32(truncatingIfNeeded: state >> 32)) / Float(Int32.max)
        }
    }

    static func layer(_ config: Conv2dConfig, seed: UInt64) throws -> Conv2d {
        let n = config.weightShape.reduce(1, *)
        return try Conv2d(
            config: config, weight: values(n, seed: seed).map { $0 * 0.05 },
            bias: values(config.outChannels, seed: seed + 1))
    }

    @Test(
        "8 concurrent tasks running the same conv give bit-identical results to a serial run",
        arguments: [
            Conv2dConfig(inChannels: 64, outChannels: 64, kernel: 3, padding: 1),
            Conv2dConfig(inChannels: 128, outChannels: 128, kernel: 3, stride: 2, padding: 1, groups: 32),
            Conv2dConfig(inChannels: 256, outChannels: 128, kernel: 1),
        ])
    func concurrentConv(config: Conv2dConfig) async throws {
        let conv = try Self.layer(config, seed: 7)
        let x = try Tensor(shape: [2, config.inChannels, 28, 28], data: Self.values(2 * config.inChannels * 784, seed: 3))
        let serial = try conv(x, activation: .relu)
        let results = try await withThrowingTaskGroup(of: [Tensor].self) { group in
            for _ in 0..<8 {
                group.addTask {
                    var outs: [Tensor] = []
                    for _ in 0..<4 { outs.append(try conv(x, activation: .relu)) }
                    return outs
                }
            }
            var all: [Tensor] = []
            for try await outs in group { all += outs }
            return all
        }
        #expect(results.count == 32)
        for r in results {
            #expect(r.shape == serial.shape)
            #expect(r.data.elementsEqual(serial.data) { $0.bitPattern == $1.bitPattern })
        }
    }

    /// A layer packs its weights on first use (`ConvKernelCache`): 8 tasks making that first call at
    /// once must all get the result of a separately made twin run serially.
    @Test(
        "8 concurrent first calls of a fresh conv (weights packed once, on first use) give the serial result",
        arguments: [
            Conv2dConfig(inChannels: 64, outChannels: 64, kernel: 3, padding: 1),
            Conv2dConfig(inChannels: 128, outChannels: 128, kernel: 3, stride: 2, padding: 1, groups: 32),
        ])
    func concurrentFirstUse(config: Conv2dConfig) async throws {
        let x = try Tensor(shape: [1, config.inChannels, 20, 20], data: Self.values(config.inChannels * 400, seed: 5))
        let serial = try Self.layer(config, seed: 11)(x, activation: .none)
        let conv = try Self.layer(config, seed: 11)
        let results = try await withThrowingTaskGroup(of: Tensor.self) { group in
            for _ in 0..<8 { group.addTask { try conv(x, activation: .none) } }
            var all: [Tensor] = []
            for try await r in group { all.append(r) }
            return all
        }
        #expect(results.count == 8)
        for r in results {
            #expect(r.shape == serial.shape)
            #expect(r.data.elementsEqual(serial.data) { $0.bitPattern == $1.bitPattern })
        }
    }
}

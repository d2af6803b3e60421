import Checkpoint
import Foundation
import NeuralNet
import Testing

@testable import VisionModels

/// One loaded `Model` used from 8 concurrent tasks gives outputs bit-identical to a single-threaded run.
///
/// Three small networks cover the three kinds of graph state a concurrent call could share by mistake:
/// the ResNet and DenseNet graphs' `WorkspacePool`s (inputs of different sizes and batch sizes make
/// workspaces grow while other calls hold theirs), the C kernels' worker pool and per-thread scratch
/// (`ck_parallel_for`, `ck_scratch`: Winograd 3x3 convolutions, the strided GEMM path, the grouped
/// direct kernel on AVX-512, SE gating, pooling), and the engine's thread-local overrides. Weights are
/// the formula weights (`FormulaWeights`); the expected values are the same model's own single-threaded
/// outputs, compared by Float bit pattern.
///
/// `tools/sanitize thread` runs this suite under the thread sanitizer.
@Suite("Concurrency")
struct ConcurrencyTests {
    /// A bottleneck SE-ResNet: Winograd 3x3 (layer1), strided 3x3 (layer2), SE gating, 1x1 GEMMs.
    static let seResNet: Architecture = {
        var c = ResNetConfig(block: .bottleneck, layers: [1, 1], stemWidth: 16, stageWidths: [16, 32], numClasses: 10)
        c.squeezeExcitation = ResNetConfig.SqueezeExcitation(reduction: 4)
        return Architecture(name: "concurrency_seresnet", family: .resnet(c))
    }()
    /// A ResNeXt: grouped 3x3 convolutions (4 outputs per group).
    static let resNeXt = Architecture(
        name: "concurrency_resnext",
        family: .resnet(ResNetConfig(block: .bottleneck, layers: [1, 1], groups: 4, widthPerGroup: 16, stemWidth: 16, stageWidths: [16, 32], numClasses: 7)))
    /// A DenseNet: concatenating blocks, pre-activation convolutions, transitions.
    static let denseNet = Architecture(
        name: "concurrency_densenet",
        family: .densenet(DenseNetConfig(growthRate: 8, blockConfig: [2, 2], numInitFeatures: 16, bnSize: 4, numClasses: 10)))

    static let architectures = [seResNet, resNeXt, denseNet]

    /// Inputs of different batch sizes (1, 2, 3) and spatial sizes, so workspaces grow between calls.
    static let inputShapes = [[1, 3, 40, 40], [3, 3, 40, 40], [2, 3, 33, 47], [1, 3, 56, 24], [3, 3, 29, 31]]

    /// Concurrent tasks, and calls each task makes.
    static let tasks = 8
    static let iterations = 5

    /// The architecture's formula-weight state dict (every manifest entry, `FormulaWeights.values`).
    static func stateDict(_ arch: Architecture) throws -> StateDict {
        var entries: [(name: String, tensor: TensorData)] = []
        for (p, spec) in arch.parameters.enumerated() {
            let values = FormulaWeights.values(key: spec.name, shape: spec.shape, index: p)
            entries.append((spec.name, try TensorData(float32: values, shape: spec.shape)))
        }
        return try StateDict(tensors: entries, name: "\(arch.name).formula")
    }

    static func inputs() throws -> [Tensor] {
        try inputShapes.enumerated().map { i, shape in
            try Tensor(shape: shape, data: FormulaWeights.input(shape: shape, seed: UInt32(100 + i)))
        }
    }

    /// What a call returned, by name, shape and Float bit pattern.
    struct Output: Equatable, Sendable {
        var names: [String]
        var shapes: [[Int]]
        var bits: [[UInt32]]

        init(_ taps: [(name: String, tensor: Tensor)]) {
            names = taps.map(\.name)
            shapes = taps.map(\.tensor.shape)
            bits = taps.map { $0.tensor.data.map(\.bitPattern) }
        }

        init(logits: Tensor) { self.init([("logits", logits)]) }

        /// Whether every value is finite and the values are not all equal (a guard against a reference
        /// that would match anything, such as all zeros).
        var isInformative: Bool {
            let values = bits.joined().map(Float.init(bitPattern:))
            return values.allSatisfy(\.isFinite) && Set(values).count > 1
        }
    }

    /// A call: input `input`, logits only or every tap.
    struct Call: Hashable, Sendable {
        var input: Int
        var taps: Bool
    }

    static func run(_ model: Model, _ x: Tensor, taps: Bool) throws -> Output {
        taps ? Output(try model.features(x)) : Output(logits: try model(x))
    }

    /// The single-threaded outputs of every call.
    static func references(_ model: Model, _ xs: [Tensor]) throws -> [Call: Output] {
        var out: [Call: Output] = [:]
        for (i, x) in xs.enumerated() {
            for taps in [false, true] { out[Call(input: i, taps: taps)] = try run(model, x, taps: taps) }
        }
        return out
    }

    /// Runs `tasks` tasks of `iterations` calls each (task t, iteration k: input (t + k) mod count, taps
    /// on odd t + k, so that every moment mixes inputs and both entry points), with `body` wrapping each
    /// call; returns the description of every call whose output differs from `expected`, and the number
    /// of calls made.
    static func hammer(
        _ model: Model, _ xs: [Tensor], expected: @escaping @Sendable (Int, Call) -> Output?,
        around body: @escaping @Sendable (Int, () throws -> Output) throws -> Output = { _, call in try call() }
    ) async throws -> (mismatches: [String], calls: Int) {
        try await withThrowingTaskGroup(of: ([String], Int).self) { group in
            for t in 0..<tasks {
                group.addTask {
                    var bad: [String] = []
                    for k in 0..<iterations {
                        let call = Call(input: (t + k) % xs.count, taps: (t + k) % 2 == 1)
                        let out = try body(t) { try run(model, xs[call.input], taps: call.taps) }
                        if out != expected(t, call) { bad.append("task \(t) call \(k): input \(xs[call.input].shape), taps \(call.taps)") }
                    }
                    return (bad, iterations)
                }
            }
            var bad: [String] = []
            var calls = 0
            for try await (b, n) in group {
                bad += b
                calls += n
            }
            return (bad.sorted(), calls)
        }
    }

    @Test("8 concurrent tasks calling one model give bit-identical logits and taps", arguments: architectures)
    func sharedModel(_ arch: Architecture) async throws {
        let model = try Model.load(arch, pretrained: .stateDict(Self.stateDict(arch)))
        let xs = try Self.inputs()
        let refs = try Self.references(model, xs)
        for (call, out) in refs {
            #expect(out.names == (call.taps ? arch.tapNames : ["logits"]))
            #expect(out.shapes.last == [xs[call.input].shape[0], arch.defaultNumClasses])
            #expect(out.isInformative, "reference \(call) is degenerate")
        }
        let (bad, calls) = try await Self.hammer(model, xs) { _, call in refs[call] }
        #expect(calls == Self.tasks * Self.iterations)
        #expect(bad == [])
    }

    @Test("concurrent tasks with different thread-count overrides give the single-threaded bits", arguments: architectures)
    func threadOverrides(_ arch: Architecture) async throws {
        let model = try Model.load(arch, pretrained: .stateDict(Self.stateDict(arch)))
        let xs = try Self.inputs()
        let refs = try Engine.withOverrides(threads: 1) { try Self.references(model, xs) }
        // Task t runs its calls on 1 + t % 4 threads (the engine's pool, or the caller alone when the pool
        // is busy): results do not depend on the thread count.
        let (bad, calls) = try await Self.hammer(model, xs, expected: { _, call in refs[call] }) { t, call in
            try Engine.withOverrides(threads: 1 + t % 4) { try call() }
        }
        #expect(calls == Self.tasks * Self.iterations)
        #expect(bad == [])
    }

    /// Thread-local instruction-set overrides must reach the work a call hands to the worker threads:
    /// a worker that used the global level instead would compute with another kernel.
    @Test("concurrent tasks on different instruction sets each match their own single-threaded run")
    func instructionSetOverrides() async throws {
        let arch = Self.seResNet
        let model = try Model.load(arch, pretrained: .stateDict(Self.stateDict(arch)))
        let xs = try Self.inputs()
        let sets = Engine.InstructionSet.allCases.filter { $0 <= Engine.supportedInstructionSet }
        var refs: [Engine.InstructionSet: [Call: Output]] = [:]
        for set in sets { refs[set] = try Engine.withOverrides(instructionSet: set) { try Self.references(model, xs) } }
        let expected = refs
        let (bad, calls) = try await Self.hammer(
            model, xs, expected: { t, call in expected[sets[t % sets.count]]?[call] },
            around: { t, call in try Engine.withOverrides(instructionSet: sets[t % sets.count]) { try call() } })
        #expect(calls == Self.tasks * Self.iterations)
        #expect(bad == [])
    }

    @Test("8 tasks loading the same state dict at once get models with bit-identical outputs")
    func concurrentLoads() async throws {
        let arch = Self.seResNet
        let sd = try Self.stateDict(arch)
        let x = try Self.inputs()[1]
        let serial = Output(logits: try Model.load(arch, pretrained: .stateDict(sd))(x))
        #expect(serial.isInformative)
        let outputs = try await withThrowingTaskGroup(of: Output.self) { group in
            for _ in 0..<Self.tasks {
                group.addTask { Output(logits: try Model.load(arch, pretrained: .stateDict(sd))(x)) }
            }
            var all: [Output] = []
            for try await o in group { all.append(o) }
            return all
        }
        #expect(outputs.count == Self.tasks)
        #expect(outputs.allSatisfy { $0 == serial })
    }

    /// Each Keras HDF5 fixture loaded by its own task while the others load theirs (the HDF5 reader, the
    /// Keras name remapping and its cache at once): every model's taps equal a sequential load's.
    @Test("the 8 Keras HDF5 fixtures loaded from 8 tasks at once give the sequential models' taps")
    func concurrentKerasLoads() async throws {
        let files = KerasTests.files
        #expect(files.count == Self.tasks)
        let shape = [2, 3, 32, 40]
        let x = try Tensor(shape: shape, data: FormulaWeights.input(shape: shape, seed: 200))
        @Sendable func taps(_ i: Int) throws -> Output {
            let (arch, _) = KerasTests.architecture(files[i].1)
            let model = try Model.load(arch, pretrained: .file(URL(fileURLWithPath: KerasTests.path(files[i].0))))
            return Output(try model.features(x))
        }
        let serial = try files.indices.map(taps)
        #expect(serial.allSatisfy { $0.isInformative })
        let outputs = try await withThrowingTaskGroup(of: (Int, Output).self) { group in
            for i in files.indices { group.addTask { (i, try taps(i)) } }
            var all: [Int: Output] = [:]
            for try await (i, o) in group { all[i] = o }
            return all
        }
        #expect(outputs.count == files.count)
        for i in files.indices { #expect(outputs[i] == serial[i], "\(files[i].0)") }
    }
}

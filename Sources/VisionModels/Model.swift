import Checkpoint
import Foundation
import NeuralNet

/// Options for `Model.load`.
public struct LoadOptions: Sendable {
    /// Classifier outputs; nil infers them from the checkpoint's classifier weight.
    public var numClasses: Int?
    /// Refuse weights that leave keys missing or unexpected, or whose shapes differ (default). When
    /// false, unexpected keys are ignored; missing or mismatched ones still fail, as a model cannot run
    /// without them.
    public var strict: Bool = true
    /// How the checkpoint file is read.
    public var readOptions: ReadOptions = ReadOptions()
    /// Load weights whose key names show another flavor than the architecture's (for example Cadene
    /// SE-ResNet-50 weights into timm's `seresnet50`, which places its stride and stem pooling
    /// differently). Off by default: such a load runs without error and computes something else.
    public var allowFlavorMismatch: Bool = false
    /// What the prepared weights may cost in memory (default `.fast`).
    public var memory: Memory = .fast

    /// How a model keeps its weights: the speed of the 3x3 layers against the memory they take.
    public enum Memory: Sendable, Equatable {
        /// Stride-1 3x3 convolutions of up to 256 channels keep Winograd-transformed weights (4x the size
        /// of the weights up to 128 channels, F(4x4, 3x3); 16/9 above, F(2x2, 3x3)) beside a copy as
        /// given, which serves small planes and gives the weights back; above 128 channels it also runs
        /// calls with 32 tiles of 4x4 or more (batch 2 and up at 14x14) as F(4x4) on weights transformed
        /// during the call, faster there than the held F(2x2) weights. The fastest inference. (In both
        /// modes, on AVX-512 CPUs, the 3x3 layers of 257 to 512 channels, held once for the direct
        /// kernel, run calls with 32 to 64 tiles of 4x4, such as ResNet's last stage at batch 8 to 16, as
        /// F(4x4) on weights transformed during the call: ResNet-18 at batch 8 0.91x the time.)
        case fast
        /// Every weight is held once, packed for the direct or GEMM kernels: the model's memory is its
        /// weights plus the buffers of the inferences running. On AVX-512 CPUs the Winograd geometries
        /// still run as Winograd where that pays, on weights transformed during each call into scratch
        /// memory (one layer's at most, 9 MiB for 256 channels in F(4x4); or a weight panel per thread),
        /// which costs some of their speed: ResNet-50 and ResNet-152 at batch 1 1.02x and 1.03x the
        /// default's latency (interleaved, 2 threads), ResNet-18/50/152 0.96-1.05x over six full
        /// benchmark runs at batch 1 and 8 (once 1.06 in a noisy run). Elsewhere they run the GEMM path.
        case compact
    }

    /// Default options.
    public init() {}
}

/// A loaded, inference-ready classification model. Immutable and `Sendable`: one model may be
/// called from several tasks at once.
public struct Model: Sendable {
    /// The architecture, with the number of classes actually loaded.
    public let architecture: Architecture
    /// What loading found.
    public let report: LoadReport
    private let graph: Graph
    /// Where each loaded parameter can be read back from (no second copy of the large weights).
    private let weights: [String: KeptParameter]

    /// A loaded parameter as the model keeps it: small tensors as an owned copy; float32 convolution
    /// and classifier weights as the prepared layer, unpacked on request (exactly: packing only
    /// re-orders them, and batch norm is applied outside them).
    enum KeptParameter: Sendable {
        case tensor(TensorData)
        case conv(PreparedConv2d, shape: [Int])
        case linear(Linear, shape: [Int])
    }

    enum Graph: Sendable {
        case resnet(ResNetGraph)
        case densenet(DenseNetGraph)
    }

    /// Number of classifier outputs.
    public var numClasses: Int { architecture.defaultNumClasses }

    /// Loads `architecture` with weights from `pretrained`, remapping legacy names and validating every
    /// key and shape strictly; convolutions are prepared once, here, each with the batch norm that follows it
    /// (applied in the kernels' epilogue; folded into the weights only for Winograd layers).
    public static func load(_ architecture: Architecture, pretrained: PretrainedSource, options: LoadOptions = LoadOptions()) throws(ModelError) -> Model {
        let sd = try pretrained.stateDict(for: architecture, options: options)
        return try load(architecture, stateDict: sd, options: options)
    }

    static func load(_ base: Architecture, stateDict sd: StateDict, options: LoadOptions) throws(ModelError) -> Model {
        // Recognise the checkpoint's flavor; refuse a different one unless overridden.
        let detected = WeightFlavor.detect(sd)
        var entries = sd.entries
        var translated: [LoadReport.Rename] = []
        if let detected, detected != base.flavor {
            guard options.allowFlavorMismatch else {
                var report = LoadReport(architecture: base.name, source: sd.provenance.file, numClasses: base.defaultNumClasses, numClassesInferred: false)
                report.detectedFlavor = detected
                throw ModelError(
                    .flavorMismatch,
                    "the checkpoint's keys show \(detected) weights (\(detected.traits)) but \(base.name) is \(base.flavor) (\(base.flavor.traits)); "
                        + "load them into an architecture of their flavor, or set allowFlavorMismatch to load them anyway",
                    report: report)
            }
            let rule = SENamingRule(from: detected, to: base.flavor)
            entries = try entries.map { (e) throws(ModelError) in
                if let r = try rule.rewrite(e.name, e.tensor, for: base) {
                    translated.append(LoadReport.Rename(from: e.name, to: r.key))
                    return (r.key, r.tensor)
                }
                return e
            }
        }
        // Remap keys (and layouts) into the architecture's names.
        var remapped = try KeyRemapper.remap(entries, for: base)
        remapped.renamed = translated + remapped.renamed
        var tensors: [String: TensorData] = [:]
        var order: [String] = []
        for (key, t) in remapped.entries {
            guard tensors[key] == nil else {
                throw ModelError(.incompatibleWeights, "two checkpoint keys map to '\(key)'")
            }
            tensors[key] = t
            order.append(key)
        }
        let renamed = remapped.renamed
        // Number of classes: given, else the checkpoint's classifier rows, else the default.
        var inferred = false
        var numClasses = base.defaultNumClasses
        if let n = options.numClasses {
            numClasses = n
        } else if let w = tensors[base.classifierWeightKey], w.shape.count == 2, w.shape[0] > 0 {
            numClasses = w.shape[0]
            inferred = true
        }
        guard numClasses > 0 else { throw ModelError(.invalidConfiguration, "number of classes must be positive, got \(numClasses)") }
        let architecture = base.withNumClasses(numClasses)

        var report = LoadReport(
            architecture: architecture.name, source: sd.provenance.file, numClasses: numClasses, numClassesInferred: inferred)
        report.renamed = renamed
        report.detectedFlavor = detected
        report.nestingPath = sd.provenance.nestingPath
        report.strippedPrefixes = sd.provenance.strippedPrefixes
        let specs = architecture.parameters
        var expectedNames = Set<String>()
        for spec in specs {
            expectedNames.insert(spec.name)
            guard let t = tensors[spec.name] else {
                if spec.isOptional { report.defaulted.append(spec.name) } else { report.missing.append(spec.name) }
                continue
            }
            if t.shape == spec.shape {
                report.matched += 1
            } else {
                report.shapeMismatches.append(LoadReport.ShapeMismatch(key: spec.name, expected: spec.shape, found: t.shape))
            }
        }
        report.unexpected = order.filter { !expectedNames.contains($0) }
        // Did you mean: the closest unexpected key for each missing one (bounded work).
        if !report.missing.isEmpty, !report.unexpected.isEmpty, report.missing.count * report.unexpected.count <= 200_000 {
            for m in report.missing {
                var best: (String, Int)?
                let limit = max(2, m.utf8.count / 4)
                for u in report.unexpected {
                    if let d = KeyRemapper.distance(m, u, limit: best.map { $0.1 } ?? limit), best == nil || d < best!.1 { best = (u, d) }
                }
                if let best { report.suggestions[m] = best.0 }
            }
        }
        let fatal = !report.missing.isEmpty || !report.shapeMismatches.isEmpty || (options.strict && !report.unexpected.isEmpty)
        if fatal {
            throw ModelError(.incompatibleWeights, "the weights do not fit \(architecture.name)", report: report)
        }

        try verifyChecksums(specs.compactMap { tensors[$0.name] })
        let store = ParameterStore(tensors: tensors, winograd: options.memory == .fast)
        let graph: Graph
        switch architecture.family {
        case .resnet(let c): graph = .resnet(try ResNetGraph(config: c, store: store))
        case .densenet(let c): graph = .densenet(try DenseNetGraph(config: c, store: store))
        }
        // Keep what `parameter(named:)` needs without pinning the checkpoint's memory (a mapped file or
        // the caller's arrays): large float32 weights are read back from the prepared layers, the rest
        // is copied.
        var kept: [String: KeptParameter] = [:]
        for spec in specs {
            guard let t = tensors[spec.name] else { continue }
            if t.dtype == .float32, let conv = store.preparedConvs[spec.name] {
                kept[spec.name] = .conv(conv, shape: t.shape)
            } else if t.dtype == .float32, let linear = store.linears[spec.name] {
                kept[spec.name] = .linear(linear, shape: t.shape)
            } else {
                do throws(CheckpointError) {
                    kept[spec.name] = .tensor(try t.ownedCopy())
                } catch {
                    throw ModelError(error)
                }
            }
        }
        Engine.releaseFreedMemory()
        return Model(architecture: architecture, report: report, graph: graph, weights: kept)
    }

    /// Logits `[N, numClasses]` for an NCHW input `[N, 3, H, W]`.
    public func callAsFunction(_ input: Tensor) throws(ModelError) -> Tensor {
        try run(input, taps: false).last!.tensor
    }

    /// The named intermediate outputs (`architecture.tapNames`: stem, each stage or dense block and
    /// transition, prelogits, logits), like torchvision's feature extractor.
    public func features(_ input: Tensor) throws(ModelError) -> [(name: String, tensor: Tensor)] {
        try run(input, taps: true)
    }

    private func run(_ input: Tensor, taps: Bool) throws(ModelError) -> [(name: String, tensor: Tensor)] {
        guard input.shape.count == 4, input.shape[1] == 3, input.shape[0] > 0 else {
            throw ModelError(.shape, "\(architecture.name) expects input [N, 3, H, W], got \(input.shape)")
        }
        switch graph {
        case .resnet(let g): return try g.run(input, taps: taps)
        case .densenet(let g): return try g.run(input, taps: taps)
        }
    }

    /// The loaded parameter called `name` (as the checkpoint stored it, before batch-norm folding; the
    /// large float32 weights are rebuilt from the prepared layers, as contiguous little-endian float32).
    public func parameter(named name: String) -> TensorData? {
        switch weights[name] {
        case .none: return nil
        case .tensor(let t): return t
        case .conv(let conv, let shape): return try? TensorData(float32: conv.weightsAsGiven(), shape: shape)
        case .linear(let linear, let shape): return try? TensorData(float32: linear.weight, shape: shape)
        }
    }

    /// Bytes the model keeps between calls for activations: its graph's memory-plan buffers, grown to
    /// the largest input seen so far (one set per call that ran at the same time as another), counted
    /// while no call is running. The kernels' per-thread scratch comes on top.
    public var workspaceBytes: Int {
        switch graph {
        case .resnet(let g): g.workspaces.idleCapacity * MemoryLayout<Float>.stride
        case .densenet(let g): g.workspaces.idleCapacity * MemoryLayout<Float>.stride
        }
    }

    /// Bytes the model holds for its parameters: packed and transformed convolution weights with their
    /// biases and epilogue scales, the classifier, and the other tensors it keeps (batch-norm parameters
    /// applied outside a convolution). Inference buffers come on top (see `LoadOptions.Memory`).
    public var parameterBytes: Int {
        weights.values.reduce(0) { total, kept in
            switch kept {
            case .tensor(let t): total + t.storage.bytes.count
            case .conv(let conv, _): total + conv.byteCount
            case .linear(let l, _): total + (l.weight.count + (l.bias?.count ?? 0)) * MemoryLayout<Float>.stride
            }
        }
    }

    /// Names of the loaded parameters, in the architecture's order.
    public var parameterNames: [String] { architecture.parameters.map(\.name).filter { weights[$0] != nil } }
}

/// The loaded tensors by name, handing out float32 values and batch-norm layers to graph builders, and
/// remembering which prepared layer holds each convolution and classifier weight.
final class ParameterStore {
    let tensors: [String: TensorData]
    /// Convolution weight name -> the prepared convolution made from it.
    private(set) var preparedConvs: [String: PreparedConv2d] = [:]
    /// Classifier weight name -> the linear layer made from it.
    private(set) var linears: [String: Linear] = [:]

    /// Whether convolutions may be prepared for Winograd (`LoadOptions.Memory.fast`).
    let winograd: Bool

    init(tensors: [String: TensorData], winograd: Bool) {
        self.tensors = tensors
        self.winograd = winograd
    }

    func floats(_ name: String) throws(ModelError) -> [Float] {
        guard let t = tensors[name] else { throw ModelError(.incompatibleWeights, "missing parameter '\(name)'") }
        do throws(CheckpointError) {
            return try t.floats()
        } catch {
            throw ModelError(error)
        }
    }

    func batchNorm(_ prefix: String, eps: Float) throws(ModelError) -> BatchNorm2d {
        let weight = try floats(prefix + ".weight"), bias = try floats(prefix + ".bias")
        let mean = try floats(prefix + ".running_mean"), variance = try floats(prefix + ".running_var")
        do throws(NeuralNetError) {
            return try BatchNorm2d(weight: weight, bias: bias, runningMean: mean, runningVar: variance, eps: eps)
        } catch {
            throw ModelError(error, prefix)
        }
    }

    /// The convolution `name` (with its bias if the checkpoint has one) followed by batch norm `bn`,
    /// prepared for inference (see `PreparedConv2d.init(_:batchNorm:)`).
    func conv(_ name: String, _ config: Conv2dConfig, foldingBatchNorm bn: String?, eps: Float) throws(ModelError) -> PreparedConv2d {
        let bias: [Float]? = tensors[name + ".bias"] != nil ? try floats(name + ".bias") : nil
        let norm = try bn.map { (b) throws(ModelError) in try batchNorm(b, eps: eps) }
        let window = try floatWindow(name + ".weight")
        let copied = window == nil ? try floats(name + ".weight") : []
        do throws(NeuralNetError) {
            let prepared: PreparedConv2d
            if let window {
                // Packed straight from the checkpoint's bytes (no float copy of the weights).
                prepared = try PreparedConv2d(config: config, weight: window.buffer, bias: bias, batchNorm: norm, winograd: winograd)
                withExtendedLifetime(window.owner) {}
            } else {
                prepared = try copied.withUnsafeBufferPointer { (w) throws(NeuralNetError) in
                    try PreparedConv2d(config: config, weight: w, bias: bias, batchNorm: norm, winograd: winograd)
                }
            }
            preparedConvs[name + ".weight"] = prepared
            return prepared
        } catch {
            throw ModelError(error, name)
        }
    }

    /// Output channels `outputs` of the convolution `name` (of `config`), with the same channels of its
    /// bias and of batch norm `bn`, prepared as a convolution of their own: running every part of a
    /// partition of the outputs gives the whole layer's outputs, part by part. Not remembered as the
    /// weight's prepared layer, so `Model.parameter(named:)` keeps a copy of the whole weight: meant for
    /// small layers.
    func conv(_ name: String, _ config: Conv2dConfig, outputs: Range<Int>, foldingBatchNorm bn: String?, eps: Float) throws(ModelError) -> PreparedConv2d {
        guard outputs.lowerBound >= 0, outputs.upperBound <= config.outChannels, !outputs.isEmpty else {
            throw ModelError(.incompatibleWeights, "\(name): output channels \(outputs) outside 0..<\(config.outChannels)")
        }
        let weight = try floats(name + ".weight")
        let per = config.inChannelsPerGroup * config.kernelH * config.kernelW
        guard config.groups == 1, weight.count == config.outChannels * per else {
            throw ModelError(.incompatibleWeights, "\(name): expected \(config.outChannels * per) weight values of an ungrouped convolution, found \(weight.count)")
        }
        let bias = tensors[name + ".bias"] != nil ? try floats(name + ".bias") : nil
        let norm = try bn.map { (b) throws(ModelError) in try batchNorm(b, eps: eps) }
        guard (bias?.count ?? config.outChannels) == config.outChannels, (norm?.channels ?? config.outChannels) == config.outChannels else {
            throw ModelError(.incompatibleWeights, "\(name): its bias and batch norm must have \(config.outChannels) channels")
        }
        var part = config
        part.outChannels = outputs.count
        do throws(NeuralNetError) {
            let partNorm = try norm.map { (n) throws(NeuralNetError) in
                try BatchNorm2d(weight: Array(n.weight[outputs]), bias: Array(n.bias[outputs]), runningMean: Array(n.runningMean[outputs]),
                                runningVar: Array(n.runningVar[outputs]), eps: n.eps)
            }
            return try weight[outputs.lowerBound * per..<outputs.upperBound * per].withUnsafeBufferPointer { (w) throws(NeuralNetError) in
                try PreparedConv2d(config: part, weight: w, bias: bias.map { Array($0[outputs]) }, batchNorm: partNorm, winograd: winograd)
            }
        } catch {
            throw ModelError(error, name)
        }
    }

    /// The float32 values of `name` as a window into its storage, when it is stored as contiguous,
    /// aligned little-endian float32 (the usual case); nil otherwise. `owner` keeps the bytes alive.
    func floatWindow(_ name: String) throws(ModelError) -> (buffer: UnsafeBufferPointer<Float>, owner: ByteBuffer)? {
        guard let t = tensors[name] else { throw ModelError(.incompatibleWeights, "missing parameter '\(name)'") }
        guard t.dtype == .float32, t.isContiguous, t.storage.byteOrder == .little || t.elementCount == 0 else { return nil }
        let slice: ByteSlice
        do throws(CheckpointError) {
            slice = try t.contiguousBytes()
        } catch {
            throw ModelError(error)
        }
        guard Int(bitPattern: slice.base) % MemoryLayout<Float>.alignment == 0 else { return nil }
        let p = slice.base.assumingMemoryBound(to: Float.self)
        return (UnsafeBufferPointer(start: p, count: t.elementCount), slice.buffer)
    }

    func linear(_ name: String, inFeatures: Int, outFeatures: Int) throws(ModelError) -> Linear {
        let weight = try floats(name + ".weight")
        let bias = try floats(name + ".bias")
        do throws(NeuralNetError) {
            let linear = try Linear(weight: weight, bias: bias, inFeatures: inFeatures, outFeatures: outFeatures)
            linears[name + ".weight"] = linear
            return linear
        } catch {
            throw ModelError(error, name)
        }
    }
}

/// Runs the deferred CRC-32 checks of every tensor's storage (zip records) up front, on the engine's
/// threads at once, largest first; each storage is checked once. Throws the error of the first failing
/// tensor in `tensors`' order.
func verifyChecksums(_ tensors: [TensorData]) throws(ModelError) {
    final class Progress: @unchecked Sendable {
        let lock = NSLock()
        var next = 0
        var failures: [(index: Int, error: CheckpointError)] = []
    }
    let order = tensors.indices.sorted { tensors[$0].byteCount > tensors[$1].byteCount }
    let progress = Progress()
    let workers = max(1, min(Engine.threads, order.count))
    DispatchQueue.concurrentPerform(iterations: workers) { _ in
        while true {
            progress.lock.lock()
            let k = progress.next
            progress.next += 1
            progress.lock.unlock()
            guard k < order.count else { return }
            do throws(CheckpointError) {
                try tensors[order[k]].storage.verifyChecksum()
            } catch {
                progress.lock.lock()
                progress.failures.append((order[k], error))
                progress.lock.unlock()
            }
        }
    }
    if let first = progress.failures.min(by: { $0.index < $1.index }) { throw ModelError(first.error) }
}

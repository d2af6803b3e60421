import Foundation
import NeuralNet

/// The ResNet family's inference graph, built from `ResNetLayout`: the stem, residual blocks (basic,
/// bottleneck, SENet bottleneck; grouped, wide; with or without squeeze-and-excitation; projection or
/// zero-padded shortcuts), global pooling and the classifier, with every batch norm applied by its
/// convolution (in the kernels' epilogue, or folded into Winograd weights).
///
/// Convolutions are prepared once (weights packed for the engine's kernels). An inference runs on a
/// memory plan of reused buffers (`Workspace`, `ActivationPlan`): each activation gets a slot no value
/// live at the same time uses. A block runs its branch before its projection shortcut, so that the
/// projection can take a branch value's slot, and its last convolution adds the shortcut in place and
/// applies ReLU as it stores its output (after SE gating when the block has it).
struct ResNetGraph: Sendable {
    /// The two 1x1 convolutions of squeeze-and-excitation, on 1x1 inputs: fully connected layers (run
    /// as such: a GEMM lowering would pad each image's single column to a whole panel).
    struct SqueezeExcite: Sendable {
        let fc1: Linear
        let fc2: Linear
    }

    struct Block: Sendable {
        let stage: Int
        /// The residual branch's convolutions, each applying its batch norm.
        let convs: [PreparedConv2d]
        let se: SqueezeExcite?
        let downsample: PreparedConv2d?
        let zeroPad: (stride: Int, padChannels: Int)?
        /// ReLU before SE (timm's legacy SEResNetBlock).
        let reluBeforeSE: Bool
    }

    let stem: [PreparedConv2d]
    let stemPool: ResNetLayout.Pool?
    let blocks: [Block]
    let head: Linear
    let workspaces = WorkspacePool(slots: Slot.count)

    /// The memory plan's fixed slots (squeeze-and-excitation's vectors); the activations' slots follow
    /// them, as `ActivationPlan` assigns them.
    enum Slot {
        static let squeezed = 0, hidden = 1, gates = 2
        static let count = 3
    }

    init(config c: ResNetConfig, store: ParameterStore) throws(ModelError) {
        let eps = c.batchNormEps
        let layout = c.layout
        func conv(_ u: ResNetLayout.ConvUnit) throws(ModelError) -> PreparedConv2d {
            try store.conv(u.name, u.config, foldingBatchNorm: u.norm, eps: eps)
        }
        var stem: [PreparedConv2d] = []
        for u in layout.stem { stem.append(try conv(u)) }
        self.stem = stem
        stemPool = layout.stemPool
        var blocks: [Block] = []
        for b in layout.blocks {
            var convs: [PreparedConv2d] = []
            for u in b.convs { convs.append(try conv(u)) }
            var se: SqueezeExcite?
            if let s = b.se {
                // The weights are [out, in, 1, 1]: as [out, in] they are the linear layers' weights.
                se = SqueezeExcite(
                    fc1: try store.linear(s.prefix + ".fc1", inFeatures: s.channels, outFeatures: s.reduced),
                    fc2: try store.linear(s.prefix + ".fc2", inFeatures: s.reduced, outFeatures: s.channels))
            }
            let down = try b.downsample.map { (u) throws(ModelError) in try conv(u) }
            blocks.append(Block(stage: b.stage, convs: convs, se: se, downsample: down, zeroPad: b.zeroPad, reluBeforeSE: b.reluBeforeSE))
        }
        self.blocks = blocks
        head = try store.linear(layout.headName, inFeatures: layout.headIn, outFeatures: layout.headOut)
    }

    /// An activation: `n` images of `[c, h, w]`, contiguous; `id` is its number in the call's
    /// `ActivationPlan` (-1: the caller's input).
    struct Value {
        var pointer: UnsafeMutablePointer<Float>
        var c: Int, h: Int, w: Int
        var id: Int
        var imageStride: Int { c * h * w }
    }

    /// Runs the graph on `input`. The first call on an input shape runs it once without computing
    /// anything to record its activations' sizes and lifetimes, and keeps the slot assignment made from
    /// them in the workspace (`ActivationPlan`).
    func run(_ input: Tensor, taps: Bool) throws(ModelError) -> [(name: String, tensor: Tensor)] {
        let ws = workspaces.take()
        defer { workspaces.give(ws) }
        let assignment: [Int]
        if let known = ws.plans[input.shape] {
            assignment = known
        } else {
            let dry = ActivationPlan(ws, firstSlot: Slot.count, assignment: nil)
            _ = try forward(input, taps: false, ws, dry)
            assignment = dry.assign()
            if ws.plans.count >= 64 { ws.plans.removeAll() }  // a caller of ever new input sizes
            ws.plans[input.shape] = assignment
        }
        return try forward(input, taps: taps, ws, ActivationPlan(ws, firstSlot: Slot.count, assignment: assignment))
    }

    /// The forward pass on `plan`'s slots; with a recording plan (`plan.dry`) it only walks the graph.
    private func forward(_ input: Tensor, taps: Bool, _ ws: Workspace, _ plan: ActivationPlan) throws(ModelError) -> [(name: String, tensor: Tensor)] {
        let n = input.shape[0]
        let dry = plan.dry
        var out: [(name: String, tensor: Tensor)] = []
        func tap(_ name: String, _ v: Value) {
            guard !dry else { return }
            out.append((name, Tensor.copying(v.pointer, imageStride: v.imageStride, images: n, channels: v.c, height: v.h, width: v.w)))
        }
        /// Runs `conv` on `x` into `y`, with an optional residual (which may be `y` itself) and the
        /// activation fused.
        func run(_ conv: PreparedConv2d, _ x: Value, into y: Value, residual: Value? = nil, _ act: Activation) {
            guard !dry else { return }
            conv.run(
                batch: n, height: x.h, width: x.w, input: x.pointer, inputImageStride: x.imageStride,
                output: y.pointer, outputImageStride: y.imageStride,
                residual: residual.map { UnsafePointer($0.pointer) }, residualImageStride: residual?.imageStride ?? 0,
                activation: act)
        }
        /// The output of `conv` on `x`, in a slot taken for it.
        func output(_ conv: PreparedConv2d, _ x: Value) throws(ModelError) -> Value {
            let (oh, ow) = conv.outputSize(height: x.h, width: x.w)
            guard oh > 0, ow > 0, x.c == conv.config.inChannels else {
                throw ModelError(.shape, "resnet forward: input [\(n), \(x.c), \(x.h), \(x.w)] does not fit convolution \(conv.config)")
            }
            let co = conv.config.outChannels
            let (id, pointer) = plan.take(n * co * oh * ow)
            return Value(pointer: pointer, c: co, h: oh, w: ow, id: id)
        }
        /// Runs `conv` on `x` into a new slot, with an optional residual and the activation fused.
        func apply(_ conv: PreparedConv2d, _ x: Value, residual: Value? = nil, _ act: Activation) throws(ModelError) -> Value {
            let y = try output(conv, x)
            run(conv, x, into: y, residual: residual, act)
            return y
        }

        // Stem: the first convolution reads the caller's input where it is.
        let c0 = input.shape[1], h0 = input.shape[2], w0 = input.shape[3]
        var x: Value
        if let first = stem.first {
            x = try input.data.withUnsafeBufferPointer { (buffer) throws(ModelError) -> Value in
                // Only read: the convolution takes its input as a const pointer.
                let source = Value(pointer: UnsafeMutablePointer(mutating: buffer.baseAddress!), c: c0, h: h0, w: w0, id: -1)
                return try apply(first, source, .relu)
            }
        } else {
            let (id, staged) = plan.take(input.data.count)
            if !dry { input.data.withUnsafeBufferPointer { staged.update(from: $0.baseAddress!, count: $0.count) } }
            x = Value(pointer: staged, c: c0, h: h0, w: w0, id: id)
        }
        for conv in stem.dropFirst() {
            let y = try apply(conv, x, .relu)
            plan.release(x.id)
            x = y
        }
        if let p = stemPool {
            let oh: Int, ow: Int
            do {
                oh = try Self.poolLength(x.h, p)
                ow = try Self.poolLength(x.w, p)
            } catch {
                throw ModelError(error, "resnet forward")
            }
            let (id, pointer) = plan.take(n * x.c * oh * ow)
            let y = Value(pointer: pointer, c: x.c, h: oh, w: ow, id: id)
            if !dry {
                RawOps.maxPool(
                    x.pointer, inputImageStride: x.imageStride, output: y.pointer, outputImageStride: y.imageStride,
                    images: n, channels: x.c, height: x.h, width: x.w, outHeight: oh, outWidth: ow,
                    kernel: p.kernel, stride: p.stride, padding: p.padding)
            }
            plan.release(x.id)
            x = y
        }
        if taps { tap("stem", x) }
        // Blocks. The branch runs first and its values give their slots back as soon as they are read;
        // the shortcut comes after it, so that a projection takes a slot the branch no longer uses. The
        // last convolution adds the shortcut in place: over the projection (or the zero-padded copy), or
        // over the block's input for an identity block. SE blocks gate the last convolution's output
        // first; with a projection, the gated output is then the projection's residual, added in place
        // (`v * g` is rounded before the addition either way, and addition commutes: the same floats).
        // At most four values are live: the block's input, two branch values, then the input, the last
        // branch value and the shortcut or the last convolution's output.
        for (i, block) in blocks.enumerated() {
            var h = x
            for conv in block.convs.dropLast() {
                let y = try apply(conv, h, .relu)
                if h.id != x.id { plan.release(h.id) }
                h = y
            }
            guard let last = block.convs.last else { throw ModelError(.shape, "resnet forward: a block without convolutions") }
            if let se = block.se {
                let y = try apply(last, h, block.reluBeforeSE ? .relu : .none)
                if h.id != x.id { plan.release(h.id) }
                let gates = try excite(se, y, images: n, ws, dry: dry)
                if let d = block.downsample {
                    guard d.outputSize(height: x.h, width: x.w) == (y.h, y.w), d.config.outChannels == y.c, d.config.inChannels == x.c else {
                        throw ModelError(.shape, "resnet forward: shortcut of \(d.config.outChannels) channels does not match the branch [\(y.c), \(y.h), \(y.w)]")
                    }
                    if !dry { RawOps.scaleChannels(y.pointer, gates: gates, residual: nil, images: n, channels: y.c, plane: y.h * y.w, activation: .none) }
                    run(d, x, into: y, residual: y, .relu)
                } else {
                    let identity = block.zeroPad.map { z in Self.zeroPadShortcut(x, images: n, stride: z.stride, padChannels: z.padChannels, plan: plan) } ?? x
                    guard identity.c == y.c, identity.h == y.h, identity.w == y.w else {
                        throw ModelError(.shape, "resnet forward: shortcut [\(identity.c), \(identity.h), \(identity.w)] does not match the branch")
                    }
                    if !dry {
                        RawOps.scaleChannels(y.pointer, gates: gates, residual: identity.pointer, images: n, channels: y.c, plane: y.h * y.w, activation: .relu)
                    }
                    if identity.id != x.id { plan.release(identity.id) }
                }
                plan.release(x.id)
                x = y
            } else {
                let identity: Value
                if let d = block.downsample {
                    identity = try apply(d, x, .none)
                } else if let z = block.zeroPad {
                    identity = Self.zeroPadShortcut(x, images: n, stride: z.stride, padChannels: z.padChannels, plan: plan)
                } else {
                    identity = x
                }
                guard last.outputSize(height: h.h, width: h.w) == (identity.h, identity.w), last.config.outChannels == identity.c,
                    last.config.inChannels == h.c
                else {
                    throw ModelError(.shape, "resnet forward: shortcut [\(identity.c), \(identity.h), \(identity.w)] does not match the branch")
                }
                if identity.id != x.id || h.id != x.id {
                    // In place: over the shortcut's own copy, or over the block's input once the branch
                    // has read it.
                    run(last, h, into: identity, residual: identity, .relu)
                    if h.id != x.id { plan.release(h.id) }
                    if identity.id != x.id { plan.release(x.id) }
                    x = identity
                } else {
                    // A one-convolution identity block reads its input as it writes: a new slot.
                    let y = try apply(last, h, residual: identity, .relu)
                    plan.release(x.id)
                    x = y
                }
            }
            let lastOfStage = i == blocks.count - 1 || blocks[i + 1].stage != block.stage
            if taps && lastOfStage { tap("layer\(block.stage + 1)", x) }
        }
        guard !dry else { return out }
        // Head.
        var pooled = [Float](repeating: 0, count: n * x.c)
        pooled.withUnsafeMutableBufferPointer {
            RawOps.globalAvgPool(x.pointer, inputImageStride: x.imageStride, output: $0.baseAddress!, images: n, channels: x.c, plane: x.h * x.w)
        }
        do throws(NeuralNetError) {
            let p = try Tensor(shape: [n, x.c], data: pooled)
            if taps { out.append(("prelogits", p)) }
            out.append(("logits", try head(p)))
        } catch {
            throw ModelError(error, "resnet forward")
        }
        return out
    }

    /// Squeeze-and-excitation's gates for `h`: `sigmoid(fc2(relu(fc1(mean over each plane))))`, one per
    /// image and channel, in the workspace's `gates` slot (with `dry`, only the checks).
    private func excite(_ se: SqueezeExcite, _ h: Value, images n: Int, _ ws: Workspace, dry: Bool) throws(ModelError) -> UnsafeMutablePointer<Float> {
        guard se.fc1.inFeatures == h.c, se.fc2.outFeatures == h.c else {
            throw ModelError(.shape, "resnet forward: squeeze-and-excitation of \(se.fc1.inFeatures) channels on a branch of \(h.c)")
        }
        guard !dry else { return h.pointer }
        let squeezed = ws.buffer(Slot.squeezed, count: n * h.c)
        RawOps.globalAvgPool(h.pointer, inputImageStride: h.imageStride, output: squeezed, images: n, channels: h.c, plane: h.h * h.w)
        let r = se.fc1.outFeatures
        let hidden = ws.buffer(Slot.hidden, count: n * r)
        se.fc1.run(batch: n, input: squeezed, output: hidden, activation: .relu)
        let gates = ws.buffer(Slot.gates, count: n * h.c)
        se.fc2.run(batch: n, input: hidden, output: gates)
        for i in 0..<(n * h.c) { gates[i] = 1 / (1 + expf(-gates[i])) }
        return gates
    }

    /// The stem pool's output length (PyTorch's rule, ceil mode included).
    static func poolLength(_ input: Int, _ p: ResNetLayout.Pool) throws(NeuralNetError) -> Int {
        let span = input + 2 * p.padding - p.kernel
        guard input > 0, span >= 0, p.stride > 0 else {
            throw NeuralNetError("maxPool2d: input size \(input) with padding \(p.padding) is smaller than the kernel \(p.kernel); output would be empty")
        }
        var out = (p.ceilMode ? (span + p.stride - 1) / p.stride : span / p.stride) + 1
        if p.ceilMode, (out - 1) * p.stride >= input + p.padding { out -= 1 }
        return out
    }

    /// CIFAR option A: `F.pad(x[:, :, ::stride, ::stride], (0, 0, 0, 0, pad, pad))`, into a slot taken
    /// from `plan`.
    static func zeroPadShortcut(_ x: Value, images n: Int, stride: Int, padChannels: Int, plan: ActivationPlan) -> Value {
        let c = x.c, h = x.h, w = x.w
        let oh = (h + stride - 1) / stride, ow = (w + stride - 1) / stride
        let oc = c + 2 * padChannels
        let (id, dst) = plan.take(n * oc * oh * ow)
        guard !plan.dry else { return Value(pointer: dst, c: oc, h: oh, w: ow, id: id) }
        dst.update(repeating: 0, count: n * oc * oh * ow)
        for b in 0..<n {
            for ch in 0..<c {
                let s = x.pointer + b * x.imageStride + ch * h * w
                let d = dst + (b * oc + ch + padChannels) * oh * ow
                for y in 0..<oh {
                    for xx in 0..<ow { d[y * ow + xx] = s[(y * stride) * w + xx * stride] }
                }
            }
        }
        return Value(pointer: dst, c: oc, h: oh, w: ow, id: id)
    }
}

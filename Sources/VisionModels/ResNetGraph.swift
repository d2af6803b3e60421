import Foundation
import NeuralNet

/// The ResNet family's inference graph, built from `ResNetLayout`: the stem, residual blocks (basic,
/// bottleneck, SENet bottleneck; grouped, wide; with or without squeeze-and-excitation; projection or
/// zero-padded shortcuts), global pooling and the classifier, with every batch norm applied by its
/// convolution (in the kernels' epilogue, or folded into Winograd weights).
///
/// Convolutions are prepared once (weights packed for the engine's kernels). An inference runs on a
/// memory plan of reused buffers (`Workspace`): the block input and output swap between two slots, the
/// branch's intermediates use two more, the shortcut one; the last convolution of a block adds the
/// shortcut and applies ReLU as it stores its output (after SE gating when the block has it).
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

    /// The memory plan's slots.
    enum Slot {
        static let x = 0, y = 1, t1 = 2, t2 = 3, shortcut = 4, squeezed = 5, hidden = 6, gates = 7
        static let count = 8
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

    /// An activation in the workspace: `n` images of `[c, h, w]`, contiguous.
    struct Value {
        var pointer: UnsafeMutablePointer<Float>
        var c: Int, h: Int, w: Int
        var imageStride: Int { c * h * w }
    }

    func run(_ input: Tensor, taps: Bool) throws(ModelError) -> [(name: String, tensor: Tensor)] {
        let n = input.shape[0]
        let ws = workspaces.take()
        defer { workspaces.give(ws) }
        var out: [(name: String, tensor: Tensor)] = []
        func tap(_ name: String, _ v: Value) {
            out.append((name, Tensor.copying(v.pointer, imageStride: v.imageStride, images: n, channels: v.c, height: v.h, width: v.w)))
        }
        /// Runs `conv` on `x` into `y`, with an optional residual (which may be `y` itself) and the
        /// activation fused.
        func run(_ conv: PreparedConv2d, _ x: Value, into y: Value, residual: Value? = nil, _ act: Activation) {
            conv.run(
                batch: n, height: x.h, width: x.w, input: x.pointer, inputImageStride: x.imageStride,
                output: y.pointer, outputImageStride: y.imageStride,
                residual: residual.map { UnsafePointer($0.pointer) }, residualImageStride: residual?.imageStride ?? 0,
                activation: act)
        }
        /// The output of `conv` on `x`, allocated in `slot`.
        func output(_ conv: PreparedConv2d, _ x: Value, in slot: Int) throws(ModelError) -> Value {
            let (oh, ow) = conv.outputSize(height: x.h, width: x.w)
            guard oh > 0, ow > 0, x.c == conv.config.inChannels else {
                throw ModelError(.shape, "resnet forward: input [\(n), \(x.c), \(x.h), \(x.w)] does not fit convolution \(conv.config)")
            }
            let co = conv.config.outChannels
            return Value(pointer: ws.buffer(slot, count: n * co * oh * ow), c: co, h: oh, w: ow)
        }
        /// Runs `conv` on `x` into `slot`, with an optional residual and the activation fused.
        func apply(_ conv: PreparedConv2d, _ x: Value, into slot: Int, residual: Value? = nil, _ act: Activation) throws(ModelError) -> Value {
            let y = try output(conv, x, in: slot)
            run(conv, x, into: y, residual: residual, act)
            return y
        }

        // Stem: the first convolution reads the caller's input where it is; the stem's convolutions
        // alternate between t1 and t2, the last one goes to y when the pool follows (which writes x),
        // else to x.
        func stemSlot(_ i: Int) -> Int {
            i == stem.count - 1 ? (stemPool == nil ? Slot.x : Slot.y) : (i % 2 == 0 ? Slot.t1 : Slot.t2)
        }
        let c0 = input.shape[1], h0 = input.shape[2], w0 = input.shape[3]
        var x: Value
        if let first = stem.first {
            x = try input.data.withUnsafeBufferPointer { (buffer) throws(ModelError) -> Value in
                // Only read: the convolution takes its input as a const pointer.
                let source = Value(pointer: UnsafeMutablePointer(mutating: buffer.baseAddress!), c: c0, h: h0, w: w0)
                return try apply(first, source, into: stemSlot(0), .relu)
            }
        } else {
            let staged = ws.buffer(Slot.x, count: input.data.count)
            input.data.withUnsafeBufferPointer { staged.update(from: $0.baseAddress!, count: $0.count) }
            x = Value(pointer: staged, c: c0, h: h0, w: w0)
        }
        for (i, conv) in stem.enumerated().dropFirst() {
            x = try apply(conv, x, into: stemSlot(i), .relu)
        }
        if let p = stemPool {
            let oh: Int, ow: Int
            do {
                oh = try Self.poolLength(x.h, p)
                ow = try Self.poolLength(x.w, p)
            } catch {
                throw ModelError(error, "resnet forward")
            }
            let y = Value(pointer: ws.buffer(Slot.x, count: n * x.c * oh * ow), c: x.c, h: oh, w: ow)
            RawOps.maxPool(
                x.pointer, inputImageStride: x.imageStride, output: y.pointer, outputImageStride: y.imageStride,
                images: n, channels: x.c, height: x.h, width: x.w, outHeight: oh, outWidth: ow,
                kernel: p.kernel, stride: p.stride, padding: p.padding)
            x = y
        }
        if taps { tap("stem", x) }
        // Blocks. Without SE, the last convolution adds the shortcut in place: an identity block writes
        // its output over its input (x), a projection block computes the projection into y and the
        // last convolution adds onto it there; so a block needs x, y, t1 and t2 only. SE blocks gate
        // the branch before adding, so they keep the shortcut in its own slot.
        var xSlot = Slot.x, ySlot = Slot.y
        for (i, block) in blocks.enumerated() {
            let inPlace = block.se == nil
            // The shortcut.
            let identity: Value
            if let d = block.downsample {
                identity = try apply(d, x, into: inPlace ? ySlot : Slot.shortcut, .none)
            } else if let z = block.zeroPad {
                identity = Self.zeroPadShortcut(x, images: n, stride: z.stride, padChannels: z.padChannels, into: ws.buffer)
            } else {
                identity = x
            }
            // The branch: intermediates alternate between t1 and t2.
            var h = x
            var swapped = true
            for (j, conv) in block.convs.enumerated() {
                if j < block.convs.count - 1 {
                    h = try apply(conv, h, into: j % 2 == 0 ? Slot.t1 : Slot.t2, .relu)
                } else if let se = block.se {
                    h = try apply(conv, h, into: ySlot, block.reluBeforeSE ? .relu : .none)
                    try excite(se, h, identity: identity, images: n, ws)
                } else {
                    guard conv.outputSize(height: h.h, width: h.w) == (identity.h, identity.w), conv.config.outChannels == identity.c,
                        conv.config.inChannels == h.c
                    else {
                        throw ModelError(.shape, "resnet forward: shortcut [\(identity.c), \(identity.h), \(identity.w)] does not match the branch")
                    }
                    if (block.downsample != nil || block.zeroPad == nil) && block.convs.count > 1 {
                        // In place: over the projection (in y) or over the block's input (in x).
                        run(conv, h, into: identity, residual: identity, .relu)
                        h = identity
                        swapped = block.downsample != nil
                    } else {
                        h = try apply(conv, h, into: ySlot, residual: identity, .relu)
                    }
                }
            }
            x = h
            if swapped { swap(&xSlot, &ySlot) }
            let lastOfStage = i == blocks.count - 1 || blocks[i + 1].stage != block.stage
            if taps && lastOfStage { tap("layer\(block.stage + 1)", x) }
        }
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

    /// Squeeze-and-excitation on `h` (in place), then `relu(h * gates + identity)`.
    private func excite(_ se: SqueezeExcite, _ h: Value, identity: Value, images n: Int, _ ws: Workspace) throws(ModelError) {
        guard identity.c == h.c, identity.h == h.h, identity.w == h.w else {
            throw ModelError(.shape, "resnet forward: shortcut [\(identity.c), \(identity.h), \(identity.w)] does not match the branch")
        }
        let squeezed = ws.buffer(Slot.squeezed, count: n * h.c)
        RawOps.globalAvgPool(h.pointer, inputImageStride: h.imageStride, output: squeezed, images: n, channels: h.c, plane: h.h * h.w)
        guard se.fc1.inFeatures == h.c, se.fc2.outFeatures == h.c else {
            throw ModelError(.shape, "resnet forward: squeeze-and-excitation of \(se.fc1.inFeatures) channels on a branch of \(h.c)")
        }
        let r = se.fc1.outFeatures
        let hidden = ws.buffer(Slot.hidden, count: n * r)
        se.fc1.run(batch: n, input: squeezed, output: hidden, activation: .relu)
        let gates = ws.buffer(Slot.gates, count: n * h.c)
        se.fc2.run(batch: n, input: hidden, output: gates)
        for i in 0..<(n * h.c) { gates[i] = 1 / (1 + expf(-gates[i])) }
        RawOps.scaleChannels(h.pointer, gates: gates, residual: identity.pointer, images: n, channels: h.c, plane: h.h * h.w, activation: .relu)
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

    /// CIFAR option A: `F.pad(x[:, :, ::stride, ::stride], (0, 0, 0, 0, pad, pad))`, into the shortcut slot.
    static func zeroPadShortcut(
        _ x: Value, images n: Int, stride: Int, padChannels: Int, into buffer: (Int, Int) -> UnsafeMutablePointer<Float>
    ) -> Value {
        let c = x.c, h = x.h, w = x.w
        let oh = (h + stride - 1) / stride, ow = (w + stride - 1) / stride
        let oc = c + 2 * padChannels
        let dst = buffer(Slot.shortcut, n * oc * oh * ow)
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
        return Value(pointer: dst, c: oc, h: oh, w: ow)
    }
}

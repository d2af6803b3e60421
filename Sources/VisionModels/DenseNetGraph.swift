import NeuralNet

/// The DenseNet family's inference graph: stem, dense blocks whose layers see the concatenation of
/// every earlier output, transitions, the final norm and the classifier. `norm2` is applied by `conv1`
/// and `norm0` by `conv0` (in the kernels' epilogue, weights kept exact); the pre-activation norms
/// (`norm1`, transition `norm`, `norm5`) act on concatenations and are fused into whatever reads them.
///
/// Memory plan (two buffers, kept from call to call): a dense block writes into one buffer with room for
/// all of its channels, which the next block's buffer replaces once a transition has pooled it; the
/// other holds the bottleneck outputs, a transition's pooled input and the stem's output, for one image
/// and some of its channels at a time (the stem and its pool run image by image and part by part, each
/// part's output no larger than one image's bottleneck output). The block's input and every layer's 32
/// (growth-rate) new channels are written straight into their place in the block's buffer, so
/// concatenation costs nothing; each layer's `norm1` + ReLU is applied while its `conv1` packs its input.
/// A transition's batch norm, ReLU and 2x2 average pool run in one pass before its 1x1 convolution
/// (pooling and a 1x1 convolution commute, so this does a quarter of the work), and that convolution
/// writes into the next block's buffer. `norm5` + ReLU is fused into the global pooling.
struct DenseNetGraph: Sendable {
    /// A batch norm in inference form, as the per-channel scale and shift the kernels apply.
    struct Affine: Sendable {
        let scale: [Float]
        let shift: [Float]

        init(_ bn: BatchNorm2d) { (scale, shift) = bn.scaleShift }
    }

    struct Layer: Sendable {
        let norm1: Affine
        let conv1: PreparedConv2d  // applies norm2
        let conv2: PreparedConv2d
    }

    struct Transition: Sendable {
        let norm: Affine
        let conv: PreparedConv2d
    }

    /// `conv0` (applying `norm0`) in parts of consecutive output channels, run one after the other: each
    /// part's output for one image is at most a quarter of the channels of a bottleneck output at four
    /// times its plane (the pool halves each side), so at batch 1 the stem does not enlarge the
    /// bottleneck slot (for DenseNet-121, two parts of 32 channels: 1.6 MB at 224 x 224 instead of 3.2).
    let stem: [PreparedConv2d]
    let blocks: [[Layer]]
    let transitions: [Transition]
    let norm5: Affine
    let classifier: Linear
    let growthRate: Int
    let workspaces = WorkspacePool(slots: Slot.count)

    /// The memory plan's slots: the block buffer and the bottleneck output, which also holds one
    /// image's stem output and a transition's pooled input.
    enum Slot {
        static let block = 0, bottleneck = 1
        static let count = 2
    }

    init(config c: DenseNetConfig, store: ParameterStore) throws(ModelError) {
        let eps = c.batchNormEps
        let stemConfig = Conv2dConfig(inChannels: 3, outChannels: c.numInitFeatures, kernel: 7, stride: 2, padding: 3)
        let partChannels = max(1, c.bnSize * c.growthRate / 4)
        stem = try stride(from: 0, to: c.numInitFeatures, by: partChannels).map { (o) throws(ModelError) in
            try store.conv("features.conv0", stemConfig, outputs: o..<min(o + partChannels, c.numInitFeatures),
                           foldingBatchNorm: "features.norm0", eps: eps)
        }
        var channels = c.numInitFeatures
        var blocks: [[Layer]] = []
        var transitions: [Transition] = []
        let inner = c.bnSize * c.growthRate
        for (bi, count) in c.blockConfig.enumerated() {
            var layers: [Layer] = []
            for l in 0..<count {
                let p = "features.denseblock\(bi + 1).denselayer\(l + 1)"
                let cin = channels + l * c.growthRate
                layers.append(Layer(
                    norm1: Affine(try store.batchNorm("\(p).norm1", eps: eps)),
                    conv1: try store.conv("\(p).conv1", Conv2dConfig(inChannels: cin, outChannels: inner, kernel: 1), foldingBatchNorm: "\(p).norm2", eps: eps),
                    conv2: try store.conv("\(p).conv2", Conv2dConfig(inChannels: inner, outChannels: c.growthRate, kernel: 3, padding: 1), foldingBatchNorm: nil, eps: eps)))
            }
            blocks.append(layers)
            channels += count * c.growthRate
            if bi < c.blockConfig.count - 1 {
                let p = "features.transition\(bi + 1)"
                transitions.append(Transition(
                    norm: Affine(try store.batchNorm("\(p).norm", eps: eps)),
                    conv: try store.conv("\(p).conv", Conv2dConfig(inChannels: channels, outChannels: channels / 2, kernel: 1), foldingBatchNorm: nil, eps: eps)))
                channels /= 2
            }
        }
        self.blocks = blocks
        self.transitions = transitions
        growthRate = c.growthRate
        norm5 = Affine(try store.batchNorm("features.norm5", eps: eps))
        classifier = try store.linear("classifier", inFeatures: channels, outFeatures: c.numClasses)
    }

    func run(_ input: Tensor, taps: Bool) throws(ModelError) -> [(name: String, tensor: Tensor)] {
        let n = input.shape[0], h0 = input.shape[2], w0 = input.shape[3]
        let ws = workspaces.take()
        defer { workspaces.give(ws) }
        var out: [(name: String, tensor: Tensor)] = []

        // Stem: conv0 (applying norm0) + ReLU on the caller's input where it is, then the 3x3/2 max pool
        // into the first block's buffer, one image and one part of the channels at a time: the stem's
        // output, the largest activation, is then one part of one image's (in the bottleneck slot, which
        // a block's bottleneck output fills as much).
        let (sh, sw) = stem[0].outputSize(height: h0, width: w0)
        guard sh > 0, sw > 0 else { throw ModelError(.shape, "densenet forward: input \(input.shape) is too small for the stem") }
        let c0 = stem.reduce(0) { $0 + $1.config.outChannels }
        let stemOut = ws.buffer(Slot.bottleneck, count: stem.map(\.config.outChannels).max()! * sh * sw)
        var h = (sh + 2 - 3) / 2 + 1, w = (sw + 2 - 3) / 2 + 1
        var channels = c0
        var blockChannels = channels + blocks[0].count * growthRate
        var buffer = ws.buffer(Slot.block, count: n * blockChannels * h * w)
        input.data.withUnsafeBufferPointer { x in
            for i in 0..<n {
                var first = 0
                for part in stem {
                    let pc = part.config.outChannels
                    part.run(batch: 1, height: h0, width: w0, input: x.baseAddress! + i * 3 * h0 * w0, inputImageStride: 3 * h0 * w0,
                             output: stemOut, outputImageStride: pc * sh * sw, activation: .relu)
                    RawOps.maxPool(stemOut, inputImageStride: pc * sh * sw, output: buffer + (i * blockChannels + first) * h * w,
                                   outputImageStride: blockChannels * h * w, images: 1, channels: pc, height: sh, width: sw,
                                   outHeight: h, outWidth: w, kernel: 3, stride: 2, padding: 1)
                    first += pc
                }
            }
        }
        if taps { out.append(("stem", Tensor.copying(buffer, imageStride: blockChannels * h * w, images: n, channels: c0, height: h, width: w))) }

        for (bi, layers) in blocks.enumerated() {
            let stride = blockChannels * h * w
            let plane = h * w
            for layer in layers {
                let inner = layer.conv1.config.outChannels
                let bottleneck = ws.buffer(Slot.bottleneck, count: n * inner * plane)
                layer.norm1.scale.withUnsafeBufferPointer { scale in
                    layer.norm1.shift.withUnsafeBufferPointer { shift in
                        layer.conv1.run(batch: n, height: h, width: w, input: buffer, inputImageStride: stride,
                                        output: bottleneck, outputImageStride: inner * plane,
                                        inputScale: scale.baseAddress, inputShift: shift.baseAddress, activation: .relu)
                    }
                }
                layer.conv2.run(batch: n, height: h, width: w, input: bottleneck, inputImageStride: inner * plane,
                                output: buffer + channels * plane, outputImageStride: stride, activation: .none)
                channels += layer.conv2.config.outChannels
            }
            if taps { out.append(("denseblock\(bi + 1)", Tensor.copying(buffer, imageStride: stride, images: n, channels: channels, height: h, width: w))) }
            guard bi < transitions.count else { break }
            // Transition: norm + ReLU + pool in one pass, then the 1x1 convolution into the next buffer.
            let t = transitions[bi]
            let ph = h / 2, pw = w / 2
            guard ph > 0, pw > 0 else { throw ModelError(.shape, "densenet forward: input \(input.shape) is too small for transition \(bi + 1)") }
            // Pooled into the bottleneck slot, free between blocks.
            let pooled = ws.buffer(Slot.bottleneck, count: n * channels * ph * pw)
            t.norm.scale.withUnsafeBufferPointer { scale in
                t.norm.shift.withUnsafeBufferPointer { shift in
                    RawOps.affineReLUAvgPool2x2(buffer, inputImageStride: stride, output: pooled, outputImageStride: channels * ph * pw,
                                                images: n, channels: channels, height: h, width: w,
                                                scale: scale.baseAddress!, shift: shift.baseAddress!)
                }
            }
            let next = t.conv.config.outChannels
            let nextBlockChannels = next + blocks[bi + 1].count * growthRate
            // The block's buffer has been read (pooled): the next block's buffer takes its place.
            let nextBuffer = ws.buffer(Slot.block, count: n * nextBlockChannels * ph * pw)
            t.conv.run(batch: n, height: ph, width: pw, input: pooled, inputImageStride: channels * ph * pw,
                       output: nextBuffer, outputImageStride: nextBlockChannels * ph * pw, activation: .none)
            (buffer, h, w, channels, blockChannels) = (nextBuffer, ph, pw, next, nextBlockChannels)
            if taps { out.append(("transition\(bi + 1)", Tensor.copying(buffer, imageStride: blockChannels * h * w, images: n, channels: channels, height: h, width: w))) }
        }
        // norm5 + ReLU fused into the global average pool.
        var pooled = [Float](repeating: 0, count: n * channels)
        norm5.scale.withUnsafeBufferPointer { scale in
            norm5.shift.withUnsafeBufferPointer { shift in
                pooled.withUnsafeMutableBufferPointer {
                    RawOps.globalAvgPool(buffer, inputImageStride: blockChannels * h * w, output: $0.baseAddress!, images: n,
                                         channels: channels, plane: h * w, scale: scale.baseAddress, shift: shift.baseAddress, activation: .relu)
                }
            }
        }
        do throws(NeuralNetError) {
            let p = try Tensor(shape: [n, channels], data: pooled)
            if taps { out.append(("prelogits", p)) }
            out.append(("logits", try classifier(p)))
        } catch {
            throw ModelError(error, "densenet forward")
        }
        return out
    }
}

import NeuralNet

/// The ResNet family's inference graph, built from `ResNetLayout`: the stem, residual blocks (basic,
/// bottleneck, SENet bottleneck; grouped, wide; with or without squeeze-and-excitation; projection or
/// zero-padded shortcuts), global pooling and the classifier, with every batch norm folded into its
/// convolution.
struct ResNetGraph: Sendable {
    struct SqueezeExcite: Sendable {
        let fc1: Conv2d
        let fc2: Conv2d
    }

    struct Block: Sendable {
        let stage: Int
        /// The residual branch's convolutions, batch norm folded.
        let convs: [Conv2d]
        let se: SqueezeExcite?
        let downsample: Conv2d?
        let zeroPad: (stride: Int, padChannels: Int)?
        let reluBeforeSE: Bool
    }

    let stem: [Conv2d]
    let stemPool: ResNetLayout.Pool?
    let blocks: [Block]
    let head: Linear

    init(config c: ResNetConfig, store: ParameterStore) throws(ModelError) {
        let eps = c.batchNormEps
        let layout = c.layout
        func conv(_ u: ResNetLayout.ConvUnit) throws(ModelError) -> Conv2d {
            try store.conv(u.name, u.config, foldingBatchNorm: u.norm, eps: eps)
        }
        var stem: [Conv2d] = []
        for u in layout.stem { stem.append(try conv(u)) }
        self.stem = stem
        stemPool = layout.stemPool
        var blocks: [Block] = []
        for b in layout.blocks {
            var convs: [Conv2d] = []
            for u in b.convs { convs.append(try conv(u)) }
            var se: SqueezeExcite?
            if let s = b.se {
                se = SqueezeExcite(
                    fc1: try store.conv(s.prefix + ".fc1", Conv2dConfig(inChannels: s.channels, outChannels: s.reduced, kernel: 1), foldingBatchNorm: nil, eps: eps),
                    fc2: try store.conv(s.prefix + ".fc2", Conv2dConfig(inChannels: s.reduced, outChannels: s.channels, kernel: 1), foldingBatchNorm: nil, eps: eps))
            }
            let down = try b.downsample.map { (u) throws(ModelError) in try conv(u) }
            blocks.append(Block(stage: b.stage, convs: convs, se: se, downsample: down, zeroPad: b.zeroPad, reluBeforeSE: b.reluBeforeSE))
        }
        self.blocks = blocks
        head = try store.linear(layout.headName, inFeatures: layout.headIn, outFeatures: layout.headOut)
    }

    func run(_ input: Tensor, taps: Bool) throws(ModelError) -> [(name: String, tensor: Tensor)] {
        var out: [(name: String, tensor: Tensor)] = []
        do throws(NeuralNetError) {
            var x = input
            for conv in stem { x = try conv(x, activation: .relu) }
            if let p = stemPool {
                x = try Ops.maxPool2d(x, kernel: p.kernel, stride: p.stride, padding: p.padding, ceilMode: p.ceilMode)
            }
            if taps { out.append(("stem", x)) }
            for (i, block) in blocks.enumerated() {
                var h = x
                for (j, conv) in block.convs.enumerated() {
                    h = try conv(h, activation: j == block.convs.count - 1 && !block.reluBeforeSE ? .none : .relu)
                }
                if let se = block.se {
                    let squeezed = try Ops.adaptiveAvgPool2d(h, outputH: 1, outputW: 1)
                    let gates = Ops.sigmoid(try se.fc2(try se.fc1(squeezed, activation: .relu)))
                    h = try Ops.scaleChannels(h, by: gates)
                }
                let identity: Tensor
                if let d = block.downsample {
                    identity = try d(x)
                } else if let z = block.zeroPad {
                    identity = try Self.zeroPadShortcut(x, stride: z.stride, padChannels: z.padChannels)
                } else {
                    identity = x
                }
                x = try Ops.add(h, identity, activation: .relu)
                let lastOfStage = i == blocks.count - 1 || blocks[i + 1].stage != block.stage
                if taps && lastOfStage { out.append(("layer\(block.stage + 1)", x)) }
            }
            let pooled = Ops.flatten(try Ops.adaptiveAvgPool2d(x, outputH: 1, outputW: 1))
            if taps { out.append(("prelogits", pooled)) }
            out.append(("logits", try head(pooled)))
        } catch {
            throw ModelError(error, "resnet forward")
        }
        return out
    }

    /// CIFAR option A: `F.pad(x[:, :, ::stride, ::stride], (0, 0, 0, 0, pad, pad))`.
    static func zeroPadShortcut(_ x: Tensor, stride: Int, padChannels: Int) throws(NeuralNetError) -> Tensor {
        let n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3]
        let oh = (h + stride - 1) / stride, ow = (w + stride - 1) / stride
        let oc = c + 2 * padChannels
        var data = [Float](repeating: 0, count: n * oc * oh * ow)
        x.data.withUnsafeBufferPointer { src in
            data.withUnsafeMutableBufferPointer { dst in
                for b in 0..<n {
                    for ch in 0..<c {
                        let sBase = (b * c + ch) * h * w
                        let dBase = (b * oc + ch + padChannels) * oh * ow
                        for y in 0..<oh {
                            for xx in 0..<ow { dst[dBase + y * ow + xx] = src[sBase + (y * stride) * w + xx * stride] }
                        }
                    }
                }
            }
        }
        return try Tensor(shape: [n, oc, oh, ow], data: data)
    }
}

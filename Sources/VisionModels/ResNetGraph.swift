import NeuralNet

/// The ResNet family's inference graph: the stem, residual blocks (basic or bottleneck, grouped or
/// wide), global pooling and the classifier, with every batch norm folded into its convolution.
struct ResNetGraph: Sendable {
    struct Block: Sendable {
        let stage: Int
        /// conv1..conv2 (basic) or conv1..conv3 (bottleneck), batch norm folded.
        let convs: [Conv2d]
        let downsample: Conv2d?
    }

    let stem: Conv2d
    let blocks: [Block]
    let fc: Linear
    let stages: Int

    init(config c: ResNetConfig, store: ParameterStore) throws(ModelError) {
        let eps = c.batchNormEps
        stem = try store.conv("conv1", Conv2dConfig(inChannels: 3, outChannels: c.stemWidth, kernel: 7, stride: 2, padding: 3),
                              foldingBatchNorm: "bn1", eps: eps)
        var blocks: [Block] = []
        for b in c.blocks {
            let p = "layer\(b.stage + 1).\(b.index)"
            var convs: [Conv2d] = []
            switch c.block {
            case .basic:
                convs.append(try store.conv("\(p).conv1", Conv2dConfig(inChannels: b.inChannels, outChannels: b.planes, kernel: 3, stride: b.stride, padding: 1),
                                            foldingBatchNorm: "\(p).bn1", eps: eps))
                convs.append(try store.conv("\(p).conv2", Conv2dConfig(inChannels: b.planes, outChannels: b.planes, kernel: 3, padding: 1),
                                            foldingBatchNorm: "\(p).bn2", eps: eps))
            case .bottleneck:
                let onFirst = c.stridePlacement == .firstConv1x1
                convs.append(try store.conv("\(p).conv1", Conv2dConfig(inChannels: b.inChannels, outChannels: b.width, kernel: 1, stride: onFirst ? b.stride : 1),
                                            foldingBatchNorm: "\(p).bn1", eps: eps))
                convs.append(try store.conv("\(p).conv2", Conv2dConfig(inChannels: b.width, outChannels: b.width, kernel: 3, stride: onFirst ? 1 : b.stride, padding: 1, groups: c.groups),
                                            foldingBatchNorm: "\(p).bn2", eps: eps))
                convs.append(try store.conv("\(p).conv3", Conv2dConfig(inChannels: b.width, outChannels: b.outChannels, kernel: 1),
                                            foldingBatchNorm: "\(p).bn3", eps: eps))
            }
            let down = b.hasDownsample
                ? try store.conv("\(p).downsample.0", Conv2dConfig(inChannels: b.inChannels, outChannels: b.outChannels, kernel: 1, stride: b.stride),
                                 foldingBatchNorm: "\(p).downsample.1", eps: eps)
                : nil
            blocks.append(Block(stage: b.stage, convs: convs, downsample: down))
        }
        self.blocks = blocks
        stages = c.layers.count
        fc = try store.linear("fc", inFeatures: c.stageWidths.last! * c.expansion, outFeatures: c.numClasses)
    }

    func run(_ input: Tensor, taps: Bool) throws(ModelError) -> [(name: String, tensor: Tensor)] {
        var out: [(name: String, tensor: Tensor)] = []
        do throws(NeuralNetError) {
            var x = try stem(input, activation: .relu)
            x = try Ops.maxPool2d(x, kernel: 3, stride: 2, padding: 1)
            if taps { out.append(("stem", x)) }
            for (i, block) in blocks.enumerated() {
                var h = x
                for (j, conv) in block.convs.enumerated() {
                    h = try conv(h, activation: j == block.convs.count - 1 ? .none : .relu)
                }
                let identity = try block.downsample.map { (d) throws(NeuralNetError) in try d(x) } ?? x
                x = try Ops.add(h, identity, activation: .relu)
                let lastOfStage = i == blocks.count - 1 || blocks[i + 1].stage != block.stage
                if taps && lastOfStage { out.append(("layer\(block.stage + 1)", x)) }
            }
            let pooled = Ops.flatten(try Ops.adaptiveAvgPool2d(x, outputH: 1, outputW: 1))
            if taps { out.append(("prelogits", pooled)) }
            out.append(("logits", try fc(pooled)))
        } catch {
            throw ModelError(error, "resnet forward")
        }
        return out
    }
}

/// One expected parameter: its state-dict key and shape.
public struct ParameterSpec: Sendable, Hashable {
    public let name: String
    public let shape: [Int]
    /// Whether a checkpoint may lack it (`num_batches_tracked`, absent from pre-0.4.1 files and unused
    /// at inference).
    public var isOptional: Bool { name.hasSuffix(".num_batches_tracked") }
}

extension Architecture {
    /// Every state-dict key and shape of this architecture, in the reference framework's order
    /// (module registration order, as `model.state_dict()` lists them).
    public var parameters: [ParameterSpec] {
        var out: [ParameterSpec] = []
        var convBias = false
        if case .resnet(let c) = family { convBias = c.convBias }
        func conv(_ name: String, _ o: Int, _ i: Int, _ k: Int) {
            out.append(ParameterSpec(name: name + ".weight", shape: [o, i, k, k]))
            if convBias { out.append(ParameterSpec(name: name + ".bias", shape: [o])) }
        }
        func bn(_ name: String, _ c: Int) {
            for p in ["weight", "bias", "running_mean", "running_var"] { out.append(ParameterSpec(name: "\(name).\(p)", shape: [c])) }
            out.append(ParameterSpec(name: "\(name).num_batches_tracked", shape: []))
        }
        func linear(_ name: String, _ o: Int, _ i: Int) {
            out.append(ParameterSpec(name: name + ".weight", shape: [o, i]))
            out.append(ParameterSpec(name: name + ".bias", shape: [o]))
        }
        switch family {
        case .resnet(let c):
            conv("conv1", c.stemWidth, 3, 7)
            bn("bn1", c.stemWidth)
            for b in c.blocks {
                let p = "layer\(b.stage + 1).\(b.index)"
                switch c.block {
                case .basic:
                    conv("\(p).conv1", b.planes, b.inChannels, 3)
                    bn("\(p).bn1", b.planes)
                    conv("\(p).conv2", b.planes, b.planes, 3)
                    bn("\(p).bn2", b.planes)
                case .bottleneck:
                    conv("\(p).conv1", b.width, b.inChannels, 1)
                    bn("\(p).bn1", b.width)
                    conv("\(p).conv2", b.width, b.width / c.groups, 3)
                    bn("\(p).bn2", b.width)
                    conv("\(p).conv3", b.outChannels, b.width, 1)
                    bn("\(p).bn3", b.outChannels)
                }
                if b.hasDownsample {
                    conv("\(p).downsample.0", b.outChannels, b.inChannels, 1)
                    bn("\(p).downsample.1", b.outChannels)
                }
            }
            linear("fc", c.numClasses, c.stageWidths.last! * c.expansion)
        case .densenet(let c):
            conv("features.conv0", c.numInitFeatures, 3, 7)
            bn("features.norm0", c.numInitFeatures)
            var channels = c.numInitFeatures
            for (bi, count) in c.blockConfig.enumerated() {
                for l in 0..<count {
                    let p = "features.denseblock\(bi + 1).denselayer\(l + 1)"
                    let cin = channels + l * c.growthRate
                    bn("\(p).norm1", cin)
                    conv("\(p).conv1", c.bnSize * c.growthRate, cin, 1)
                    bn("\(p).norm2", c.bnSize * c.growthRate)
                    conv("\(p).conv2", c.growthRate, c.bnSize * c.growthRate, 3)
                }
                channels += count * c.growthRate
                if bi < c.blockConfig.count - 1 {
                    bn("features.transition\(bi + 1).norm", channels)
                    conv("features.transition\(bi + 1).conv", channels / 2, channels, 1)
                    channels /= 2
                }
            }
            bn("features.norm5", channels)
            linear("classifier", c.numClasses, channels)
        }
        return out
    }

    /// Number of learnable parameters (weights and biases; running statistics excluded), as
    /// `sum(p.numel() for p in model.parameters())` counts them.
    public var learnableParameterCount: Int {
        parameters.filter { !$0.name.hasSuffix("running_mean") && !$0.name.hasSuffix("running_var") && !$0.isOptional }
            .reduce(0) { $0 + $1.shape.reduce(1, *) }
    }
}

extension ResNetConfig {
    /// One residual block's geometry.
    struct BlockGeometry {
        let stage: Int
        let index: Int
        let inChannels: Int
        let planes: Int
        /// Bottleneck inner width (`int(planes * width_per_group / 64) * groups`); `planes` for basic blocks.
        let width: Int
        let outChannels: Int
        let stride: Int
        let hasDownsample: Bool
    }

    /// Every block in order, with torchvision's channel and downsample rules.
    var blocks: [BlockGeometry] {
        var out: [BlockGeometry] = []
        var inplanes = stemWidth
        for (s, count) in layers.enumerated() {
            let planes = stageWidths[s]
            let stride = s == 0 ? 1 : 2
            let width = block == .basic ? planes : Int(Double(planes) * (Double(widthPerGroup) / 64.0)) * groups
            for i in 0..<count {
                let st = i == 0 ? stride : 1
                let down = i == 0 && (st != 1 || inplanes != planes * expansion)
                out.append(BlockGeometry(stage: s, index: i, inChannels: inplanes, planes: planes, width: width,
                                         outChannels: planes * expansion, stride: st, hasDownsample: down))
                inplanes = planes * expansion
            }
        }
        return out
    }
}

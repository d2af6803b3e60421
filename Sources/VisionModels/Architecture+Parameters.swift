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
        func conv(_ name: String, _ o: Int, _ i: Int, _ k: Int) { out.append(ParameterSpec(name: name + ".weight", shape: [o, i, k, k])) }
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
            let layout = c.layout
            func unit(_ u: ResNetLayout.ConvUnit) {
                let g = u.config
                out.append(ParameterSpec(name: u.name + ".weight", shape: [g.outChannels, g.inChannels / g.groups, g.kernelH, g.kernelW]))
                if u.bias { out.append(ParameterSpec(name: u.name + ".bias", shape: [g.outChannels])) }
                if let n = u.norm { bn(n, g.outChannels) }
            }
            layout.stem.forEach(unit)
            for b in layout.blocks {
                b.convs.forEach(unit)
                if let se = b.se {
                    out.append(ParameterSpec(name: se.prefix + ".fc1.weight", shape: [se.reduced, se.channels, 1, 1]))
                    out.append(ParameterSpec(name: se.prefix + ".fc1.bias", shape: [se.reduced]))
                    out.append(ParameterSpec(name: se.prefix + ".fc2.weight", shape: [se.channels, se.reduced, 1, 1]))
                    out.append(ParameterSpec(name: se.prefix + ".fc2.bias", shape: [se.channels]))
                }
                if let d = b.downsample { unit(d) }
            }
            linear(layout.headName, layout.headOut, layout.headIn)
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

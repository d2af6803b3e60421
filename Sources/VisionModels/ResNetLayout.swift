import NeuralNet

/// The ResNet family's graph as data: every convolution with its parameter names, geometry and the
/// batch norm that follows it, every SE module and shortcut. `Architecture.parameters` and
/// `ResNetGraph` are both derived from it, so the names a graph loads are the names it declares.
struct ResNetLayout {
    /// A convolution (optionally with bias) followed by an optional batch norm.
    struct ConvUnit {
        let name: String
        let config: Conv2dConfig
        let bias: Bool
        let norm: String?
    }

    /// A squeeze-and-excitation module on `channels`, reducing to `reduced`.
    struct SEUnit {
        let prefix: String
        let channels: Int
        let reduced: Int
    }

    /// A residual block.
    struct BlockUnit {
        let stage: Int
        let index: Int
        let convs: [ConvUnit]
        let se: SEUnit?
        let downsample: ConvUnit?
        /// CIFAR option A shortcut: subsample by `stride`, zero-pad `padChannels` channels on each side.
        let zeroPad: (stride: Int, padChannels: Int)?
        /// ReLU after the last batch norm, before SE (timm's legacy `SEResNetBlock` does this; every
        /// other block leaves the branch linear until after the addition).
        let reluBeforeSE: Bool
    }

    /// A max pool after the stem.
    struct Pool {
        let kernel: Int, stride: Int, padding: Int, ceilMode: Bool
    }

    let stem: [ConvUnit]
    let stemPool: Pool?
    let blocks: [BlockUnit]
    let headName: String
    let headIn: Int
    let headOut: Int
}

extension ResNetConfig {
    /// The layout this configuration describes (torchvision's, timm's, Cadene's and the CIFAR rules
    /// for channels, strides, downsampling and names).
    var layout: ResNetLayout {
        let bias = convBias
        func unit(_ name: String, _ cin: Int, _ cout: Int, _ k: Int, stride: Int = 1, groups: Int = 1, norm: String?) -> ResNetLayout.ConvUnit {
            ResNetLayout.ConvUnit(
                name: name,
                config: Conv2dConfig(inChannels: cin, outChannels: cout, kernel: k, stride: stride, padding: (k - 1) / 2, groups: groups),
                bias: bias, norm: norm)
        }
        // Stem.
        let stemPrefix = naming == .cadene ? "layer0." : ""
        var stemUnits: [ResNetLayout.ConvUnit] = []
        var pool: ResNetLayout.Pool?
        switch stem {
        case .torchvision, .caffe:
            stemUnits.append(unit(stemPrefix + "conv1", 3, stemWidth, 7, stride: 2, norm: stemPrefix + "bn1"))
            pool = stem == .caffe ? .init(kernel: 3, stride: 2, padding: 0, ceilMode: true) : .init(kernel: 3, stride: 2, padding: 1, ceilMode: false)
        case .deep:
            stemUnits.append(unit(stemPrefix + "conv1", 3, stemWidth, 3, stride: 2, norm: stemPrefix + "bn1"))
            stemUnits.append(unit(stemPrefix + "conv2", stemWidth, stemWidth, 3, norm: stemPrefix + "bn2"))
            stemUnits.append(unit(stemPrefix + "conv3", stemWidth, stemWidth * 2, 3, norm: stemPrefix + "bn3"))
            pool = .init(kernel: 3, stride: 2, padding: 0, ceilMode: true)
        case .cifar:
            stemUnits.append(unit(stemPrefix + "conv1", 3, stemWidth, 3, norm: stemPrefix + "bn1"))
        }
        // Blocks.
        var blocks: [ResNetLayout.BlockUnit] = []
        var inplanes = stemOutChannels
        for (s, count) in layers.enumerated() {
            let planes = stageWidths[s]
            let out = planes * expansion
            for i in 0..<count {
                let p = "layer\(s + 1).\(i)"
                let stride = i == 0 && s > 0 ? 2 : 1
                let onFirst = stridePlacement == .firstConv1x1
                var convs: [ResNetLayout.ConvUnit] = []
                switch block {
                case .basic:
                    convs.append(unit("\(p).conv1", inplanes, planes, 3, stride: stride, norm: "\(p).bn1"))
                    convs.append(unit("\(p).conv2", planes, planes, 3, norm: "\(p).bn2"))
                case .bottleneck:
                    let width = Int(Double(planes) * (Double(widthPerGroup) / 64.0)) * groups
                    convs.append(unit("\(p).conv1", inplanes, width, 1, stride: onFirst ? stride : 1, norm: "\(p).bn1"))
                    convs.append(unit("\(p).conv2", width, width, 3, stride: onFirst ? 1 : stride, groups: groups, norm: "\(p).bn2"))
                    convs.append(unit("\(p).conv3", width, out, 1, norm: "\(p).bn3"))
                case .senetBottleneck:
                    convs.append(unit("\(p).conv1", inplanes, planes * 2, 1, stride: onFirst ? stride : 1, norm: "\(p).bn1"))
                    convs.append(unit("\(p).conv2", planes * 2, planes * 4, 3, stride: onFirst ? 1 : stride, groups: groups, norm: "\(p).bn2"))
                    convs.append(unit("\(p).conv3", planes * 4, out, 1, norm: "\(p).bn3"))
                }
                let se = squeezeExcitation.map {
                    ResNetLayout.SEUnit(prefix: "\(p).\(naming == .cadene ? "se_module" : "se")", channels: out, reduced: $0.reduced(out))
                }
                var downsample: ResNetLayout.ConvUnit?
                var zeroPad: (stride: Int, padChannels: Int)?
                if i == 0 && (stride != 1 || inplanes != out) {
                    switch shortcut {
                    case .projection:
                        downsample = unit("\(p).downsample.0", inplanes, out, s > 0 ? downsampleKernel : 1, stride: stride, norm: "\(p).downsample.1")
                    case .zeroPad:
                        zeroPad = (stride, (out - inplanes) / 2)
                    }
                }
                blocks.append(ResNetLayout.BlockUnit(
                    stage: s, index: i, convs: convs, se: se, downsample: downsample, zeroPad: zeroPad,
                    reluBeforeSE: se != nil && naming == .cadene && block == .basic))
                inplanes = out
            }
        }
        return ResNetLayout(stem: stemUnits, stemPool: pool, blocks: blocks, headName: headName, headIn: inplanes, headOut: numClasses)
    }
}

import NeuralNet

/// The DenseNet family's inference graph: stem, dense blocks whose layers see the concatenation of
/// every earlier output, transitions, the final norm and the classifier. `norm2` folds into `conv1`
/// and `norm0` into `conv0`; the pre-activation norms (`norm1`, transition `norm`, `norm5`) act on
/// concatenations and are applied as per-channel affine + ReLU.
struct DenseNetGraph: Sendable {
    struct Layer: Sendable {
        let norm1: BatchNorm2d
        let conv1: Conv2d  // norm2 folded in
        let conv2: Conv2d
    }

    struct Transition: Sendable {
        let norm: BatchNorm2d
        let conv: Conv2d
    }

    let stem: Conv2d
    let blocks: [[Layer]]
    let transitions: [Transition]
    let norm5: BatchNorm2d
    let classifier: Linear

    init(config c: DenseNetConfig, store: ParameterStore) throws(ModelError) {
        let eps = c.batchNormEps
        stem = try store.conv("features.conv0", Conv2dConfig(inChannels: 3, outChannels: c.numInitFeatures, kernel: 7, stride: 2, padding: 3),
                              foldingBatchNorm: "features.norm0", eps: eps)
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
                    norm1: try store.batchNorm("\(p).norm1", eps: eps),
                    conv1: try store.conv("\(p).conv1", Conv2dConfig(inChannels: cin, outChannels: inner, kernel: 1), foldingBatchNorm: "\(p).norm2", eps: eps),
                    conv2: try store.conv("\(p).conv2", Conv2dConfig(inChannels: inner, outChannels: c.growthRate, kernel: 3, padding: 1), foldingBatchNorm: nil, eps: eps)))
            }
            blocks.append(layers)
            channels += count * c.growthRate
            if bi < c.blockConfig.count - 1 {
                let p = "features.transition\(bi + 1)"
                transitions.append(Transition(
                    norm: try store.batchNorm("\(p).norm", eps: eps),
                    conv: try store.conv("\(p).conv", Conv2dConfig(inChannels: channels, outChannels: channels / 2, kernel: 1), foldingBatchNorm: nil, eps: eps)))
                channels /= 2
            }
        }
        self.blocks = blocks
        self.transitions = transitions
        norm5 = try store.batchNorm("features.norm5", eps: eps)
        classifier = try store.linear("classifier", inFeatures: channels, outFeatures: c.numClasses)
    }

    func run(_ input: Tensor, taps: Bool) throws(ModelError) -> [(name: String, tensor: Tensor)] {
        var out: [(name: String, tensor: Tensor)] = []
        do throws(NeuralNetError) {
            var x = try stem(input, activation: .relu)
            x = try Ops.maxPool2d(x, kernel: 3, stride: 2, padding: 1)
            if taps { out.append(("stem", x)) }
            for (bi, layers) in blocks.enumerated() {
                var features = [x]
                for layer in layers {
                    let joined = features.count == 1 ? features[0] : try Ops.concatChannels(features)
                    var h = try layer.norm1(joined, activation: .relu)
                    h = try layer.conv1(h, activation: .relu)
                    h = try layer.conv2(h)
                    features.append(h)
                }
                x = try Ops.concatChannels(features)
                if taps { out.append(("denseblock\(bi + 1)", x)) }
                if bi < transitions.count {
                    let t = transitions[bi]
                    x = try t.conv(try t.norm(x, activation: .relu))
                    x = try Ops.avgPool2d(x, kernel: 2, stride: 2)
                    if taps { out.append(("transition\(bi + 1)", x)) }
                }
            }
            x = try norm5(x, activation: .relu)
            let pooled = Ops.flatten(try Ops.adaptiveAvgPool2d(x, outputH: 1, outputW: 1))
            if taps { out.append(("prelogits", pooled)) }
            out.append(("logits", try classifier(pooled)))
        } catch {
            throw ModelError(error, "densenet forward")
        }
        return out
    }
}

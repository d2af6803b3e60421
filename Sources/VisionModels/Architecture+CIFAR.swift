import Checkpoint

/// The CIFAR ResNets of the ResNet paper (§4.2): a 3x3 stem with 16 channels, three stages of
/// 16/32/64 channels of basic blocks (n each, depth 6n+2), global average pooling and 10 classes.
/// Option A shortcuts zero-pad the subsampled identity (no parameters; head `linear`, the common
/// PyTorch layout); option B projects with a 1x1 convolution (`downsample.0/1`, head `fc`).
extension Architecture {
    /// The CIFAR ResNet of `depth` (6n+2) with option A or B shortcuts.
    public static func cifarResNet(depth: Int, optionB: Bool = false, numClasses: Int = 10) -> Architecture? {
        guard depth >= 8, (depth - 2) % 6 == 0 else { return nil }
        let n = (depth - 2) / 6
        var c = ResNetConfig(block: .basic, layers: [n, n, n], stemWidth: 16, stageWidths: [16, 32, 64], numClasses: numClasses)
        c.stem = .cifar
        c.shortcut = optionB ? .projection : .zeroPad
        c.headName = optionB ? "fc" : "linear"
        return Architecture(name: optionB ? "cifar_resnet\(depth)_b" : "resnet\(depth)", family: .resnet(c))
    }

    public static let resnet20 = cifarResNet(depth: 20)!
    public static let resnet32 = cifarResNet(depth: 32)!
    public static let resnet44 = cifarResNet(depth: 44)!
    public static let resnet56 = cifarResNet(depth: 56)!
    public static let resnet110 = cifarResNet(depth: 110)!
    public static let resnet1202 = cifarResNet(depth: 1202)!
    public static let cifar_resnet20_b = cifarResNet(depth: 20, optionB: true)!
    public static let cifar_resnet56_b = cifarResNet(depth: 56, optionB: true)!

    /// The CIFAR ResNets.
    public static let cifarResNets: [Architecture] = [.resnet20, .resnet32, .resnet44, .resnet56, .resnet110, .resnet1202, .cifar_resnet20_b, .cifar_resnet56_b]

    /// The CIFAR ResNet a checkpoint holds, with its depth read from the keys (never from a file
    /// name): the blocks per stage, the shortcut option and the number of classes.
    public static func cifarResNet(inferringFrom sd: StateDict) throws(ModelError) -> Architecture {
        var blocks = [0, 0, 0]
        var projection = false
        for name in sd.names {
            let parts = name.split(separator: ".")
            if parts.count >= 3, parts[0].hasPrefix("layer"), let s = Int(parts[0].dropFirst(5)), (1...3).contains(s), let i = Int(parts[1]) {
                blocks[s - 1] = max(blocks[s - 1], i + 1)
                if parts[2] == "downsample" { projection = true }
            }
            if name.hasPrefix("layer4.") {
                throw ModelError(.incompatibleWeights, "the checkpoint has a fourth stage ('\(name)'): not a CIFAR ResNet")
            }
        }
        guard blocks[0] > 0, blocks.allSatisfy({ $0 == blocks[0] }) else {
            throw ModelError(.incompatibleWeights, "blocks per stage \(blocks) are not those of a CIFAR ResNet (n, n, n)")
        }
        let head = projection ? "fc.weight" : "linear.weight"
        let classes = sd[head]?.shape.first ?? 10
        guard let arch = cifarResNet(depth: 6 * blocks[0] + 2, optionB: projection, numClasses: classes) else {
            throw ModelError(.incompatibleWeights, "depth \(6 * blocks[0] + 2) is not a CIFAR ResNet depth")
        }
        return arch
    }
}

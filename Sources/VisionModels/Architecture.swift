/// A classification backbone: its name and the configuration that determines its graph and its
/// parameter names. Every torchvision ResNet / ResNeXt / Wide ResNet / DenseNet is one value; the SE
/// networks and CIFAR ResNets are further configurations of the same graph code.
public struct Architecture: Sendable, Hashable, CustomStringConvertible {
    /// The reference framework's name, e.g. `resnet50`.
    public let name: String
    /// The family and its configuration.
    public let family: Family

    /// The two graph families.
    public enum Family: Sendable, Hashable {
        case resnet(ResNetConfig)
        case densenet(DenseNetConfig)
    }

    /// Creates an architecture from a configuration (for custom sizes and small test models).
    public init(name: String, family: Family) {
        self.name = name
        self.family = family
    }

    public var description: String { name }

    /// The number of classes of the default classifier.
    public var defaultNumClasses: Int {
        switch family {
        case .resnet(let c): return c.numClasses
        case .densenet(let c): return c.numClasses
        }
    }

    /// The classifier's weight key (`fc.weight`, `classifier.weight`), from which the number of
    /// classes of a checkpoint is inferred.
    public var classifierWeightKey: String {
        switch family {
        case .resnet(let c): return c.headName + ".weight"
        case .densenet: return "classifier.weight"
        }
    }

    /// The same architecture with another number of classes.
    public func withNumClasses(_ n: Int) -> Architecture {
        switch family {
        case .resnet(var c):
            c.numClasses = n
            return Architecture(name: name, family: .resnet(c))
        case .densenet(var c):
            c.numClasses = n
            return Architecture(name: name, family: .densenet(c))
        }
    }

    /// Names of the taps `Model.features` returns, in order.
    public var tapNames: [String] {
        switch family {
        case .resnet(let c):
            return ["stem"] + (1...c.layers.count).map { "layer\($0)" } + ["prelogits", "logits"]
        case .densenet(let c):
            var names = ["stem"]
            for i in 1...c.blockConfig.count {
                names.append("denseblock\(i)")
                if i < c.blockConfig.count { names.append("transition\(i)") }
            }
            return names + ["prelogits", "logits"]
        }
    }
}

/// The ResNet family's configuration (torchvision's `ResNet(block, layers, groups, width_per_group)`).
public struct ResNetConfig: Sendable, Hashable {
    /// Residual block kind.
    public enum Block: String, Sendable, Hashable {
        /// Two 3x3 convolutions (expansion 1): resnet18/34.
        case basic
        /// 1x1, 3x3, 1x1 (expansion 4): resnet50 and larger, ResNeXt, Wide ResNet.
        case bottleneck
        /// SENet-154's bottleneck: 1x1 to 2·planes, grouped 3x3 to 4·planes, 1x1 (expansion 4).
        case senetBottleneck
    }
    public var block: Block
    /// Blocks per stage.
    public var layers: [Int]
    /// Groups of the 3x3 convolution (ResNeXt cardinality).
    public var groups: Int = 1
    /// Width per group of the bottleneck (64 plain, 4 or 8 for ResNeXt, 128 for Wide ResNet).
    public var widthPerGroup: Int = 64
    /// Channels of the stem convolution.
    public var stemWidth: Int = 64
    /// `planes` of each stage.
    public var stageWidths: [Int] = [64, 128, 256, 512]
    /// Classifier outputs.
    public var numClasses: Int = 1000
    /// Batch-norm epsilon.
    public var batchNormEps: Float = 1e-5
    /// Which convolution of a bottleneck carries the stage's stride.
    public var stridePlacement: StridePlacement = .conv3x3
    /// Whether every convolution has a bias (Keras ResNets).
    public var convBias: Bool = false

    /// The stem before the first stage.
    public var stem: Stem = .torchvision
    /// How parameters are named.
    public var naming: Naming = .torchvision
    /// The classifier's name (`fc`; `last_linear` for Cadene; `linear` for CIFAR option A).
    public var headName: String = "fc"
    /// Squeeze-and-excitation on each block's residual branch, if any.
    public var squeezeExcitation: SqueezeExcitation?
    /// Kernel of the projection shortcut in stages 2 and later (3, padding 1, for SENet-154).
    public var downsampleKernel: Int = 1
    /// How a block whose shape changes forms its shortcut.
    public var shortcut: Shortcut = .projection

    /// Where a bottleneck block's stride goes.
    public enum StridePlacement: String, Sendable, Hashable {
        /// On the 3x3 convolution: torchvision's "ResNet V1.5", timm's SE-ResNets.
        case conv3x3
        /// On the first 1x1 convolution: the original paper, Caffe, Keras and Cadene's SE-ResNets.
        case firstConv1x1
    }

    /// The stem.
    public enum Stem: String, Sendable, Hashable {
        /// 7x7 stride-2 convolution, BN, ReLU, max pool 3x3 stride 2 padding 1 (floor).
        case torchvision
        /// The same convolution, then max pool 3x3 stride 2 without padding in ceil mode (Caffe; Cadene's `layer0`).
        case caffe
        /// Three 3x3 convolutions 3→64→64→128 (the first with stride 2), then the Caffe pool (SENet-154).
        case deep
        /// One 3x3 stride-1 convolution, BN, ReLU and no pool (the CIFAR ResNets).
        case cifar
    }

    /// Parameter naming families.
    public enum Naming: String, Sendable, Hashable {
        /// `conv1`, `bn1`, `layerN.M...`, `se.fc1`: torchvision, timm's ResNets, the CIFAR ResNets.
        case torchvision
        /// `layer0.conv1`, `layerN.M.se_module.fc1`: Cadene's pretrainedmodels and timm's `legacy_*`.
        case cadene
    }

    /// Squeeze-and-excitation: global pool, 1x1 conv (with bias) to `reduced(channels)`, ReLU, 1x1
    /// conv back, sigmoid, channel scaling — before the residual addition.
    public struct SqueezeExcitation: Sendable, Hashable {
        /// Reduction ratio r (16 in every released model).
        public var reduction: Int = 16
        /// Round the reduced width to a multiple of this (timm's `make_divisible(C/16, 8)`); nil means `C / r`.
        public var divisor: Int?

        public init(reduction: Int = 16, divisor: Int? = nil) {
            self.reduction = reduction
            self.divisor = divisor
        }

        /// The reduced width for `channels`.
        public func reduced(_ channels: Int) -> Int {
            guard let d = divisor else { return channels / reduction }
            let v = Double(channels) / Double(reduction)
            return max(d, Int(v + Double(d) / 2) / d * d)
        }
    }

    /// Shortcut of a block whose shape changes.
    public enum Shortcut: String, Sendable, Hashable {
        /// A 1x1 (or `downsampleKernel`) convolution and BN: `downsample.0/1`.
        case projection
        /// CIFAR option A: the identity subsampled by the stride and zero-padded in channels; no parameters.
        case zeroPad
    }

    /// Creates a configuration.
    public init(block: Block, layers: [Int], groups: Int = 1, widthPerGroup: Int = 64, stemWidth: Int = 64,
                stageWidths: [Int] = [64, 128, 256, 512], numClasses: Int = 1000) {
        self.block = block
        self.layers = layers
        self.groups = groups
        self.widthPerGroup = widthPerGroup
        self.stemWidth = stemWidth
        self.stageWidths = stageWidths
        self.numClasses = numClasses
    }

    /// Output channels = planes x expansion.
    public var expansion: Int { block == .basic ? 1 : 4 }

    /// Channels the stem hands to the first stage.
    public var stemOutChannels: Int { stem == .deep ? stemWidth * 2 : stemWidth }
}

/// The DenseNet family's configuration (torchvision's `DenseNet(growth_rate, block_config, num_init_features, bn_size)`).
public struct DenseNetConfig: Sendable, Hashable {
    public var growthRate: Int
    public var blockConfig: [Int]
    public var numInitFeatures: Int
    public var bnSize: Int = 4
    public var numClasses: Int = 1000
    public var batchNormEps: Float = 1e-5

    /// Creates a configuration.
    public init(growthRate: Int, blockConfig: [Int], numInitFeatures: Int, bnSize: Int = 4, numClasses: Int = 1000) {
        self.growthRate = growthRate
        self.blockConfig = blockConfig
        self.numInitFeatures = numInitFeatures
        self.bnSize = bnSize
        self.numClasses = numClasses
    }
}

extension Architecture {
    public static let resnet18 = Architecture(name: "resnet18", family: .resnet(ResNetConfig(block: .basic, layers: [2, 2, 2, 2])))
    public static let resnet34 = Architecture(name: "resnet34", family: .resnet(ResNetConfig(block: .basic, layers: [3, 4, 6, 3])))
    public static let resnet50 = Architecture(name: "resnet50", family: .resnet(ResNetConfig(block: .bottleneck, layers: [3, 4, 6, 3])))
    public static let resnet101 = Architecture(name: "resnet101", family: .resnet(ResNetConfig(block: .bottleneck, layers: [3, 4, 23, 3])))
    public static let resnet152 = Architecture(name: "resnet152", family: .resnet(ResNetConfig(block: .bottleneck, layers: [3, 8, 36, 3])))
    public static let resnext50_32x4d = Architecture(
        name: "resnext50_32x4d", family: .resnet(ResNetConfig(block: .bottleneck, layers: [3, 4, 6, 3], groups: 32, widthPerGroup: 4)))
    public static let resnext101_32x8d = Architecture(
        name: "resnext101_32x8d", family: .resnet(ResNetConfig(block: .bottleneck, layers: [3, 4, 23, 3], groups: 32, widthPerGroup: 8)))
    public static let resnext101_64x4d = Architecture(
        name: "resnext101_64x4d", family: .resnet(ResNetConfig(block: .bottleneck, layers: [3, 4, 23, 3], groups: 64, widthPerGroup: 4)))
    public static let wide_resnet50_2 = Architecture(
        name: "wide_resnet50_2", family: .resnet(ResNetConfig(block: .bottleneck, layers: [3, 4, 6, 3], widthPerGroup: 128)))
    public static let wide_resnet101_2 = Architecture(
        name: "wide_resnet101_2", family: .resnet(ResNetConfig(block: .bottleneck, layers: [3, 4, 23, 3], widthPerGroup: 128)))
    public static let densenet121 = Architecture(
        name: "densenet121", family: .densenet(DenseNetConfig(growthRate: 32, blockConfig: [6, 12, 24, 16], numInitFeatures: 64)))
    public static let densenet161 = Architecture(
        name: "densenet161", family: .densenet(DenseNetConfig(growthRate: 48, blockConfig: [6, 12, 36, 24], numInitFeatures: 96)))
    public static let densenet169 = Architecture(
        name: "densenet169", family: .densenet(DenseNetConfig(growthRate: 32, blockConfig: [6, 12, 32, 32], numInitFeatures: 64)))
    public static let densenet201 = Architecture(
        name: "densenet201", family: .densenet(DenseNetConfig(growthRate: 32, blockConfig: [6, 12, 48, 32], numInitFeatures: 64)))

    /// Every built-in architecture: torchvision's, the SE networks and the CIFAR ResNets.
    public static var all: [Architecture] { torchvision + squeezeExcitationNetworks + cifarResNets }

    /// torchvision's classification backbones, in its order.
    public static let torchvision: [Architecture] = [
        .resnet18, .resnet34, .resnet50, .resnet101, .resnet152, .resnext50_32x4d, .resnext101_32x8d, .resnext101_64x4d,
        .wide_resnet50_2, .wide_resnet101_2, .densenet121, .densenet161, .densenet169, .densenet201,
    ]

    /// The built-in architecture called `name` (`resnet50`...), if any.
    public init?(named name: String) {
        guard let a = Architecture.all.first(where: { $0.name == name }) else { return nil }
        self = a
    }
}

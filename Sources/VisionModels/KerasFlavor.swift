import Checkpoint

/// The keras.applications models whose weights this package loads (FORMATS.md §4.3, §4.4), described
/// as flavors of the ResNet and DenseNet graphs.
///
/// - **Keras ResNet50/101/152** (`keras_resnet50`, ...): the original "v1" ResNet — stride on the first
///   1x1 convolution of a bottleneck, a bias on every convolution, batch-norm epsilon 1.001e-5 —
///   and Caffe-style input: BGR, 0-255, minus the ImageNet BGR mean, no scaling.
/// - **Keras 2.2 ResNet50** (`keras_resnet50_caffe`): the same graph under the older Caffe names
///   (`res2a_branch2a`, `bn2a_branch2a`, `fc1000`) with Keras's default epsilon 1e-3 (keras-applications
///   1.0.8 `resnet50.py`, weights release v0.2).
/// - **Keras DenseNet121/169/201** (`keras_densenet121`, ...): torchvision's DenseNet one to one, with
///   epsilon 1.001e-5, and torch-style input (x/255, ImageNet mean/std, RGB).
///
/// Loaded weights are renamed to torchvision's names and laid out as PyTorch does (kernels HWIO →
/// OIHW, Dense `[in, out]` → `[out, in]`), so a converted file loads into the matching PyTorch module.
public struct KerasFlavor: Sendable, Hashable, CustomStringConvertible {
    /// How a Keras file names its layers.
    public enum Naming: String, Sendable, Hashable {
        /// keras.applications since Keras 2.2.5 / keras-applications 1.0.8's `resnet.py`, `densenet.py`:
        /// `conv2_block1_1_conv`, `conv2_block1_1_bn`, `predictions`.
        case applications = "keras-applications"
        /// keras-applications 1.0.8's `resnet50.py` (Keras <= 2.2.4): `res2a_branch2a`, `bn2a_branch2a`, `fc1000`.
        case caffe = "keras-2.2-caffe-names"
    }

    /// The naming the weights use.
    public let naming: Naming
    /// `resnet` or `densenet`.
    public let family: String
    /// The preprocessing the flavor's pretrained weights expect: `caffe-bgr` or `torch`.
    public let preprocessing: String

    /// `keras-applications-resnet`, `keras-2.2-caffe-names-resnet`, `keras-applications-densenet`.
    public var description: String { "\(naming.rawValue)-\(family)" }

    /// What computes differently from torchvision, for reports.
    public var traits: String {
        switch (family, naming) {
        case ("resnet", .caffe):
            return "stride on the first 1x1, conv biases, batch-norm eps 1e-3, Caffe names, BGR 0-255 mean-subtracted input"
        case ("resnet", _): return "stride on the first 1x1, conv biases, batch-norm eps 1.001e-5, BGR 0-255 mean-subtracted input"
        default: return "torchvision's DenseNet with batch-norm eps 1.001e-5, torch-style input"
        }
    }

    /// Batch-norm epsilon of Keras ResNets and DenseNets.
    public static let applicationsEpsilon: Float = 1.001e-5
    /// Keras's default batch-norm epsilon, used by the Keras 2.2 ResNet50.
    public static let kerasDefaultEpsilon: Float = 1e-3

    /// The Keras flavor an architecture has, if any: a ResNet with conv biases and the stride on the
    /// first 1x1 (epsilon 1e-3: Caffe names; else applications names), or a DenseNet with epsilon 1.001e-5.
    public init?(_ architecture: Architecture) {
        switch architecture.family {
        case .resnet(let c):
            guard c.convBias, c.stridePlacement == .firstConv1x1, c.block == .bottleneck, c.squeezeExcitation == nil,
                c.naming == .torchvision, c.stem == .torchvision
            else { return nil }
            naming = c.batchNormEps == Self.kerasDefaultEpsilon ? .caffe : .applications
            family = "resnet"
            preprocessing = "caffe-bgr"
        case .densenet(let c):
            guard c.batchNormEps == Self.applicationsEpsilon else { return nil }
            naming = .applications
            family = "densenet"
            preprocessing = "torch"
        }
    }
}

extension ResNetConfig {
    /// A keras.applications ResNet (v1) configuration: `layers` bottleneck blocks per stage, conv
    /// biases, stride on the first 1x1, epsilon 1.001e-5 (or 1e-3 with `caffeNames`, the Keras 2.2 file).
    public static func keras(layers: [Int], stageWidths: [Int] = [64, 128, 256, 512], numClasses: Int = 1000, caffeNames: Bool = false)
        -> ResNetConfig
    {
        var c = ResNetConfig(block: .bottleneck, layers: layers, stageWidths: stageWidths, numClasses: numClasses)
        c.convBias = true
        c.stridePlacement = .firstConv1x1
        c.batchNormEps = caffeNames ? KerasFlavor.kerasDefaultEpsilon : KerasFlavor.applicationsEpsilon
        return c
    }
}

extension DenseNetConfig {
    /// A keras.applications DenseNet configuration: growth rate 32, 64 initial features, epsilon 1.001e-5.
    public static func keras(blockConfig: [Int], numClasses: Int = 1000) -> DenseNetConfig {
        var c = DenseNetConfig(growthRate: 32, blockConfig: blockConfig, numInitFeatures: 64, numClasses: numClasses)
        c.batchNormEps = KerasFlavor.applicationsEpsilon
        return c
    }
}

extension Architecture {
    public static let keras_resnet50 = Architecture(name: "keras_resnet50", family: .resnet(.keras(layers: [3, 4, 6, 3])))
    public static let keras_resnet101 = Architecture(name: "keras_resnet101", family: .resnet(.keras(layers: [3, 4, 23, 3])))
    public static let keras_resnet152 = Architecture(name: "keras_resnet152", family: .resnet(.keras(layers: [3, 8, 36, 3])))
    public static let keras_resnet50_caffe = Architecture(
        name: "keras_resnet50_caffe", family: .resnet(.keras(layers: [3, 4, 6, 3], caffeNames: true)))
    public static let keras_densenet121 = Architecture(name: "keras_densenet121", family: .densenet(.keras(blockConfig: [6, 12, 24, 16])))
    public static let keras_densenet169 = Architecture(name: "keras_densenet169", family: .densenet(.keras(blockConfig: [6, 12, 32, 32])))
    public static let keras_densenet201 = Architecture(name: "keras_densenet201", family: .densenet(.keras(blockConfig: [6, 12, 48, 32])))

    /// The keras.applications flavors.
    public static let kerasApplications: [Architecture] = [
        .keras_resnet50, .keras_resnet101, .keras_resnet152, .keras_resnet50_caffe, .keras_densenet121, .keras_densenet169,
        .keras_densenet201,
    ]

    /// The built-in architecture called `name`, Keras flavors included.
    public static func named(_ name: String) -> Architecture? {
        Architecture(named: name) ?? kerasApplications.first { $0.name == name }
    }

    /// The preprocessing the reference framework's pretrained weights for this architecture expect:
    /// `caffe-bgr` (Keras ResNets: BGR, 0-255, minus the ImageNet BGR mean [103.939, 116.779, 123.68])
    /// or `torch` (RGB scaled to [0, 1], then ImageNet mean [0.485, 0.456, 0.406] and std [0.229, 0.224, 0.225]);
    /// `cifar10` for the CIFAR ResNets (their training set's own normalisation).
    public var expectedPreprocessing: String {
        if let keras = KerasFlavor(self) { return keras.preprocessing }
        if case .resnet(let c) = family, c.stem == .cifar { return "cifar10" }
        return "torch"
    }

    /// A short name of the weights' flavor for provenance: the Keras flavor, else `WeightFlavor`.
    public var flavorName: String {
        KerasFlavor(self)?.description ?? flavor.description
    }
}

/// The squeeze-and-excitation networks, in both naming families that have published weights
/// (FORMATS.md §3): timm's ResNet-based `seresnet*` / `seresnext*` (torchvision names plus `se.fc1/fc2`,
/// stride on the 3x3, SE width `make_divisible(C/16, 8)`) and Cadene's / timm-legacy `se_resnet*`,
/// `se_resnext*`, `senet154`, `legacy_seresnet18/34` (`layer0` stem with a ceil-mode pool, `se_module`,
/// `last_linear`, stride on the first 1x1 in SE-ResNet bottlenecks).
extension Architecture {
    private static func timmSE(_ name: String, _ block: ResNetConfig.Block, _ layers: [Int], groups: Int = 1, widthPerGroup: Int = 64) -> Architecture {
        var c = ResNetConfig(block: block, layers: layers, groups: groups, widthPerGroup: widthPerGroup)
        c.squeezeExcitation = .init(reduction: 16, divisor: 8)
        return Architecture(name: name, family: .resnet(c))
    }

    private static func cadeneSE(
        _ name: String, _ block: ResNetConfig.Block, _ layers: [Int], groups: Int = 1, widthPerGroup: Int = 64,
        strideOnFirst: Bool, stem: ResNetConfig.Stem = .caffe, downsampleKernel: Int = 1
    ) -> Architecture {
        var c = ResNetConfig(block: block, layers: layers, groups: groups, widthPerGroup: widthPerGroup)
        c.squeezeExcitation = .init(reduction: 16, divisor: nil)
        c.naming = .cadene
        c.headName = "last_linear"
        c.stem = stem
        c.stridePlacement = strideOnFirst ? .firstConv1x1 : .conv3x3
        c.downsampleKernel = downsampleKernel
        return Architecture(name: name, family: .resnet(c))
    }

    public static let seresnet18 = timmSE("seresnet18", .basic, [2, 2, 2, 2])
    public static let seresnet34 = timmSE("seresnet34", .basic, [3, 4, 6, 3])
    public static let seresnet50 = timmSE("seresnet50", .bottleneck, [3, 4, 6, 3])
    public static let seresnet101 = timmSE("seresnet101", .bottleneck, [3, 4, 23, 3])
    public static let seresnet152 = timmSE("seresnet152", .bottleneck, [3, 8, 36, 3])
    public static let seresnext50_32x4d = timmSE("seresnext50_32x4d", .bottleneck, [3, 4, 6, 3], groups: 32, widthPerGroup: 4)
    public static let seresnext101_32x4d = timmSE("seresnext101_32x4d", .bottleneck, [3, 4, 23, 3], groups: 32, widthPerGroup: 4)

    public static let se_resnet50 = cadeneSE("se_resnet50", .bottleneck, [3, 4, 6, 3], strideOnFirst: true)
    public static let se_resnet101 = cadeneSE("se_resnet101", .bottleneck, [3, 4, 23, 3], strideOnFirst: true)
    public static let se_resnet152 = cadeneSE("se_resnet152", .bottleneck, [3, 8, 36, 3], strideOnFirst: true)
    public static let se_resnext50_32x4d = cadeneSE("se_resnext50_32x4d", .bottleneck, [3, 4, 6, 3], groups: 32, widthPerGroup: 4, strideOnFirst: false)
    public static let se_resnext101_32x4d = cadeneSE("se_resnext101_32x4d", .bottleneck, [3, 4, 23, 3], groups: 32, widthPerGroup: 4, strideOnFirst: false)
    public static let senet154 = cadeneSE("senet154", .senetBottleneck, [3, 8, 36, 3], groups: 64, strideOnFirst: false, stem: .deep, downsampleKernel: 3)
    public static let legacy_seresnet18 = cadeneSE("legacy_seresnet18", .basic, [2, 2, 2, 2], strideOnFirst: true)
    public static let legacy_seresnet34 = cadeneSE("legacy_seresnet34", .basic, [3, 4, 6, 3], strideOnFirst: true)

    /// The SE networks of both naming families.
    public static let squeezeExcitationNetworks: [Architecture] = [
        .seresnet18, .seresnet34, .seresnet50, .seresnet101, .seresnet152, .seresnext50_32x4d, .seresnext101_32x4d,
        .se_resnet50, .se_resnet101, .se_resnet152, .se_resnext50_32x4d, .se_resnext101_32x4d, .senet154,
        .legacy_seresnet18, .legacy_seresnet34,
    ]
}

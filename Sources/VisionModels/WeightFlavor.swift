/// Families of checkpoints that can share keys or shapes but compute differently. `Model.load`
/// recognises a checkpoint's flavor from its key names and refuses to load it into an architecture of
/// another flavor unless the caller overrides (`LoadOptions.allowFlavorMismatch`).
public enum WeightFlavor: String, Sendable, Hashable, CustomStringConvertible {
    /// torchvision ResNet / ResNeXt / Wide ResNet: 7x7 stem, padded floor-mode pool, stride on the 3x3.
    case torchvisionResNet = "torchvision-resnet"
    /// torchvision DenseNet.
    case torchvisionDenseNet = "torchvision-densenet"
    /// timm's SE-ResNet / SE-ResNeXt: torchvision layout plus `se.fc1/fc2`.
    case timmSE = "timm-se"
    /// Cadene / timm-legacy SE networks: `layer0`, `se_module`, `last_linear`, ceil-mode stem pool,
    /// stride on the first 1x1 in SE-ResNet bottlenecks.
    case cadeneSE = "cadene-se"
    /// CIFAR ResNet with option A (zero-padded) shortcuts.
    case cifarOptionA = "cifar-option-a"
    /// CIFAR ResNet with option B (projection) shortcuts.
    case cifarOptionB = "cifar-option-b"

    public var description: String { rawValue }

    /// What computes differently in this flavor (for error messages).
    var traits: String {
        switch self {
        case .torchvisionResNet: return "7x7 stem, max pool padding 1 floor mode, stride on the 3x3, no SE"
        case .torchvisionDenseNet: return "dense blocks and transitions"
        case .timmSE: return "torchvision stem (pool padding 1, floor mode), stride on the 3x3, SE as se.fc1/fc2 with width make_divisible(C/16, 8)"
        case .cadeneSE: return "layer0 stem with a ceil-mode pool without padding, stride on the first 1x1 of SE-ResNet bottlenecks, SE as se_module.fc1/fc2 with width C/16, head last_linear"
        case .cifarOptionA: return "3x3 stem without pool, three stages, zero-padded shortcuts, head linear"
        case .cifarOptionB: return "3x3 stem without pool, three stages, 1x1 projection shortcuts, head fc"
        }
    }

    /// The flavor a checkpoint's key names (and its stem's kernel size) show, or nil if none.
    public static func detect(_ entries: [(name: String, shape: [Int])]) -> WeightFlavor? {
        var cadene = false, timmSE = false, dense = false, resnet = false, smallStem = false, linear = false, downsample = false
        for (k, shape) in entries {
            if k == "conv1.weight", shape.count == 4, shape[2] == 3 { smallStem = true }
            if k.hasPrefix("layer0.") || k.contains(".se_module.") || k.hasPrefix("last_linear.") { cadene = true }
            if k.contains(".se.fc1.") || k.contains(".se.fc2.") { timmSE = true }
            if k.hasPrefix("features.denseblock") || k.hasPrefix("features.conv0") { dense = true }
            if k == "conv1.weight" { resnet = true }
            if k.hasPrefix("linear.") { linear = true }
            if k.contains(".downsample.") { downsample = true }
        }
        if cadene { return .cadeneSE }
        if timmSE { return .timmSE }
        if dense { return .torchvisionDenseNet }
        if resnet && smallStem { return linear && !downsample ? .cifarOptionA : .cifarOptionB }
        if resnet { return .torchvisionResNet }
        return nil
    }

    /// The flavor of a state dict's entries.
    public static func detect(_ sd: StateDict) -> WeightFlavor? {
        detect(sd.entries.map { ($0.name, $0.tensor.shape) })
    }
}

extension Architecture {
    /// The flavor of this architecture's weights.
    public var flavor: WeightFlavor {
        switch family {
        case .densenet: return .torchvisionDenseNet
        case .resnet(let c):
            if c.stem == .cifar { return c.shortcut == .zeroPad ? .cifarOptionA : .cifarOptionB }
            if c.naming == .cadene { return .cadeneSE }
            if c.squeezeExcitation != nil { return .timmSE }
            return .torchvisionResNet
        }
    }
}

/// Translates names between the two SE naming families, used only when a caller overrides a flavor
/// mismatch on purpose (the math of the target architecture then applies).
struct SENamingRule: RemapRule {
    let from: WeightFlavor
    let to: WeightFlavor
    var name: String { "\(from) names to \(to) names" }

    func rewrite(_ key: String, _ tensor: TensorData, for architecture: Architecture) throws(ModelError) -> (key: String, tensor: TensorData)? {
        var k = key
        if from == .cadeneSE && to == .timmSE {
            if k.hasPrefix("layer0.") { k.removeFirst("layer0.".count) }
            k = k.replacingOccurrences(of: ".se_module.", with: ".se.")
            if k.hasPrefix("last_linear.") { k = "fc." + k.dropFirst("last_linear.".count) }
        } else if from == .timmSE && to == .cadeneSE {
            if k.hasPrefix("conv1.") || k.hasPrefix("bn1.") { k = "layer0." + k }
            k = k.replacingOccurrences(of: ".se.", with: ".se_module.")
            if k.hasPrefix("fc.") { k = "last_linear." + k.dropFirst("fc.".count) }
        }
        return k == key ? nil : (k, tensor)
    }
}

import Checkpoint
import Foundation

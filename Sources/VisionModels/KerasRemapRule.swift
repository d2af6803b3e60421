import Checkpoint
import Foundation

extension TensorData {
    /// A zero-copy view with its dimensions reordered: dimension `i` of the result is dimension
    /// `axes[i]` of this tensor (`permuted([3, 2, 0, 1])` turns a Keras HWIO kernel into OIHW).
    public func permuted(_ axes: [Int]) throws(CheckpointError) -> TensorData {
        guard axes.count == shape.count, Set(axes) == Set(0..<shape.count) else {
            throw CheckpointError(.malformed, "\(axes) is not a permutation of the \(shape.count) dimensions of \(shape)")
        }
        return try TensorData(
            dtype: dtype, shape: axes.map { shape[$0] }, strides: axes.map { strides[$0] }, storageOffset: storageOffset, storage: storage)
    }
}

/// Keras weights (read from a Keras 2 `.h5` or Keras 3 `.weights.h5` as `<layer>/<variable>` keys)
/// into torchvision's names and PyTorch's layouts, for the architectures of a `KerasFlavor`
/// (FORMATS.md §4, §6): Conv2D kernels HWIO → OIHW and Dense kernels `[in, out]` → `[out, in]` as
/// zero-copy stride permutations; batch norm gamma/beta/moving_mean/moving_variance → weight/bias/
/// running_mean/running_var. Keras 3 files without layer names (`conv2d_7`) are resolved by the
/// layer order keras.applications builds. Recognised Keras names meeting an architecture of another
/// flavor are refused, naming the architecture to use; kernels stored channels-first (Theano `th`
/// ordering) are refused, saying why.
struct KerasRemapRule: RemapRule {
    var name: String { "Keras names and layouts" }

    func rewrite(_ key: String, _ tensor: TensorData, for architecture: Architecture) throws(ModelError) -> (
        key: String, tensor: TensorData
    )? {
        guard let slash = key.lastIndex(of: "/") else { return nil }
        let variable = String(key[key.index(after: slash)...])
        let path = key[..<slash]
        var layer = String(path.split(separator: "/").last ?? "")
        let familyName: String
        switch architecture.family {
        case .resnet: familyName = "resnet"
        case .densenet: familyName = "densenet"
        }
        let flavor = KerasFlavor(architecture)

        if KerasNames.isAutomatic(layer) {
            // A Keras 3 file without layer names: resolve by keras.applications' layer order.
            guard flavor != nil, let real = KerasNames.automaticNames(for: architecture)[layer] else { return nil }
            layer = real
        }
        // Which naming, if any, recognises the layer?
        let namings: [KerasFlavor.Naming] = [.applications, .caffe]
        guard
            let naming = namings.first(where: {
                KerasNames.module(layer, family: familyName, naming: $0, architecture: architecture) != nil
            })
        else {
            return nil
        }
        guard let (module, kind) = KerasNames.module(layer, family: familyName, naming: naming, architecture: architecture),
            let parameter = KerasNames.parameter(variable, layer: layer, kind: kind)
        else { return nil }
        guard let flavor, flavor.naming == naming else {
            throw ModelError(
                .incompatibleWeights,
                "'\(key)' is a Keras \(naming == .caffe ? "2.2 ResNet50 (Caffe names)" : familyName == "resnet" ? "ResNet" : "DenseNet") weight, "
                    + "but \(architecture.name) is not that flavor (\(flavor.map { $0.traits } ?? "torchvision's")); "
                    + "load it into \(KerasNames.suggestion(naming: naming, family: familyName, architecture: architecture)), whose graph computes what Keras computes"
            )
        }

        if kind == .conv, parameter == "weight", tensor.shape.count == 4 {
            let s = tensor.shape
            let hwio = s[0] == s[1] && s[0] <= 11
            let channelsFirst = s[2] == s[3] && s[2] <= 11
            if channelsFirst && !hwio {
                throw ModelError(
                    .incompatibleWeights,
                    "'\(key)' has shape \(s), a channels-first kernel (Keras 1 'th' dim ordering, [out, in, kh, kw]); such files come from "
                        + "Theano, which also flips kernels, and the file does not say whether these were; re-save it from Keras 2 with TensorFlow "
                        + "(keras.utils.convert_all_kernels_in_model) to convert it")
            }
        }
        do throws(CheckpointError) {
            switch (kind, parameter) {
            case (.conv, "weight") where tensor.shape.count == 4:
                return (module + ".weight", try tensor.permuted([3, 2, 0, 1]))
            case (.dense, "weight") where tensor.shape.count == 2:
                return (module + ".weight", try tensor.permuted([1, 0]))
            default:
                return (module + "." + parameter, tensor)
            }
        } catch {
            throw ModelError(error)
        }
    }
}

/// Keras layer names of keras.applications ResNets and DenseNets and their torchvision modules.
enum KerasNames {
    enum Kind { case conv, bn, dense }

    /// `conv2d`, `conv2d_12`, `batch_normalization_3`, `dense`: Keras 3's automatic names.
    static func isAutomatic(_ layer: String) -> Bool {
        for base in ["conv2d", "batch_normalization", "dense"] {
            if layer == base { return true }
            if layer.hasPrefix(base + "_"), let n = Int(layer.dropFirst(base.count + 1)), n > 0 { return true }
        }
        return false
    }

    /// The torchvision module a Keras layer becomes, and its kind; nil if `naming` does not know the layer.
    static func module(_ layer: String, family: String, naming: KerasFlavor.Naming, architecture: Architecture) -> (String, Kind)? {
        let head: String
        if case .resnet(let c) = architecture.family { head = c.headName } else { head = "classifier" }
        switch (family, naming) {
        case ("resnet", .applications):
            switch layer {
            case "conv1_conv": return ("conv1", .conv)
            case "conv1_bn": return ("bn1", .bn)
            case "predictions": return (head, .dense)
            default: break
            }
            // conv{S}_block{B}_{k}_{conv|bn}
            let parts = layer.split(separator: "_")
            guard parts.count == 4, parts[0].hasPrefix("conv"), let stage = Int(parts[0].dropFirst(4)), stage >= 2,
                parts[1].hasPrefix("block"), let block = Int(parts[1].dropFirst(5)), block >= 1,
                let k = Int(parts[2]), (0...3).contains(k), parts[3] == "conv" || parts[3] == "bn"
            else { return nil }
            let p = "layer\(stage - 1).\(block - 1)"
            if parts[3] == "conv" { return (k == 0 ? "\(p).downsample.0" : "\(p).conv\(k)", .conv) }
            return (k == 0 ? "\(p).downsample.1" : "\(p).bn\(k)", .bn)
        case ("resnet", .caffe):
            switch layer {
            case "conv1": return ("conv1", .conv)
            case "bn_conv1": return ("bn1", .bn)
            case "fc1000": return (head, .dense)
            default: break
            }
            // res{S}{L}_branch{2a|2b|2c|1} and bn{S}{L}_branch...
            let isConv = layer.hasPrefix("res")
            guard isConv || layer.hasPrefix("bn") else { return nil }
            let rest = layer.dropFirst(isConv ? 3 : 2)
            guard let underscore = rest.firstIndex(of: "_"), rest[underscore...].hasPrefix("_branch") else { return nil }
            let stageAndBlock = rest[..<underscore]
            let branch = rest[underscore...].dropFirst("_branch".count)
            guard let letterIndex = stageAndBlock.firstIndex(where: { $0.isLetter }), let stage = Int(stageAndBlock[..<letterIndex]),
                stage >= 2
            else {
                return nil
            }
            let blockName = stageAndBlock[letterIndex...]
            let block: Int
            if blockName.count == 1, let a = blockName.first?.asciiValue, a >= UInt8(ascii: "a"), a <= UInt8(ascii: "z") {
                block = Int(a - UInt8(ascii: "a"))
            } else if blockName.hasPrefix("b"), let n = Int(blockName.dropFirst()) {
                block = n  // Caffe's deep ResNets: res4b1 ... res4b22 follow res4a
            } else {
                return nil
            }
            let p = "layer\(stage - 1).\(block)"
            let index: Int
            switch branch {
            case "1": index = 0
            case "2a": index = 1
            case "2b": index = 2
            case "2c": index = 3
            default: return nil
            }
            if isConv { return (index == 0 ? "\(p).downsample.0" : "\(p).conv\(index)", .conv) }
            return (index == 0 ? "\(p).downsample.1" : "\(p).bn\(index)", .bn)
        case ("densenet", .applications):
            switch layer {
            case "conv1_conv": return ("features.conv0", .conv)
            case "conv1_bn": return ("features.norm0", .bn)
            case "bn": return ("features.norm5", .bn)
            case "predictions": return ("classifier", .dense)
            default: break
            }
            let parts = layer.split(separator: "_")
            if parts.count == 2, parts[0].hasPrefix("pool"), let stage = Int(parts[0].dropFirst(4)), stage >= 2 {
                let p = "features.transition\(stage - 1)"
                if parts[1] == "bn" { return ("\(p).norm", .bn) }
                if parts[1] == "conv" { return ("\(p).conv", .conv) }
                return nil
            }
            guard parts.count == 4, parts[0].hasPrefix("conv"), let stage = Int(parts[0].dropFirst(4)), stage >= 2,
                parts[1].hasPrefix("block"), let block = Int(parts[1].dropFirst(5)), block >= 1
            else { return nil }
            let p = "features.denseblock\(stage - 1).denselayer\(block)"
            switch (parts[2], parts[3]) {
            case ("0", "bn"): return ("\(p).norm1", .bn)
            case ("1", "conv"): return ("\(p).conv1", .conv)
            case ("1", "bn"): return ("\(p).norm2", .bn)
            case ("2", "conv"): return ("\(p).conv2", .conv)
            default: return nil
            }
        default:
            return nil
        }
    }

    /// The PyTorch parameter a Keras variable becomes: `kernel` → `weight`, `gamma` → `weight`,
    /// `beta` → `bias`, `moving_mean` → `running_mean`, `moving_variance` → `running_var`. Keras 1
    /// names (`conv1_W`, `conv1_b`, `bn_conv1_running_std`, which held the variance) are accepted.
    static func parameter(_ variable: String, layer: String, kind: Kind) -> String? {
        var v = Substring(variable)
        if v.hasPrefix(layer + "_") { v = v.dropFirst(layer.count + 1) }
        switch (kind, v) {
        case (.conv, "kernel"), (.conv, "W"), (.dense, "kernel"), (.dense, "W"): return "weight"
        case (.conv, "bias"), (.conv, "b"), (.dense, "bias"), (.dense, "b"): return "bias"
        case (.bn, "gamma"): return "weight"
        case (.bn, "beta"): return "bias"
        case (.bn, "moving_mean"), (.bn, "running_mean"): return "running_mean"
        case (.bn, "moving_variance"), (.bn, "running_std"), (.bn, "running_variance"): return "running_var"
        default: return nil
        }
    }

    /// The architecture to load these weights into.
    static func suggestion(naming: KerasFlavor.Naming, family: String, architecture: Architecture) -> String {
        if naming == .caffe { return "keras_resnet50_caffe" }
        let depth: String
        switch architecture.family {
        case .resnet(let c): depth = String(c.layers.reduce(0, +) * 3 + 2)
        case .densenet(let c): depth = String(c.blockConfig.reduce(0, +) * 2 + 5)
        }
        let candidate = "keras_\(family)\(depth)"
        return Architecture.named(candidate) != nil ? candidate : "a keras_\(family)* architecture"
    }

    /// The weighted layers keras.applications creates, in `model.layers` order (which Keras 3 numbers
    /// its automatic names by), as (snake-case class, layer name).
    static func layerOrder(for architecture: Architecture) -> [(layerClass: String, name: String)] {
        var out: [(layerClass: String, name: String)] = [("conv2d", "conv1_conv"), ("batch_normalization", "conv1_bn")]
        switch architecture.family {
        case .resnet(let c):
            for (s, count) in c.layers.enumerated() {
                for b in 0..<count {
                    let p = "conv\(s + 2)_block\(b + 1)"
                    // The functional graph orders the shortcut branch after the main branch's first two units.
                    let units =
                        b == 0
                        ? ["1_conv", "1_bn", "2_conv", "2_bn", "0_conv", "3_conv", "0_bn", "3_bn"]
                        : ["1_conv", "1_bn", "2_conv", "2_bn", "3_conv", "3_bn"]
                    for u in units { out.append((u.hasSuffix("conv") ? "conv2d" : "batch_normalization", "\(p)_\(u)")) }
                }
            }
        case .densenet(let c):
            for (s, count) in c.blockConfig.enumerated() {
                for b in 0..<count {
                    let p = "conv\(s + 2)_block\(b + 1)"
                    out += [
                        ("batch_normalization", "\(p)_0_bn"), ("conv2d", "\(p)_1_conv"), ("batch_normalization", "\(p)_1_bn"),
                        ("conv2d", "\(p)_2_conv"),
                    ]
                }
                if s < c.blockConfig.count - 1 {
                    out += [("batch_normalization", "pool\(s + 2)_bn"), ("conv2d", "pool\(s + 2)_conv")]
                }
            }
            out.append(("batch_normalization", "bn"))
        }
        out.append(("dense", "predictions"))
        return out
    }

    private static let cacheLock = NSLock()
    nonisolated(unsafe) private static var cache: [Architecture: [String: String]] = [:]

    /// Keras 3's automatic layer names (`conv2d`, `conv2d_1`, ...) → keras.applications layer names.
    static func automaticNames(for architecture: Architecture) -> [String: String] {
        cacheLock.lock()
        defer { cacheLock.unlock() }
        if let hit = cache[architecture] { return hit }
        let names = computeAutomaticNames(architecture)
        if cache.count > 64 { cache.removeAll() }
        cache[architecture] = names
        return names
    }

    private static func computeAutomaticNames(_ architecture: Architecture) -> [String: String] {
        var counts: [String: Int] = [:]
        var out: [String: String] = [:]
        for (cls, name) in layerOrder(for: architecture) {
            let n = counts[cls, default: 0]
            counts[cls] = n + 1
            out[n == 0 ? cls : "\(cls)_\(n)"] = name
        }
        return out
    }
}

import Foundation
import VisionModels

/// Finds the architecture `--arch` names: a built-in one (torchvision's, the SE networks, the CIFAR
/// ResNets, the Keras flavors) or one described by `--arch-config`, a JSON file holding one
/// configuration or a map of name → configuration with the fields of
/// `Tests/Fixtures/golden/small/configs.json` (family, block, layers, groups, width_per_group,
/// stem_width, stage_widths, num_classes, growth_rate, block_config, num_init_features, bn_size) plus an
/// optional `flavor` (`torchvision`, `keras`, `keras-caffe`) and `batch_norm_eps`.
enum ConvertArchitecture {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func resolve(_ name: String, configFile: String?) throws(Failure) -> Architecture {
        if let configFile { return try fromConfig(name, file: configFile) }
        if let a = Architecture.named(name) { return a }
        // CIFAR ResNets of any 6n+2 depth: resnet8, resnet20, ..., cifar_resnet20_b.
        if name.hasPrefix("resnet") || (name.hasPrefix("cifar_resnet") && name.hasSuffix("_b")),
            let depth = Int(name.filter(\.isNumber)), let a = Architecture.cifarResNet(depth: depth, optionB: name.hasSuffix("_b"))
        {
            return a
        }
        let known = (Architecture.all + Architecture.kerasApplications).map(\.name).joined(separator: ", ")
        throw Failure(description: "unknown architecture '\(name)'; known: \(known) (or describe one with --arch-config)")
    }

    static func fromConfig(_ name: String, file: String) throws(Failure) -> Architecture {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw Failure(description: "\(file): error: io: cannot read the architecture config")
        }
        guard let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw Failure(description: "\(file): error: malformed: not a JSON object")
        }
        let entry: [String: Any]
        if json["family"] != nil {
            entry = json
        } else if let e = json[name] as? [String: Any] {
            entry = e
        } else {
            throw Failure(
                description: "\(file): error: no configuration named '\(name)' (has: \(json.keys.sorted().joined(separator: ", ")))")
        }
        func int(_ key: String, _ fallback: Int) -> Int { (entry[key] as? Int) ?? fallback }
        func ints(_ key: String) -> [Int]? { entry[key] as? [Int] }
        let flavor = (entry["flavor"] as? String) ?? "torchvision"
        guard ["torchvision", "keras", "keras-caffe"].contains(flavor) else {
            throw Failure(description: "\(file): error: '\(name)': unknown flavor '\(flavor)' (torchvision, keras, keras-caffe)")
        }
        let eps = (entry["batch_norm_eps"] as? Double).map { Float($0) }
        switch entry["family"] as? String {
        case "resnet":
            guard let layers = ints("layers"), !layers.isEmpty else {
                throw Failure(description: "\(file): error: '\(name)': resnet needs 'layers'")
            }
            let block: ResNetConfig.Block = ((entry["block"] as? String) ?? "").lowercased().hasPrefix("basic") ? .basic : .bottleneck
            var c = ResNetConfig(
                block: block, layers: layers, groups: int("groups", 1), widthPerGroup: int("width_per_group", 64),
                stemWidth: int("stem_width", 64),
                stageWidths: ints("stage_widths") ?? [64, 128, 256, 512], numClasses: int("num_classes", 1000))
            guard c.stageWidths.count == layers.count else {
                throw Failure(description: "\(file): error: '\(name)': \(layers.count) stages but \(c.stageWidths.count) stage widths")
            }
            if flavor != "torchvision" {
                c.convBias = true
                c.stridePlacement = .firstConv1x1
                c.batchNormEps = flavor == "keras-caffe" ? KerasFlavor.kerasDefaultEpsilon : KerasFlavor.applicationsEpsilon
            }
            if let eps { c.batchNormEps = eps }
            return Architecture(name: name, family: .resnet(c))
        case "densenet":
            guard let blocks = ints("block_config"), !blocks.isEmpty, let growth = entry["growth_rate"] as? Int,
                let initial = entry["num_init_features"] as? Int
            else { throw Failure(description: "\(file): error: '\(name)': densenet needs growth_rate, block_config, num_init_features") }
            var c = DenseNetConfig(
                growthRate: growth, blockConfig: blocks, numInitFeatures: initial, bnSize: int("bn_size", 4),
                numClasses: int("num_classes", 1000))
            if flavor == "keras" { c.batchNormEps = KerasFlavor.applicationsEpsilon }
            if let eps { c.batchNormEps = eps }
            return Architecture(name: name, family: .densenet(c))
        default:
            throw Failure(description: "\(file): error: '\(name)': family must be 'resnet' or 'densenet'")
        }
    }
}

import Foundation
import NeuralNet
import VisionData

/// One ranked class of a classification.
public struct Prediction: Sendable, Equatable {
    /// Class index.
    public let index: Int
    /// Class name (`class <index>` when the label set is unknown).
    public let label: String
    /// Softmax probability in [0, 1].
    public let probability: Float
}

/// Classification with the preprocessing and labels of the model's registry entry.
extension Model {
    /// The registry entry whose file this model was loaded from (matched by file name, or by the stem
    /// of a converted copy), if any.
    public var registryEntry: WeightEntry? { WeightRegistry.entry(matchingPath: report.source) }

    /// The preprocessing the loaded weights expect: the registry entry's; otherwise torchvision's
    /// ImageNet preset for 1000 classes, or CIFAR-10's `ToTensor` + `Normalize` (after a resize and
    /// crop to 32x32, which leaves CIFAR's own images untouched) for 10 classes.
    public var defaultPreprocessing: Preprocessing {
        if let e = registryEntry { return e.preprocessing }
        if numClasses == 10 {
            // CIFAR-10 models: ToTensor + Normalize; other images are first brought to 32x32 (a no-op
            // on CIFAR's own images).
            var p = Preprocessing.toTensorNormalize(mean: CIFAR10.mean, std: CIFAR10.std)
            p.name = "Resize(32) + CenterCrop(32) + " + p.name
            p.resize = .shorterSide(CIFAR10.side)
            p.crop = .init(width: CIFAR10.side, height: CIFAR10.side)
            return p
        }
        return .imageClassification()
    }

    /// Class names for the outputs: ImageNet's for 1000 classes, CIFAR-10's for 10, else empty.
    public var categoryNames: [String] {
        if let e = registryEntry, e.categories == .imagenet1k { return ImageNet.categories }
        switch numClasses {
        case 1000: return ImageNet.categories
        case 10: return CIFAR10.classNames
        default: return []
        }
    }

    /// The top `k` classes of `image`, preprocessed with `preprocessing` (default: `defaultPreprocessing`).
    public func classify(_ image: RGBImage, topK k: Int = 5, preprocessing: Preprocessing? = nil) throws(ModelError) -> [Prediction] {
        let input: Tensor
        do throws(VisionDataError) {
            input = try (preprocessing ?? defaultPreprocessing).apply(image)
        } catch {
            throw ModelError(.shape, "preprocessing: \(error.message)")
        }
        return try classify(batch: input, topK: k).first ?? []
    }

    /// The top `k` classes of every image of an `[N, 3, H, W]` input.
    public func classify(batch input: Tensor, topK k: Int = 5) throws(ModelError) -> [[Prediction]] {
        let logits = try self(input)
        return Self.topK(logits: logits, k: k, labels: categoryNames)
    }

    /// Softmax (computed in double, max-subtracted) and the `k` largest classes of each row of `[N, C]` logits.
    public static func topK(logits: Tensor, k: Int, labels: [String]) -> [[Prediction]] {
        guard logits.shape.count == 2 else { return [] }
        let n = logits.shape[0], c = logits.shape[1]
        var out: [[Prediction]] = []
        for row in 0..<n {
            let values = logits.data[(row * c)..<((row + 1) * c)]
            let m = values.max() ?? 0
            var exps = values.map { exp(Double($0 - m)) }
            let sum = exps.reduce(0, +)
            if sum > 0 { exps = exps.map { $0 / sum } }
            let order = exps.indices.sorted { exps[$0] > exps[$1] || (exps[$0] == exps[$1] && $0 < $1) }
            out.append(
                order.prefix(max(0, k)).map { i in
                    Prediction(index: i, label: i < labels.count ? labels[i] : "class \(i)", probability: Float(exps[i]))
                })
        }
        return out
    }
}

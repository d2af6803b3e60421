import VisionData

/// One published set of pretrained weights: where it is downloaded from, how it is checked, what it
/// scores and what input it expects. The registry (`WeightRegistry`) lists every entry for the
/// supported architectures, with the facts of the reference framework that publishes it.
public struct WeightEntry: Sendable, Equatable, CustomStringConvertible {
    /// Who publishes the file, which decides its naming and cache.
    public enum Origin: String, Sendable, Equatable, CaseIterable {
        /// torchvision's `*_Weights` enums (download.pytorch.org).
        case torchvision
        /// timm's `pretrained_cfg` URLs (GitHub releases).
        case timm
        /// Cadene's `pretrainedmodels` (data.lip6.fr).
        case cadene
        /// `keras.applications` (`.h5` files, Keras' own cache).
        case keras
    }

    /// Which label set the classifier outputs.
    public enum Categories: String, Sendable, Equatable {
        /// ImageNet-1k, in class-index order (torchvision's names: `ImageNet.categories`).
        case imagenet1k
        /// No classifier in the file (Keras `_notop`).
        case none

        /// The names, or an empty list.
        public var names: [String] { self == .imagenet1k ? ImageNet.categories : [] }
    }

    /// The registry name: `ResNet50_Weights.IMAGENET1K_V2`, `legacy_seresnet50.in1k`,
    /// `cadene.se_resnet50`, `keras.ResNet50`...
    public let name: String
    /// The Swift `Architecture` name the weights load into (`resnet50`, `se_resnet50`, `keras_resnet50`).
    public let architecture: String
    /// The tag, as the publisher spells it: `IMAGENET1K_V1`, `IMAGENET1K_V2`, `in1k`, `imagenet`...
    public let tag: String
    /// Who publishes it.
    public let origin: Origin
    /// Where to download it.
    public let url: String
    /// The integrity rule the publisher's loader applies.
    public let integrity: IntegrityRule
    /// File size in MiB as the publisher states it (torchvision's `_file_size`, Keras' table), if known.
    public let fileMegabytes: Double?
    /// Parameters (torchvision's `num_params`; timm/Keras counted on the reference model).
    public let parameterCount: Int?
    /// Giga multiply-accumulates at the default input size (torchvision's `_ops`; the same measure,
    /// `torch.utils.flop_counter` / 2, for the others).
    public let gflops: Double?
    /// ImageNet-1k validation accuracy in percent, as published.
    public let top1: Double?
    /// ImageNet-1k top-5 accuracy in percent, as published.
    public let top5: Double?
    /// The input the weights expect.
    public let preprocessing: Preprocessing
    /// The classifier's label set.
    public let categories: Categories
    /// Whether this is the architecture's default (torchvision's `DEFAULT`).
    public let isDefault: Bool
    /// Remarks (format of the file, provenance of the numbers).
    public let notes: String

    /// Creates an entry.
    public init(
        name: String, architecture: String, tag: String, origin: Origin, url: String, integrity: IntegrityRule,
        fileMegabytes: Double?, parameterCount: Int?, gflops: Double?, top1: Double?, top5: Double?,
        preprocessing: Preprocessing, categories: Categories = .imagenet1k, isDefault: Bool = false, notes: String = ""
    ) {
        self.name = name
        self.architecture = architecture
        self.tag = tag
        self.origin = origin
        self.url = url
        self.integrity = integrity
        self.fileMegabytes = fileMegabytes
        self.parameterCount = parameterCount
        self.gflops = gflops
        self.top1 = top1
        self.top5 = top5
        self.preprocessing = preprocessing
        self.categories = categories
        self.isDefault = isDefault
        self.notes = notes
    }

    /// The file name: the last path component of the URL (what torch hub and Keras cache it as).
    public var fileName: String {
        String(url.split(separator: "/").last ?? Substring(url))
    }

    /// The file name without its extension (`resnet50-11ad3fa6`), under which a converted copy is looked for.
    public var stem: String {
        guard let dot = fileName.lastIndex(of: ".") else { return fileName }
        return String(fileName[..<dot])
    }

    /// Whether the file includes the classifier.
    public var includesClassifier: Bool { categories != .none }

    /// One line: name, architecture, file and the published numbers.
    public var description: String {
        var s = "\(name) -> \(architecture): \(fileName)"
        if let top1 { s += String(format: ", acc@1 %.3f", top1) }
        if let top5 { s += String(format: " acc@5 %.3f", top5) }
        if let parameterCount { s += ", \(parameterCount) params" }
        if let gflops { s += String(format: ", %.3f GFLOPS", gflops) }
        return s
    }
}

import Foundation

import VisionData

/// Every published weight file for the supported architectures: torchvision's `*_Weights` enums
/// (V1, V2 and the legacy file names), timm's and Cadene's SE-ResNet files, and the
/// `keras.applications` `.h5` files. Facts: `../shared/reference/FORMATS.md` sections 2.4-2.6,
/// 3.2-3.4, 4.3-4.4, and the publishers' code (cited on each group).
public enum WeightRegistry {
    /// All entries, torchvision first, in the publishers' order.
    public static let entries: [WeightEntry] = torchvisionEntries + squeezeExcitationEntries + kerasEntries

    /// The entries that load into `architecture` (a Swift architecture name).
    public static func entries(for architecture: String) -> [WeightEntry] {
        entries.filter { $0.architecture == architecture }
    }

    /// The default entry of `architecture` (torchvision's `DEFAULT`; the only entry otherwise).
    public static func defaultEntry(for architecture: String) -> WeightEntry? {
        let candidates = entries(for: architecture)
        return candidates.first(where: \.isDefault) ?? (candidates.count == 1 ? candidates[0] : nil)
    }

    /// The entry of `architecture` with tag `tag` (case-insensitive: `IMAGENET1K_V2`, `in1k`...).
    public static func entry(for architecture: String, tag: String) -> WeightEntry? {
        entries(for: architecture).first { $0.tag.caseInsensitiveCompare(tag) == .orderedSame }
    }

    /// The entry called `name`: a registry name (`ResNet50_Weights.IMAGENET1K_V2`), a file name
    /// (`resnet50-11ad3fa6.pth`) or a stem (`resnet50-11ad3fa6`). Names match case-insensitively.
    public static func entry(named name: String) -> WeightEntry? {
        entries.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }
            ?? entries.first { $0.fileName == name || $0.stem == name }
    }

    /// Entries whose file is called `fileName` (two Keras ResNet50 files share one name).
    public static func entries(fileName: String) -> [WeightEntry] {
        entries.filter { $0.fileName == fileName }
    }

    /// The entry a checkpoint path most likely came from: its file name, or a converted copy named
    /// after the stem (`weights/resnet50-11ad3fa6.safetensors`).
    public static func entry(matchingPath path: String) -> WeightEntry? {
        let base = String(path.split(separator: "/").last ?? Substring(path))
        if let e = entries.first(where: { $0.fileName == base }) { return e }
        let stem = base.split(separator: ".").first.map(String.init) ?? base
        return entries.first { $0.stem == stem }
    }
}

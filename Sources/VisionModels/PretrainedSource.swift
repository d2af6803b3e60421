import Checkpoint
import Foundation

/// Where a model's weights come from: a file, a state dict in memory, or a registry entry that is
/// found on disk (or downloaded, when allowed) by a `WeightResolver`.
///
/// ```swift
/// let model = try Model.load(.resnet50, pretrained: .imagenet1kV2)        // torchvision's weights
/// let model = try Model.load(.resnet50, pretrained: .default)             // ResNet50_Weights.DEFAULT
/// let model = try Model.load(.resnet50, pretrained: .imagenet1kV1.using(WeightResolver(allowDownload: true)))
/// ```
public indirect enum PretrainedSource: Sendable {
    /// A checkpoint file in any format the Checkpoint module reads (an explicit path: no lookup, no hash check).
    case file(URL)
    /// A state dict already in memory.
    case stateDict(StateDict)
    /// torchvision's `IMAGENET1K_V1` weights of the architecture.
    case imagenet1kV1
    /// torchvision's `IMAGENET1K_V2` weights of the architecture.
    case imagenet1kV2
    /// The architecture's default weights (torchvision's `DEFAULT`; for the others, their only entry).
    case `default`
    /// A registry entry by name (`ResNet50_Weights.IMAGENET1K_V2`, `legacy_seresnet50.in1k`,
    /// `keras.ResNet50`), by tag of the architecture (`IMAGENET1K_V2`, `in1k`), or by file name.
    case named(String)
    /// A registry entry.
    case entry(WeightEntry)
    /// Any of the above, resolved with the given resolver instead of the default one.
    case resolving(PretrainedSource, with: WeightResolver)

    /// This source, resolved with `resolver` (its folders, caches and download permission).
    public func using(_ resolver: WeightResolver) -> PretrainedSource {
        if case .resolving(let inner, _) = self { return .resolving(inner, with: resolver) }
        return .resolving(self, with: resolver)
    }

    /// The registry entry this source names for `architecture`; nil for files and state dicts.
    public func registryEntry(for architecture: Architecture) throws(ModelError) -> WeightEntry? {
        let arch = architecture.name
        func available() -> String {
            let tags = WeightRegistry.entries(for: arch).map(\.tag)
            return tags.isEmpty ? "the registry has no weights for \(arch)" : "available for \(arch): \(tags.joined(separator: ", "))"
        }
        switch self {
        case .file, .stateDict:
            return nil
        case .resolving(let inner, _):
            return try inner.registryEntry(for: architecture)
        case .imagenet1kV1, .imagenet1kV2:
            let tag = { if case .imagenet1kV1 = self { return "IMAGENET1K_V1" } else { return "IMAGENET1K_V2" } }()
            guard let e = WeightRegistry.entry(for: arch, tag: tag) else {
                throw ModelError(.invalidConfiguration, "\(arch) has no \(tag) weights; \(available())")
            }
            return e
        case .default:
            guard let e = WeightRegistry.defaultEntry(for: arch) else {
                throw ModelError(.invalidConfiguration, "\(arch) has no default weights; \(available())")
            }
            return e
        case .named(let name):
            guard let e = WeightRegistry.entry(for: arch, tag: name) ?? WeightRegistry.entry(named: name) else {
                throw ModelError(.invalidConfiguration, "no registry entry called '\(name)'; \(available())")
            }
            guard e.architecture == arch else {
                throw ModelError(.invalidConfiguration, "\(e.name) holds weights for \(e.architecture), not \(arch)")
            }
            return e
        case .entry(let e):
            guard e.architecture == arch else {
                throw ModelError(.invalidConfiguration, "\(e.name) holds weights for \(e.architecture), not \(arch)")
            }
            return e
        }
    }

    /// The file this source resolves to (nil for a state dict), without reading it.
    public func resolve(for architecture: Architecture) throws(ModelError) -> WeightResolver.Resolution? {
        var resolver = WeightResolver()
        var source = self
        if case .resolving(let inner, let r) = self {
            resolver = r
            source = inner
        }
        switch source {
        case .file, .stateDict: return nil
        default:
            guard let entry = try source.registryEntry(for: architecture) else { return nil }
            return try resolver.resolve(entry)
        }
    }

    /// Reads the state dict this source names, for `architecture`.
    func stateDict(for architecture: Architecture, options: LoadOptions) throws(ModelError) -> StateDict {
        switch self {
        case .file(let url):
            return try Self.read(url.path, options)
        case .stateDict(let s):
            return s
        case .resolving(let inner, _):
            if case .file = inner { return try inner.stateDict(for: architecture, options: options) }
            if case .stateDict = inner { return try inner.stateDict(for: architecture, options: options) }
            fallthrough
        default:
            guard let resolution = try resolve(for: architecture) else {
                throw ModelError(.invalidConfiguration, "nothing to load for \(architecture.name)")
            }
            return try Self.read(resolution.path, options)
        }
    }

    private static func read(_ path: String, _ options: LoadOptions) throws(ModelError) -> StateDict {
        do throws(CheckpointError) {
            return try CheckpointReader.read(path, options: options.readOptions)
        } catch {
            throw ModelError(error)
        }
    }
}

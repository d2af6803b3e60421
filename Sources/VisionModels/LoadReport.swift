/// What happened when a checkpoint's tensors were matched to an architecture's parameters: the strict
/// report that `Model.load` returns (and throws, when the weights do not fit).
public struct LoadReport: Sendable, CustomStringConvertible {
    /// A key present on both sides whose shapes differ.
    public struct ShapeMismatch: Sendable, Equatable {
        public let key: String
        public let expected: [Int]
        public let found: [Int]
    }

    /// A key the loader rewrote, e.g. a legacy DenseNet `norm.1.weight` to `norm1.weight`.
    public struct Rename: Sendable, Equatable {
        public let from: String
        public let to: String
    }

    /// The architecture loaded into.
    public var architecture: String
    /// The checkpoint (file path or `<memory>`).
    public var source: String
    /// Number of classes used, and whether it came from the checkpoint's classifier.
    public var numClasses: Int
    public var numClassesInferred: Bool
    /// Keys found with the expected shape.
    public var matched: Int = 0
    /// Required keys the checkpoint lacks.
    public var missing: [String] = []
    /// Keys in the checkpoint that the architecture does not have.
    public var unexpected: [String] = []
    /// Keys whose shapes differ.
    public var shapeMismatches: [ShapeMismatch] = []
    /// Keys rewritten by remapping rules.
    public var renamed: [Rename] = []
    /// Optional keys absent from the checkpoint, filled with their default (`num_batches_tracked`).
    public var defaulted: [String] = []
    /// For a missing key, the closest unexpected key (did you mean?).
    public var suggestions: [String: String] = [:]
    /// The flavor the checkpoint's key names show, if recognised.
    public var detectedFlavor: WeightFlavor?
    /// Where the tensors were found in the file (the reader's nesting path and stripped prefixes).
    public var nestingPath: [String] = []
    public var strippedPrefixes: [String] = []

    /// True when every required key is present with its shape and nothing is left over.
    public var isCompatible: Bool { missing.isEmpty && unexpected.isEmpty && shapeMismatches.isEmpty }

    public var description: String {
        var lines = ["load report: \(source) -> \(architecture) (\(numClasses) classes\(numClassesInferred ? ", from the checkpoint" : ""))"]
        lines.append("  matched: \(matched)")
        if let detectedFlavor { lines.append("  flavor: \(detectedFlavor)") }
        if !nestingPath.isEmpty { lines.append("  nesting path: \(nestingPath.joined(separator: "."))") }
        if !strippedPrefixes.isEmpty { lines.append("  stripped prefixes: \(strippedPrefixes.joined(separator: ", "))") }
        if !renamed.isEmpty {
            lines.append("  renamed: \(renamed.count) (e.g. \(renamed[0].from) -> \(renamed[0].to))")
        }
        if !defaulted.isEmpty { lines.append("  defaulted: \(defaulted.count) optional keys (num_batches_tracked)") }
        for m in shapeMismatches.prefix(20) {
            lines.append("  shape mismatch: \(m.key): expected \(m.expected), found \(m.found)")
        }
        for k in missing.prefix(20) {
            lines.append("  missing: \(k)" + (suggestions[k].map { " (did you mean '\($0)'?)" } ?? ""))
        }
        if missing.count > 20 { lines.append("  ... and \(missing.count - 20) more missing") }
        for k in unexpected.prefix(20) { lines.append("  unexpected: \(k)") }
        if unexpected.count > 20 { lines.append("  ... and \(unexpected.count - 20) more unexpected") }
        return lines.joined(separator: "\n")
    }
}

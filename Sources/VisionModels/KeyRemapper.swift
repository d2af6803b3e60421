import Checkpoint

/// One rewrite of checkpoint entries into an architecture's names (and, where a source layout
/// differs, its tensor layouts). Rules are tried in `KeyRemapper.rules` order; each sees the output of
/// the previous one.
protocol RemapRule: Sendable {
    /// A short name for reports.
    var name: String { get }
    /// Rewrites one entry; nil leaves it as it is.
    func rewrite(_ key: String, _ tensor: TensorData, for architecture: Architecture) throws(ModelError) -> (key: String, tensor: TensorData)?
}

/// torchvision's legacy DenseNet rule (see `KeyRemapper.legacyDenseNet`).
struct LegacyDenseNetRule: RemapRule {
    var name: String { "legacy DenseNet names" }
    func rewrite(_ key: String, _ tensor: TensorData, for architecture: Architecture) throws(ModelError) -> (key: String, tensor: TensorData)? {
        guard case .densenet = architecture.family, let fixed = KeyRemapper.legacyDenseNet(key) else { return nil }
        return (fixed, tensor)
    }
}

/// Rewrites checkpoint keys into the names an architecture uses.
enum KeyRemapper {
    /// The rules, in the order they apply.
    static let rules: [any RemapRule] = [LegacyDenseNetRule(), KerasRemapRule()]

    /// Applies every rule to every entry; returns the entries in file order and what was renamed.
    static func remap(_ entries: [(name: String, tensor: TensorData)], for architecture: Architecture) throws(ModelError)
        -> (entries: [(name: String, tensor: TensorData)], renamed: [LoadReport.Rename])
    {
        var out: [(name: String, tensor: TensorData)] = []
        out.reserveCapacity(entries.count)
        var renamed: [LoadReport.Rename] = []
        for (original, t) in entries {
            var key = original
            var tensor = t
            for rule in rules {
                if let r = try rule.rewrite(key, tensor, for: architecture) {
                    key = r.key
                    tensor = r.tensor
                }
            }
            if key != original { renamed.append(LoadReport.Rename(from: original, to: key)) }
            out.append((key, tensor))
        }
        return (out, renamed)
    }

    /// torchvision's legacy DenseNet rule: `...denselayerN.norm.1.weight` → `...denselayerN.norm1.weight`
    /// (also `relu`/`conv`, `1`/`2`, and `bias`, `running_mean`, `running_var`), as its own loader does
    /// for the released DenseNet files that predate dots being illegal in module names.
    static func legacyDenseNet(_ key: String) -> String? {
        var parts = key.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 4 else { return nil }
        let n = parts.count
        guard ["weight", "bias", "running_mean", "running_var"].contains(parts[n - 1]),
            parts[n - 2] == "1" || parts[n - 2] == "2",
            ["norm", "relu", "conv"].contains(parts[n - 3]),
            parts[n - 4].hasPrefix("denselayer"), parts[n - 4].dropFirst("denselayer".count).allSatisfy(\.isNumber),
            parts[n - 4].count > "denselayer".count
        else { return nil }
        parts[n - 3] += parts[n - 2]
        parts.remove(at: n - 2)
        return parts.joined(separator: ".")
    }

    /// Edit distance between two keys (for did-you-mean), bounded: returns nil above `limit`.
    static func distance(_ a: String, _ b: String, limit: Int) -> Int? {
        let x = Array(a.utf8), y = Array(b.utf8)
        if abs(x.count - y.count) > limit { return nil }
        var previous = Array(0...y.count)
        var current = [Int](repeating: 0, count: y.count + 1)
        for i in 1...max(x.count, 1) where !x.isEmpty {
            current[0] = i
            var rowMin = current[0]
            for j in 1...max(y.count, 1) where !y.isEmpty {
                let cost = x[i - 1] == y[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
                rowMin = min(rowMin, current[j])
            }
            if rowMin > limit { return nil }
            swap(&previous, &current)
        }
        let d = x.isEmpty ? y.count : previous[y.count]
        return d <= limit ? d : nil
    }
}

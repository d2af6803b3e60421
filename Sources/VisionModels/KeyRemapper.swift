/// Rewrites checkpoint keys into the names an architecture uses.
enum KeyRemapper {
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

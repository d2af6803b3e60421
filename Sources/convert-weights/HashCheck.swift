import Checkpoint

/// A file's SHA-256 and, when its name follows torch hub's `<stem>-<hex>.<ext>` convention,
/// whether the digest starts with that hex.
struct HashCheck: Sendable, Equatable {
    /// Lower-case hex digest of the whole file.
    var digest: String
    /// The hex prefix the file name carries, if any (torch hub's `-([a-f0-9]*)\.` on the base name).
    var namePrefix: String?

    /// Whether `digest` starts with `namePrefix`; nil when the name carries no prefix.
    var matches: Bool? {
        guard let namePrefix else { return nil }
        return digest.hasPrefix(namePrefix)
    }

    /// Hashes the file at `path`.
    init(path: String) throws(CheckpointError) {
        digest = try SHA256.hashFile(path: path)
        namePrefix = HashCheck.torchHubPrefix(fileName: path)
    }

    init(digest: String, namePrefix: String?) {
        self.digest = digest
        self.namePrefix = namePrefix
    }

    /// The hash prefix torch hub reads from a file name: the first match of `-([a-f0-9]*)\.` in the
    /// base name (`resnet50-0676ba61.pth` → `0676ba61`). Nil when nothing matches or the match is
    /// empty (torch then has nothing to check either).
    static func torchHubPrefix(fileName path: String) -> String? {
        let base = Array((path.split(separator: "/", omittingEmptySubsequences: false).last ?? "").utf8)
        func isHex(_ c: UInt8) -> Bool {
            (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "f"))
        }
        for start in base.indices where base[start] == UInt8(ascii: "-") {
            var end = start + 1
            while end < base.count, isHex(base[end]) { end += 1 }
            // '.' is not in the class, so the greedy run has to be followed by it directly.
            if end < base.count, base[end] == UInt8(ascii: ".") {
                return end > start + 1 ? String(decoding: base[(start + 1)..<end], as: UTF8.self) : nil
            }
        }
        return nil
    }
}

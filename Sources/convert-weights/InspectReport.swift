import Checkpoint
import Foundation

/// What `inspect` shows about a checkpoint, ready to print as text or JSON.
///
/// Only presentation lives here: every fact comes from the `StateDict` the library produced.
struct InspectReport: Encodable {
    /// One row of the tensor table.
    struct Tensor: Encodable, Equatable {
        var name: String
        var dtype: String
        var shape: [Int]
        var strides: [Int]
        var storageOffset: Int
        var storageKey: String
        var elements: Int
        var bytes: Int
        var contiguous: Bool
    }

    /// Totals over all tensors, including any not shown because of `--limit`.
    struct Totals: Encodable, Equatable {
        var tensors: Int
        var parameters: Int
        var bytes: Int
        var human: String
    }

    /// One non-tensor value found beside the state dict.
    struct Extra: Encodable, Equatable {
        var name: String
        var value: String
    }

    /// The SHA-256 section, present with `--sha256`.
    struct Hash: Encodable, Equatable {
        var sha256: String
        var namePrefix: String?
        var nameMatches: Bool?
    }

    var file: String
    var format: String
    var formatVersion: [String: String]
    var byteOrder: String
    var archivePrefix: String?
    var nestingPath: [String]
    var strippedPrefixes: [String]
    var notes: [String]
    var tensors: [Tensor]
    /// Tensors left out of `tensors` because of `--limit`.
    var omittedTensors: Int
    var totals: Totals
    var extras: [Extra]
    var sha: Hash?

    enum CodingKeys: String, CodingKey {
        case file, format, formatVersion, byteOrder, archivePrefix, nestingPath, strippedPrefixes, notes
        case tensors, omittedTensors, totals, extras
        case sha = "hash"
    }

    /// Builds the report; `limit` caps the listed tensors (totals always cover all of them).
    init(_ stateDict: StateDict, limit: Int? = nil) {
        let p = stateDict.provenance
        file = p.file
        format = p.format.rawValue
        formatVersion = p.formatVersion
        byteOrder = p.byteOrder.rawValue
        archivePrefix = p.archivePrefix
        nestingPath = p.nestingPath
        strippedPrefixes = p.strippedPrefixes
        notes = p.notes
        let shown = limit.map { min($0, stateDict.count) } ?? stateDict.count
        tensors = stateDict.entries.prefix(shown).map { entry in
            let t = entry.tensor
            return Tensor(
                name: entry.name, dtype: t.dtype.name, shape: t.shape, strides: t.strides,
                storageOffset: t.storageOffset, storageKey: t.storage.key,
                elements: t.elementCount, bytes: t.byteCount, contiguous: t.isContiguous)
        }
        omittedTensors = stateDict.count - shown
        totals = Totals(
            tensors: stateDict.count, parameters: stateDict.parameterCount, bytes: stateDict.byteCount,
            human: Self.humanBytes(stateDict.byteCount))
        extras = stateDict.extras.map { Extra(name: $0.name, value: $0.value.render()) }
    }

    /// Adds the SHA-256 section.
    var hash: HashCheck? {
        get { sha.map { HashCheck(digest: $0.sha256, namePrefix: $0.namePrefix) } }
        set { sha = newValue.map { Hash(sha256: $0.digest, namePrefix: $0.namePrefix, nameMatches: $0.matches) } }
    }

    // MARK: Text

    /// The human-readable report: a header of provenance fields, the tensor table, totals, extras.
    func text() -> String {
        var out = ""
        var header: [(String, String)] = [
            ("file", file),
            ("format", format),
        ]
        let versions = formatVersion.sorted { $0.key < $1.key }.map { "\($0.key) = \($0.value)" }
        header.append(("format version", versions.isEmpty ? "-" : versions.joined(separator: ", ")))
        header.append(("byte order", byteOrder))
        header.append(("archive prefix", archivePrefix ?? "-"))
        header.append(("nesting path", nestingPath.isEmpty ? "<root>" : nestingPath.joined(separator: ".")))
        header.append(("stripped prefixes", strippedPrefixes.isEmpty ? "-" : strippedPrefixes.joined(separator: ", ")))
        if let sha {
            header.append(("sha256", sha.sha256))
            if let prefix = sha.namePrefix {
                header.append(("name hash prefix", "\(prefix) (\(sha.nameMatches == true ? "matches" : "DOES NOT MATCH"))"))
            }
        }
        let labelWidth = header.map(\.0.count).max() ?? 0
        for (label, value) in header {
            out += Self.pad(label + ":", labelWidth + 1) + " " + value + "\n"
        }
        for note in notes {
            out += Self.pad("note:", labelWidth + 1) + " " + note + "\n"
        }

        out += "\n"
        if totals.tensors == 0 {
            out += "(no tensors)\n"
        } else {
            var table = TextTable(columns: [
                .init("name"), .init("dtype"), .init("shape"),
                .init("elements", alignRight: true), .init("bytes", alignRight: true), .init("layout"),
            ])
            for t in tensors {
                table.append([
                    t.name, t.dtype, Self.shapeText(t.shape), String(t.elements), String(t.bytes),
                    t.contiguous ? "contiguous" : "strided",
                ])
            }
            out += table.render()
            if omittedTensors > 0 {
                out += "... \(omittedTensors) more tensor\(omittedTensors == 1 ? "" : "s") not shown (--limit)\n"
            }
        }

        out += "\n"
        out += "totals: \(Self.grouped(totals.tensors)) tensor\(totals.tensors == 1 ? "" : "s"), "
        out += "\(Self.grouped(totals.parameters)) parameters, \(Self.grouped(totals.bytes)) bytes (\(totals.human))\n"

        if !extras.isEmpty {
            out += "\nextras:\n"
            for extra in extras {
                out += "  \(extra.name) = \(extra.value)\n"
            }
        }
        return out
    }

    // MARK: JSON

    /// The report as one JSON object with sorted keys.
    func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        do {
            return String(decoding: try encoder.encode(self), as: UTF8.self)
        } catch {
            // Every field is a string, number, bool or array of them: encoding cannot fail.
            return "{}"
        }
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(file, forKey: .file)
        try c.encode(format, forKey: .format)
        try c.encode(formatVersion, forKey: .formatVersion)
        try c.encode(byteOrder, forKey: .byteOrder)
        try c.encode(archivePrefix, forKey: .archivePrefix)  // null when absent
        try c.encode(nestingPath, forKey: .nestingPath)
        try c.encode(strippedPrefixes, forKey: .strippedPrefixes)
        try c.encode(notes, forKey: .notes)
        try c.encode(tensors, forKey: .tensors)
        try c.encode(omittedTensors, forKey: .omittedTensors)
        try c.encode(totals, forKey: .totals)
        try c.encode(extras, forKey: .extras)
        try c.encodeIfPresent(sha, forKey: .sha)
    }

    // MARK: Formatting helpers

    /// `[64, 3, 7, 7]`; `[]` for a 0-d scalar.
    static func shapeText(_ shape: [Int]) -> String {
        "[" + shape.map(String.init).joined(separator: ", ") + "]"
    }

    /// `25557032` → `25,557,032`.
    static func grouped(_ n: Int) -> String {
        let digits = Array(String(n.magnitude))
        var out = ""
        for (i, d) in digits.enumerated() {
            if i > 0, (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(d)
        }
        return n < 0 ? "-" + out : out
    }

    /// Bytes in binary units with one decimal: `102228128` → `97.5 MiB`.
    static func humanBytes(_ n: Int) -> String {
        let units = ["KiB", "MiB", "GiB", "TiB"]
        if n < 1024 { return "\(n) B" }
        var value = Double(n) / 1024
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return String(format: "%.1f %@", value, units[unit])
    }

    static func pad(_ s: String, _ width: Int) -> String {
        s.count >= width ? s : s + String(repeating: " ", count: width - s.count)
    }
}

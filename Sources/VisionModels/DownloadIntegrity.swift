import Checkpoint
import Foundation

/// How a weight file is checked after download (and when found in a cache).
public enum IntegrityRule: Sendable, Equatable, CustomStringConvertible {
    /// The file's SHA-256 hex digest must start with this prefix: torch hub's rule for file names
    /// `<stem>-<hex>.pth` (`HASH_REGEX = -([a-f0-9]*)\.`, `check_hash=True`, which torchvision passes).
    case sha256Prefix(String)
    /// The file's MD5 hex digest must equal this: Keras' `get_file(..., file_hash=...)` for the
    /// applications' `.h5` files.
    case md5(String)
    /// No check is published for the file.
    case none

    /// torch hub's rule for a file name: the hex after the last `-` and before the first `.` that
    /// follows it, if the name has one.
    public static func fromTorchHubFileName(_ name: String) -> IntegrityRule {
        guard let dash = name.lastIndex(of: "-") else { return .none }
        let rest = name[name.index(after: dash)...]
        guard let dot = rest.firstIndex(of: ".") else { return .none }
        let hex = rest[..<dot]
        guard !hex.isEmpty, hex.allSatisfy({ ("0"..."9").contains($0) || ("a"..."f").contains($0) }) else { return .none }
        return .sha256Prefix(String(hex))
    }

    /// The rule in words, e.g. `SHA-256 starts with 11ad3fa6`.
    public var description: String {
        switch self {
        case .sha256Prefix(let p): return "SHA-256 starts with \(p)"
        case .md5(let m): return "MD5 = \(m)"
        case .none: return "no published hash"
        }
    }

    /// The digests this rule needs.
    var needs: (sha256: Bool, md5: Bool) {
        switch self {
        case .sha256Prefix: return (true, false)
        case .md5: return (false, true)
        case .none: return (false, false)
        }
    }

    /// Whether the digests of a file satisfy the rule (a digest the rule does not use may be empty).
    public func accepts(sha256: String, md5: String) -> Bool {
        switch self {
        case .sha256Prefix(let p): return sha256.hasPrefix(p.lowercased())
        case .md5(let m): return md5 == m.lowercased()
        case .none: return true
        }
    }

    /// Hashes the file at `path` (streaming, bounded memory) and checks it; throws an `.integrity`
    /// error naming the file, the rule and the digest found.
    public func verify(file path: String) throws(CheckpointError) {
        if case .none = self { return }
        let digests = try FileDigests.compute(path: path, sha256: needs.sha256, md5: needs.md5)
        guard accepts(sha256: digests.sha256, md5: digests.md5) else {
            let found: String
            switch self {
            case .md5: found = "MD5 \(digests.md5)"
            default: found = "SHA-256 \(digests.sha256)"
            }
            throw CheckpointError(.integrity, "expected \(description), found \(found)", file: path)
        }
    }
}

/// SHA-256 and/or MD5 of a file or a stream, computed together in one pass.
public struct FileDigests: Sendable {
    private var sha: SHA256?
    private var md: MD5?

    /// Starts empty digests; only the selected ones are computed (the others finalize to "").
    public init(sha256: Bool = true, md5: Bool = true) {
        sha = sha256 ? SHA256() : nil
        md = md5 ? MD5() : nil
    }

    /// Adds bytes.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        sha?.update(bytes)
        md?.update(bytes)
    }

    /// The hex digests ("" for one not computed).
    public mutating func finalize() -> (sha256: String, md5: String) {
        let s =
            sha.map { v in
                var v = v; return SHA256.hex(v.finalize())
            } ?? ""
        let m =
            md.map { v in
                var v = v; return MD5.hex(v.finalize())
            } ?? ""
        return (s, m)
    }

    /// The selected digests of the file at `path`.
    public static func compute(path: String, sha256: Bool = true, md5: Bool = true) throws(CheckpointError) -> (sha256: String, md5: String)
    {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw CheckpointError(.io, "cannot open the file", file: path)
        }
        defer { try? handle.close() }
        var d = FileDigests(sha256: sha256, md5: md5)
        while true {
            let chunk: Data
            do {
                guard let c = try handle.read(upToCount: 1 << 20) else { break }
                chunk = c
            } catch {
                throw CheckpointError(.io, "read failed: \(error.localizedDescription)", file: path)
            }
            if chunk.isEmpty { break }
            chunk.withUnsafeBytes { d.update($0) }
        }
        return d.finalize()
    }
}

/// MD5 (RFC 1321), only for checking the published Keras file hashes. Not for security.
public struct MD5: Sendable {
    private var state: (UInt32, UInt32, UInt32, UInt32) = (0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476)
    private var buffer = [UInt8](repeating: 0, count: 64)
    private var buffered = 0
    private var length: UInt64 = 0

    private static let shifts: [UInt32] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
        5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
        4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
        6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ]
    /// floor(abs(sin(i + 1)) * 2^32).
    private static let constants: [UInt32] = (0..<64).map { UInt32(truncatingIfNeeded: Int64(abs(sin(Double($0 + 1))) * 4_294_967_296)) }

    /// Starts an empty digest.
    public init() {}

    /// Adds bytes.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        length &+= UInt64(bytes.count)
        var i = 0
        let n = bytes.count
        if buffered > 0 {
            while buffered < 64 && i < n {
                buffer[buffered] = bytes[i]
                buffered += 1
                i += 1
            }
            if buffered == 64 {
                let block = buffer
                block.withUnsafeBytes { compress($0, 0) }
                buffered = 0
            }
        }
        while n - i >= 64 {
            compress(bytes, i)
            i += 64
        }
        while i < n {
            buffer[buffered] = bytes[i]
            buffered += 1
            i += 1
        }
    }

    /// Adds bytes.
    public mutating func update(_ bytes: some Sequence<UInt8>) {
        let array = Array(bytes)
        array.withUnsafeBytes { update($0) }
    }

    /// The 16-byte digest.
    public mutating func finalize() -> [UInt8] {
        let bits = length &* 8
        var pad: [UInt8] = [0x80]
        let used = (buffered + 1) % 64
        pad += [UInt8](repeating: 0, count: used <= 56 ? 56 - used : 120 - used)
        for k in 0..<8 { pad.append(UInt8(truncatingIfNeeded: bits >> (8 * UInt64(k)))) }
        let saved = length
        update(pad)
        length = saved
        var out: [UInt8] = []
        for word in [state.0, state.1, state.2, state.3] {
            for k in 0..<4 { out.append(UInt8(truncatingIfNeeded: word >> (8 * UInt32(k)))) }
        }
        return out
    }

    /// The digest of `bytes`.
    public static func hash(_ bytes: some Sequence<UInt8>) -> [UInt8] {
        var m = MD5()
        m.update(bytes)
        return m.finalize()
    }

    /// Lower-case hex.
    public static func hex(_ digest: [UInt8]) -> String { digest.map { String(format: "%02x", $0) }.joined() }

    private mutating func compress(_ bytes: UnsafeRawBufferPointer, _ offset: Int) {
        // Sixteen little-endian words of the block, read without allocating.
        var m:
            (
                UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32,
                UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32
            ) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &m) { words in
            words.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + 64)]))
        }
        var (a, b, c, d) = state
        withUnsafeBytes(of: &m) { raw in
            let w = raw.bindMemory(to: UInt32.self)
            Self.constants.withUnsafeBufferPointer { k in
                Self.shifts.withUnsafeBufferPointer { r in
                    for i in 0..<64 {
                        var f: UInt32
                        let g: Int
                        switch i >> 4 {
                        case 0: f = (b & c) | (~b & d); g = i
                        case 1: f = (d & b) | (~d & c); g = (5 &* i &+ 1) & 15
                        case 2: f = b ^ c ^ d; g = (3 &* i &+ 5) & 15
                        default: f = c ^ (b | ~d); g = (7 &* i) & 15
                        }
                        f = f &+ a &+ k[i] &+ UInt32(littleEndian: w[g])
                        a = d
                        d = c
                        c = b
                        b = b &+ ((f << r[i]) | (f >> (32 &- r[i])))
                    }
                }
            }
        }
        state = (state.0 &+ a, state.1 &+ b, state.2 &+ c, state.3 &+ d)
    }
}

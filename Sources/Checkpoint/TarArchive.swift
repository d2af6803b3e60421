/// One regular file in a tar archive.
struct TarEntry: Sendable {
    /// The member's name, after applying a PAX `path`, a GNU long name or a ustar prefix.
    let name: String
    /// The member's data: a zero-copy window into the archive.
    let data: ByteSlice
    /// Offset of the member's (last) header block in the archive.
    let headerOffset: Int

    /// Whether extracting this member by its name could write outside a target folder
    /// (see `ZipEntry.hasUnsafeName`).
    var hasUnsafeName: Bool { ZipEntry.isUnsafeName(name) }
}

/// A read-only view of a tar archive held in memory: POSIX ustar, GNU and PAX headers, as written by
/// Python's `tarfile` (PyTorch's legacy tar checkpoints were written with `format=tarfile.PAX_FORMAT`).
///
/// Reads 512-byte headers, verifies each header checksum, decodes octal or GNU base-256 sizes, applies
/// PAX extended headers (`x`: the `path` and `size` keys) and GNU long names (`L`) to the header that
/// follows, keeps regular files (`0`, NUL, `7`) and skips everything else. Reading stops at the first
/// all-zero block (the end-of-archive marker is two; like Python's tarfile, one suffices) or at the end
/// of the data. Member names follow Python's
/// `tarfile`: a type-NUL member whose name ends in `/` is a directory, and `member(named:)` returns the
/// last member of that name.
///
/// Errors give byte offsets within the archive data and, where a member is involved, its name.
struct TarArchive: Sendable {
    /// Tar's block size.
    static let blockSize = 512
    /// Largest PAX extended header or GNU long-name record accepted.
    static let maxExtendedHeaderSize = 1 << 20

    /// The archive bytes.
    let data: ByteSlice
    /// Every regular file, in archive order.
    let entries: [TarEntry]
    /// Member name → position in `entries` of the last member with that name.
    private let index: [String: Int]

    /// Whether any member's name is unsafe to extract (absolute, `..`, backslash, NUL).
    var hasUnsafeNames: Bool { entries.contains { $0.hasUnsafeName } }

    /// The last regular file called `name` (trailing slashes ignored), if any.
    func member(named name: String) -> TarEntry? {
        index[Self.trimmingTrailingSlashes(name)].map { entries[$0] }
    }

    /// Parses the archive in `data`.
    ///
    /// - Throws: `.truncated` when a header or a member's data extends past the end of the data;
    ///   `.malformed` for a bad header checksum, a non-numeric size, an invalid PAX record, or an
    ///   extended header followed by the end-of-archive marker; `.limitExceeded` for a PAX header or long name above
    ///   `maxExtendedHeaderSize`.
    init(_ data: ByteSlice) throws(CheckpointError) {
        self.data = data
        guard data.count >= Self.blockSize else {
            throw CheckpointError(.truncated, "a tar archive needs at least one 512-byte header, \(data.count) bytes present", offset: 0)
        }
        var entries: [TarEntry] = []
        var index: [String: Int] = [:]
        var pending = PendingOverrides()
        var position = 0

        while position < data.count {
            let headerOffset = position
            let header = try data.slice(position, min(Self.blockSize, data.count - position))
            guard header.count == Self.blockSize else {
                throw CheckpointError(
                    .truncated, "tar header needs 512 bytes, \(header.count) present", offset: headerOffset, member: pending.name)
            }
            if header.raw.allSatisfy({ $0 == 0 }) {
                guard pending.isEmpty else {
                    throw CheckpointError(
                        .malformed, "an extended header is followed by the end-of-archive marker instead of a member", offset: headerOffset)
                }
                break
            }
            try Self.verifyChecksum(header, at: headerOffset)

            let headerName = Self.headerName(header)
            let typeflag = header[156]
            let fieldSize = try Self.number(header, 124, 12, "size", at: headerOffset, member: headerName)
            // Python's tarfile gives these types no data, whatever their size field says.
            let hasNoData = (UInt8(ascii: "1")...UInt8(ascii: "6")).contains(typeflag)
            var size = hasNoData ? 0 : fieldSize
            if let paxSize = pending.size, !hasNoData { size = paxSize }
            let name = pending.name ?? headerName
            let dataStart = headerOffset + Self.blockSize
            guard size <= data.count - dataStart else {
                throw CheckpointError(
                    .truncated,
                    "member data needs \(size) bytes after the header, \(data.count - dataStart) present",
                    offset: headerOffset, member: name)
            }
            let body = try data.slice(dataStart, size)
            // Advance past the data and its padding to the next block (the final padding may be missing).
            let padded = size + (Self.blockSize - size % Self.blockSize) % Self.blockSize
            position = dataStart + min(padded, data.count - dataStart)

            switch typeflag {
            case UInt8(ascii: "x"):
                try Self.checkExtendedSize(size, at: headerOffset)
                try Self.applyPAX(body, to: &pending, at: dataStart)
                pending.used = true
            case UInt8(ascii: "g"):
                // Global PAX headers carry nothing this reader uses.
                continue
            case UInt8(ascii: "L"):
                try Self.checkExtendedSize(size, at: headerOffset)
                let bytes = body.bytes.prefix { $0 != 0 }
                pending.name = Self.decode(Array(bytes))
                pending.used = true
            case UInt8(ascii: "K"):
                // GNU long link name: only links use it, and links are skipped.
                try Self.checkExtendedSize(size, at: headerOffset)
                pending.used = true
            case UInt8(ascii: "0"), 0, UInt8(ascii: "7"):
                defer { pending = PendingOverrides() }
                // Old V7 archives mark directories as regular files with a trailing slash.
                if typeflag == 0, name.hasSuffix("/") { continue }
                index[name] = entries.count
                entries.append(TarEntry(name: name, data: body, headerOffset: headerOffset))
            default:
                // Directories, links, devices, FIFOs, sparse and unknown types.
                pending = PendingOverrides()
            }
        }
        guard pending.isEmpty else {
            throw CheckpointError(.truncated, "archive ends after an extended header, before the member it describes", offset: data.count)
        }
        self.entries = entries
        self.index = index
    }

    // MARK: - Parsing helpers

    /// Values from PAX or GNU extended headers that apply to the next member header.
    private struct PendingOverrides {
        /// The next member's name (PAX `path` or GNU long name).
        var name: String?
        /// The next member's size (PAX `size`).
        var size: Int?
        /// Set once any extended header was seen, even one that overrides nothing.
        var used = false
        /// Whether no extended header is waiting for its member.
        var isEmpty: Bool { !used }
    }

    /// Checks the header checksum: the sum of all 512 bytes with the checksum field read as spaces,
    /// accepting the unsigned sum (POSIX) or the signed sum (some old tars), like Python's tarfile.
    private static func verifyChecksum(_ header: ByteSlice, at offset: Int) throws(CheckpointError) {
        let stored = try number(header, 148, 8, "checksum", at: offset, member: nil)
        var unsigned = 0
        var signed = 0
        for i in 0..<blockSize {
            let b = (148..<156).contains(i) ? UInt8(ascii: " ") : header[i]
            unsigned += Int(b)
            signed += Int(Int8(bitPattern: b))
        }
        guard stored == unsigned || stored == signed else {
            throw CheckpointError(
                .malformed, "tar header checksum is \(stored) but the header sums to \(unsigned)", offset: offset,
                member: headerName(header))
        }
    }

    /// The header's own name: `prefix/name` for POSIX ustar headers, else the name field.
    private static func headerName(_ header: ByteSlice) -> String {
        let name = field(header, 0, 100)
        let isPOSIX = (0..<8).allSatisfy { header[257 + $0] == Array("ustar\u{0}00".utf8)[$0] }
        let prefix = isPOSIX ? field(header, 345, 155) : []
        return decode(prefix.isEmpty ? name : prefix + [UInt8(ascii: "/")] + name)
    }

    /// The bytes of a NUL-terminated header field.
    private static func field(_ header: ByteSlice, _ start: Int, _ length: Int) -> [UInt8] {
        var out: [UInt8] = []
        for i in start..<(start + length) {
            let b = header[i]
            if b == 0 { break }
            out.append(b)
        }
        return out
    }

    /// A numeric header field: octal digits (NUL-terminated, spaces trimmed, empty = 0) or GNU base-256
    /// (first byte 0x80 positive, 0xFF negative; the remaining bytes big-endian).
    private static func number(
        _ header: ByteSlice, _ start: Int, _ length: Int, _ what: String, at offset: Int, member: String?
    ) throws(CheckpointError) -> Int {
        let first = header[start]
        if first == 0x80 || first == 0xFF {
            guard first == 0x80 else {
                throw CheckpointError(.malformed, "tar \(what) field is negative (base-256)", offset: offset + start, member: member)
            }
            var value = 0
            for i in (start + 1)..<(start + length) {
                let (shifted, o1) = value.multipliedReportingOverflow(by: 256)
                let (next, o2) = shifted.addingReportingOverflow(Int(header[i]))
                guard !o1, !o2 else {
                    throw CheckpointError(
                        .limitExceeded, "tar \(what) field (base-256) is too large", offset: offset + start, member: member)
                }
                value = next
            }
            return value
        }
        let digits = field(header, start, length).drop { $0 == 0x20 }.reversed().drop { $0 == 0x20 }.reversed()
        var value = 0
        for d in digits {
            guard d >= UInt8(ascii: "0"), d <= UInt8(ascii: "7") else {
                throw CheckpointError(
                    .malformed,
                    "tar \(what) field is not octal: \(String(decoding: field(header, start, length), as: UTF8.self).debugDescription)",
                    offset: offset + start, member: member)
            }
            // At most 12 octal digits (36 bits): cannot overflow.
            value = value * 8 + Int(d - UInt8(ascii: "0"))
        }
        return value
    }

    /// Refuses extended headers larger than `maxExtendedHeaderSize`.
    private static func checkExtendedSize(_ size: Int, at offset: Int) throws(CheckpointError) {
        guard size <= maxExtendedHeaderSize else {
            throw CheckpointError(
                .limitExceeded, "extended header of \(size) bytes exceeds the \(maxExtendedHeaderSize)-byte limit", offset: offset)
        }
    }

    /// Parses PAX records `"<length> <key>=<value>\n"` (length counts the whole record) and keeps
    /// `path` and `size`.
    private static func applyPAX(_ body: ByteSlice, to pending: inout PendingOverrides, at offset: Int) throws(CheckpointError) {
        let bytes = body.bytes
        var p = 0
        while p < bytes.count {
            // Python's tarfile stops at the first NUL (padding some writers leave).
            if bytes[p] == 0 { break }
            let recordStart = p
            var length = 0
            while p < bytes.count, bytes[p] >= UInt8(ascii: "0"), bytes[p] <= UInt8(ascii: "9"), p - recordStart < 18 {
                length = length * 10 + Int(bytes[p] - UInt8(ascii: "0"))
                p += 1
            }
            guard p > recordStart, p < bytes.count, bytes[p] == UInt8(ascii: " "),
                length > p - recordStart + 1, length <= bytes.count - recordStart,
                bytes[recordStart + length - 1] == UInt8(ascii: "\n")
            else {
                throw CheckpointError(.malformed, "invalid PAX extended header record", offset: offset + recordStart)
            }
            let record = bytes[(p + 1)..<(recordStart + length - 1)]
            guard let eq = record.firstIndex(of: UInt8(ascii: "=")), eq > record.startIndex else {
                throw CheckpointError(.malformed, "PAX record has no 'key='", offset: offset + recordStart)
            }
            let key = String(decoding: record[record.startIndex..<eq], as: UTF8.self)
            let value = Array(record[(eq + 1)...])
            switch key {
            case "path":
                pending.name = decode(value)
            case "size":
                guard !value.isEmpty, value.count <= 18, value.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
                    throw CheckpointError(
                        .malformed, "PAX size is not a decimal number: \(String(decoding: value, as: UTF8.self).debugDescription)",
                        offset: offset + recordStart)
                }
                pending.size = value.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
            default:
                break
            }
            p = recordStart + length
        }
    }

    /// Decodes a name as UTF-8, or byte-for-byte as Latin-1 if it is not valid UTF-8.
    private static func decode(_ bytes: [UInt8]) -> String {
        if let s = String(validating: bytes, as: UTF8.self) { return s }
        return String(String.UnicodeScalarView(bytes.map { Unicode.Scalar($0) }))
    }

    /// `name` without trailing slashes (a lone `/` is kept), as Python's `getmember` compares names.
    private static func trimmingTrailingSlashes(_ name: String) -> String {
        var s = Substring(name)
        while s.count > 1, s.hasSuffix("/") { s = s.dropLast() }
        return String(s)
    }
}

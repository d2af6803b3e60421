/// One member of a zip archive, as its central directory describes it.
///
/// Sizes and offsets come from the central directory (with ZIP64 extra fields applied), never from
/// the local header: PyTorch writes zeros there and puts the real sizes in data descriptors.
struct ZipEntry: Sendable, Equatable {
    /// The name, decoded as UTF-8 when general-purpose flag bit 11 is set, otherwise as code page 437.
    let name: String
    /// The name exactly as stored.
    let rawName: [UInt8]
    /// Compression method: 0 = stored, 8 = deflate; anything else is reported as unsupported on read.
    let method: UInt16
    /// General-purpose bit flags (bit 0 = encrypted, bit 3 = data descriptor, bit 11 = UTF-8 name).
    let flags: UInt16
    /// The CRC-32 of the uncompressed data; 0 may mean "not recorded" (PyTorch with CRCs disabled).
    let crc32: UInt32
    /// Bytes of (possibly compressed) data in the archive.
    let compressedSize: Int
    /// Bytes of data after decompression.
    let uncompressedSize: Int
    /// Offset of the local file header in the archive.
    let localHeaderOffset: Int
    /// Offset of the first data byte in the archive (after the local header, its name and its extra field).
    let dataOffset: Int

    /// Whether the entry is encrypted (flag bit 0), which this reader does not support.
    var isEncrypted: Bool { flags & 0x0001 != 0 }
    /// Whether the entry is a directory (its name ends with `/`).
    var isDirectory: Bool { name.hasSuffix("/") }
    /// Whether extracting this entry by its name could write outside a target folder: an absolute path,
    /// a drive letter, a `..` component, a backslash or a NUL byte. Readers never extract; a later
    /// extractor must refuse such names.
    var hasUnsafeName: Bool { ZipEntry.isUnsafeName(name) }

    /// Whether `name` is unsafe as a relative path for extraction (see `hasUnsafeName`).
    static func isUnsafeName(_ name: String) -> Bool {
        if name.isEmpty { return true }
        let bytes = Array(name.utf8)
        if bytes.contains(0) || bytes.contains(UInt8(ascii: "\\")) { return true }
        if bytes.first == UInt8(ascii: "/") { return true }
        if bytes.count >= 2, bytes[1] == UInt8(ascii: ":") { return true }
        return name.split(separator: "/", omittingEmptySubsequences: false).contains { $0 == ".." }
    }
}

/// A read-only view of a zip archive held in memory (usually a memory-mapped file).
///
/// The initialiser reads and validates the whole central directory and every local header against
/// the bytes present; member data is read (and, for deflate, inflated) only by `contents(of:verifyCRC:)`.
/// Stored members come back as zero-copy slices of the input.
///
/// Errors name the member (when one is involved) and give byte offsets within the archive data.
struct ZipArchive: Sendable {
    /// Most entries an archive may declare.
    static let maxEntries = 1 << 20
    /// Largest uncompressed size a deflated member may declare (16 GiB).
    static let maxInflatedSize = 16 << 30
    /// Deflate cannot expand data by more than this factor (258 bytes per 2 bits, at best).
    static let maxDeflateRatio = 1032

    /// The archive bytes.
    let data: ByteSlice
    /// Every entry, in central directory order.
    let entries: [ZipEntry]
    /// Whether the archive has a ZIP64 end-of-central-directory record.
    let isZip64: Bool
    /// The archive comment (raw bytes).
    let comment: [UInt8]
    /// Offset of the central directory in the archive.
    let centralDirectoryOffset: Int
    /// Entry name → position in `entries`.
    private let index: [String: Int]

    /// Whether any entry's name is unsafe to extract (absolute, `..`, backslash, NUL); see `ZipEntry.hasUnsafeName`.
    var hasUnsafeNames: Bool { entries.contains { $0.hasUnsafeName } }

    /// The entry called `name`, if any.
    func entry(named name: String) -> ZipEntry? {
        index[name].map { entries[$0] }
    }

    // Record signatures (as little-endian u32) and fixed record sizes, from the zip APPNOTE.
    /// `PK\5\6`: classic end of central directory.
    private static let eocdSignature: UInt32 = 0x0605_4B50
    /// `PK\6\7`: ZIP64 end-of-central-directory locator.
    private static let zip64LocatorSignature: UInt32 = 0x0706_4B50
    /// `PK\6\6`: ZIP64 end-of-central-directory record.
    private static let zip64EOCDSignature: UInt32 = 0x0606_4B50
    /// `PK\1\2`: central directory entry.
    private static let centralSignature: UInt32 = 0x0201_4B50
    /// `PK\3\4`: local file header.
    private static let localSignature: UInt32 = 0x0403_4B50
    /// Bytes in a classic end record without its comment.
    private static let eocdSize = 22
    /// Bytes in a ZIP64 locator.
    private static let zip64LocatorSize = 20
    /// Bytes in a ZIP64 end record without extensible data.
    private static let zip64EOCDMinSize = 56
    /// Bytes in a central directory entry before its name, extra field and comment.
    private static let centralHeaderSize = 46
    /// Bytes in a local file header before its name and extra field.
    private static let localHeaderSize = 30

    /// Parses the archive in `data`.
    ///
    /// Finds the end-of-central-directory record (scanning back at most 65535 + 22 bytes), follows the
    /// ZIP64 locator when present, reads every central directory entry (applying ZIP64 extra fields),
    /// and checks each local header (signature, method, name) to find where each member's data starts.
    ///
    /// - Throws: `.truncated` or `.malformed` when a structure is missing, out of bounds or inconsistent
    ///   (counts, sizes, offsets, overlapping members, duplicate names, names that differ between the
    ///   central and local headers); `.unsupported` for multi-disk archives; `.limitExceeded` for more
    ///   than `maxEntries` entries.
    init(_ data: ByteSlice) throws(CheckpointError) {
        self.data = data
        let eocd = try Self.findEOCD(data)
        var r = ByteReader(data, position: eocd + 4)
        let diskNumber = try r.u16le("EOCD disk number")
        let cdDisk = try r.u16le("EOCD central directory disk")
        let diskEntries16 = try r.u16le("EOCD entries on this disk")
        let totalEntries16 = try r.u16le("EOCD total entries")
        let cdSize32 = try r.u32le("EOCD central directory size")
        let cdOffset32 = try r.u32le("EOCD central directory offset")
        let commentLength = Int(try r.u16le("EOCD comment length"))
        comment = try r.bytes(min(commentLength, r.remaining), "archive comment")

        var totalEntries = Int(totalEntries16)
        var cdSize = Int(cdSize32)
        var cdOffset = Int(cdOffset32)
        // Where the central directory must end: at the ZIP64 record if there is one, else at the EOCD.
        var endOfCentralDirectory = eocd

        let locator = eocd - Self.zip64LocatorSize
        if locator >= 0, try Self.u32(data, locator) == Self.zip64LocatorSignature {
            var l = ByteReader(data, position: locator + 4)
            let recordDisk = try l.u32le("ZIP64 locator disk")
            let recordOffset64 = try l.u64le("ZIP64 EOCD offset")
            let diskCount = try l.u32le("ZIP64 locator disk count")
            guard recordDisk == 0, diskCount <= 1 else {
                throw CheckpointError(.unsupported, "multi-disk zip archives are not supported (\(diskCount) disks)", offset: locator)
            }
            guard locator >= Self.zip64EOCDMinSize, recordOffset64 <= UInt64(locator - Self.zip64EOCDMinSize) else {
                throw CheckpointError(
                    .malformed,
                    "ZIP64 locator points at offset \(recordOffset64), where a ZIP64 end record "
                        + "would not fit before the locator at \(locator)",
                    offset: locator)
            }
            let record = Int(recordOffset64)
            var z = ByteReader(data, position: record)
            guard try z.u32le("ZIP64 EOCD signature") == Self.zip64EOCDSignature else {
                throw CheckpointError(.malformed, "no ZIP64 end-of-central-directory signature where the locator points", offset: record)
            }
            let recordSize = try z.u64le("ZIP64 EOCD size")
            guard recordSize >= UInt64(Self.zip64EOCDMinSize - 12), recordSize <= UInt64(locator - record - 12) else {
                throw CheckpointError(
                    .malformed, "ZIP64 end record declares size \(recordSize), which does not fit before the locator", offset: record)
            }
            _ = try z.u16le("ZIP64 version made by")
            _ = try z.u16le("ZIP64 version needed")
            let disk64 = try z.u32le("ZIP64 disk number")
            let cdDisk64 = try z.u32le("ZIP64 central directory disk")
            let diskEntries64 = try z.u64le("ZIP64 entries on this disk")
            let totalEntries64 = try z.u64le("ZIP64 total entries")
            let cdSize64 = try z.u64le("ZIP64 central directory size")
            let cdOffset64 = try z.u64le("ZIP64 central directory offset")
            guard disk64 == 0, cdDisk64 == 0, diskEntries64 == totalEntries64 else {
                throw CheckpointError(.unsupported, "multi-disk zip archives are not supported", offset: record)
            }
            // The classic fields must agree with the ZIP64 ones or hold the "see ZIP64" sentinel.
            try Self.agree(UInt64(totalEntries16), totalEntries64, sentinel: 0xFFFF, "entry count", at: eocd)
            try Self.agree(UInt64(diskEntries16), diskEntries64, sentinel: 0xFFFF, "entries on this disk", at: eocd)
            try Self.agree(UInt64(cdSize32), cdSize64, sentinel: 0xFFFF_FFFF, "central directory size", at: eocd)
            try Self.agree(UInt64(cdOffset32), cdOffset64, sentinel: 0xFFFF_FFFF, "central directory offset", at: eocd)
            guard totalEntries64 <= UInt64(Self.maxEntries) else {
                throw CheckpointError(
                    .limitExceeded, "archive declares \(totalEntries64) entries; at most \(Self.maxEntries) are allowed", offset: record)
            }
            guard cdSize64 <= UInt64(record), cdOffset64 <= UInt64(record) else {
                throw CheckpointError(
                    .malformed, "central directory (offset \(cdOffset64), size \(cdSize64)) lies outside the archive", offset: record)
            }
            totalEntries = Int(totalEntries64)
            cdSize = Int(cdSize64)
            cdOffset = Int(cdOffset64)
            endOfCentralDirectory = record
            isZip64 = true
        } else {
            guard diskNumber == 0, cdDisk == 0, diskEntries16 == totalEntries16 else {
                throw CheckpointError(.unsupported, "multi-disk zip archives are not supported", offset: eocd)
            }
            if totalEntries16 == 0xFFFF || cdSize32 == 0xFFFF_FFFF || cdOffset32 == 0xFFFF_FFFF {
                throw CheckpointError(
                    .malformed, "end-of-central-directory record defers to ZIP64, but there is no ZIP64 locator", offset: eocd)
            }
            isZip64 = false
        }

        let (cdEnd, cdOverflow) = cdOffset.addingReportingOverflow(cdSize)
        guard !cdOverflow, cdEnd <= endOfCentralDirectory else {
            throw CheckpointError(
                .malformed,
                "central directory [\(cdOffset), \(cdOffset) + \(cdSize)) runs past its end record at \(endOfCentralDirectory)",
                offset: endOfCentralDirectory)
        }
        let (minimumSize, countOverflow) = totalEntries.multipliedReportingOverflow(by: Self.centralHeaderSize)
        guard !countOverflow, minimumSize <= cdSize else {
            throw CheckpointError(
                .malformed,
                "\(totalEntries) entries need at least \(totalEntries) × 46 bytes, but the central directory has \(cdSize)",
                offset: cdOffset)
        }
        centralDirectoryOffset = cdOffset

        let directory = try data.slice(cdOffset, cdSize)
        var entries: [ZipEntry] = []
        entries.reserveCapacity(totalEntries)
        var index: [String: Int] = [:]
        index.reserveCapacity(totalEntries)
        var c = ByteReader(directory)
        for _ in 0..<totalEntries {
            let entry = try Self.readCentralEntry(&c, archive: data, centralDirectoryOffset: cdOffset)
            guard index[entry.name] == nil else {
                throw CheckpointError(.malformed, "duplicate entry name", offset: entry.localHeaderOffset, member: entry.name)
            }
            index[entry.name] = entries.count
            entries.append(entry)
        }
        guard c.position == cdSize else {
            throw CheckpointError(
                .malformed,
                "central directory is \(cdSize) bytes but its \(totalEntries) entries use \(c.position)",
                offset: cdOffset + c.position)
        }

        // Members must not overlap one another (overlap is how some zip bombs multiply their output).
        let byOffset = entries.sorted { $0.localHeaderOffset < $1.localHeaderOffset }
        for (a, b) in zip(byOffset, byOffset.dropFirst()) where a.dataOffset + a.compressedSize > b.localHeaderOffset {
            throw CheckpointError(
                .malformed,
                "data of '\(a.name)' [\(a.dataOffset), \(a.dataOffset + a.compressedSize)) overlaps the entry at \(b.localHeaderOffset)",
                offset: b.localHeaderOffset, member: b.name)
        }

        self.entries = entries
        self.index = index
    }

    /// The data of `entry`: a zero-copy slice for stored members, a new buffer of exactly the declared
    /// size for deflated ones.
    ///
    /// The CRC-32 is checked when `verifyCRC` is true and the stored CRC is non-zero.
    ///
    /// - Throws: `.unsupported` for encrypted members and methods other than stored (0) and deflate (8);
    ///   `.limitExceeded` for a declared size above 16 GiB or above 1032× the compressed size;
    ///   `.integrity` for a CRC mismatch or data that inflates to a size other than the declared one;
    ///   `.malformed` / `.truncated` for invalid deflate data.
    func contents(of entry: ZipEntry, verifyCRC: Bool = true) throws(CheckpointError) -> ByteSlice {
        let name = entry.name
        guard !entry.isEncrypted, entry.flags & 0x0040 == 0 else {
            throw CheckpointError(.unsupported, "encrypted zip members are not supported", offset: entry.localHeaderOffset, member: name)
        }
        let raw = try data.slice(entry.dataOffset, entry.compressedSize)
        let result: ByteSlice
        switch entry.method {
        case 0:
            guard entry.compressedSize == entry.uncompressedSize else {
                throw CheckpointError(
                    .malformed,
                    "stored member has compressed size \(entry.compressedSize) but uncompressed size \(entry.uncompressedSize)",
                    offset: entry.localHeaderOffset, member: name)
            }
            result = raw
        case 8:
            guard entry.uncompressedSize <= Self.maxInflatedSize else {
                throw CheckpointError(
                    .limitExceeded,
                    "deflated member declares \(entry.uncompressedSize) bytes; at most \(Self.maxInflatedSize) are allowed",
                    offset: entry.localHeaderOffset, member: name)
            }
            let (bound, overflow) = entry.compressedSize.multipliedReportingOverflow(by: Self.maxDeflateRatio)
            guard overflow || entry.uncompressedSize <= bound else {
                throw CheckpointError(
                    .limitExceeded,
                    "deflated member declares \(entry.uncompressedSize) bytes from \(entry.compressedSize) compressed bytes, "
                        + "beyond deflate's 1032:1 limit",
                    offset: entry.localHeaderOffset, member: name)
            }
            if entry.compressedSize == 0 && entry.uncompressedSize == 0 {
                result = raw
            } else {
                do throws(CheckpointError) {
                    result = try Inflate.raw(raw, expectedSize: entry.uncompressedSize).all
                } catch {
                    var e = error
                    if let o = e.offset { e.offset = entry.dataOffset + o }
                    throw e.inMember(name)
                }
            }
        default:
            throw CheckpointError(
                .unsupported,
                "compression method \(entry.method) (\(Self.methodName(entry.method))) is not supported; only stored (0) and deflate (8)",
                offset: entry.localHeaderOffset, member: name)
        }
        if verifyCRC, entry.crc32 != 0 {
            let actual = Inflate.crc32(result)
            guard actual == entry.crc32 else {
                throw CheckpointError(
                    .integrity,
                    "CRC-32 mismatch: central directory says \(Self.hex(entry.crc32)), data has \(Self.hex(actual))",
                    offset: entry.dataOffset, member: name)
            }
        }
        return result
    }

    // MARK: - Parsing helpers

    /// Finds the end-of-central-directory record: the last signature within the final 65535 + 22 bytes
    /// whose comment length reaches exactly the end of the data, or failing that the last one whose
    /// comment fits in the data.
    private static func findEOCD(_ data: ByteSlice) throws(CheckpointError) -> Int {
        guard data.count >= eocdSize else {
            throw CheckpointError(
                .truncated, "a zip archive needs at least \(eocdSize) bytes for its end record, \(data.count) present", offset: 0)
        }
        let last = data.count - eocdSize
        let first = max(0, last - 0xFFFF)
        var fallback: Int?
        var p = last
        while p >= first {
            if data[p] == 0x50, data[p + 1] == 0x4B, data[p + 2] == 0x05, data[p + 3] == 0x06 {
                let commentLength = Int(data[p + 20]) | Int(data[p + 21]) << 8
                if p + eocdSize + commentLength == data.count { return p }
                if fallback == nil, p + eocdSize + commentLength <= data.count { fallback = p }
            }
            p -= 1
        }
        if let fallback { return fallback }
        throw CheckpointError(.malformed, "no zip end-of-central-directory record in the last \(data.count - first) bytes", offset: first)
    }

    /// Reads one central directory entry at `c`, applies ZIP64 extra fields, and checks its local header.
    private static func readCentralEntry(
        _ c: inout ByteReader, archive: ByteSlice, centralDirectoryOffset: Int
    ) throws(CheckpointError) -> ZipEntry {
        // The reader walks the central directory alone, so its offsets are relative to it.
        let start = centralDirectoryOffset + c.position
        let flags: UInt16, method: UInt16, crc: UInt32, compressed32: UInt32, uncompressed32: UInt32
        let diskStart16: UInt16, localOffset32: UInt32, rawName: [UInt8], extra: ByteSlice
        do throws(CheckpointError) {
            guard try c.u32le("central directory entry signature") == centralSignature else {
                throw CheckpointError(.malformed, "expected a central directory entry signature (PK\\1\\2)", offset: c.position - 4)
            }
            _ = try c.u16le("version made by")
            _ = try c.u16le("version needed")
            flags = try c.u16le("flags")
            method = try c.u16le("compression method")
            _ = try c.u16le("modification time")
            _ = try c.u16le("modification date")
            crc = try c.u32le("CRC-32")
            compressed32 = try c.u32le("compressed size")
            uncompressed32 = try c.u32le("uncompressed size")
            let nameLength = Int(try c.u16le("name length"))
            let extraLength = Int(try c.u16le("extra field length"))
            let commentLength = Int(try c.u16le("comment length"))
            diskStart16 = try c.u16le("disk number start")
            _ = try c.u16le("internal attributes")
            _ = try c.u32le("external attributes")
            localOffset32 = try c.u32le("local header offset")
            rawName = try c.bytes(nameLength, "entry name")
            extra = try c.slice(extraLength, "extra field")
            try c.skip(commentLength, "entry comment")
        } catch {
            var e = error
            e.offset = centralDirectoryOffset + (e.offset ?? 0)
            e.message = "central directory entry at \(start): " + e.message
            throw e
        }

        let name = try decodeName(rawName, utf8: flags & 0x0800 != 0, offset: start)

        var uncompressed = UInt64(uncompressed32)
        var compressed = UInt64(compressed32)
        var localOffset = UInt64(localOffset32)
        var diskStart = UInt32(diskStart16)
        let needs = (
            uncompressed: uncompressed32 == 0xFFFF_FFFF, compressed: compressed32 == 0xFFFF_FFFF,
            offset: localOffset32 == 0xFFFF_FFFF, disk: diskStart16 == 0xFFFF
        )
        if needs.uncompressed || needs.compressed || needs.offset || needs.disk {
            guard let zip64 = try findExtraField(0x0001, in: extra, member: name, offset: start) else {
                throw CheckpointError(
                    .malformed, "central entry uses 0xFFFFFFFF sizes or offset but has no ZIP64 extra field", offset: start, member: name)
            }
            var z = ByteReader(zip64)
            do throws(CheckpointError) {
                if needs.uncompressed { uncompressed = try z.u64le("ZIP64 uncompressed size") }
                if needs.compressed { compressed = try z.u64le("ZIP64 compressed size") }
                if needs.offset { localOffset = try z.u64le("ZIP64 local header offset") }
                if needs.disk { diskStart = try z.u32le("ZIP64 disk number") }
            } catch {
                throw CheckpointError(.malformed, "ZIP64 extra field is too short: \(error.message)", offset: start, member: name)
            }
        }
        guard diskStart == 0 else {
            throw CheckpointError(.unsupported, "multi-disk zip archives are not supported", offset: start, member: name)
        }
        let limit = UInt64(centralDirectoryOffset)
        guard localOffset < limit else {
            throw CheckpointError(
                .malformed, "local header offset \(localOffset) is not before the central directory at \(centralDirectoryOffset)",
                offset: start, member: name)
        }
        guard compressed <= limit, uncompressed <= UInt64(Int.max) else {
            throw CheckpointError(
                .malformed,
                "compressed size \(compressed) (uncompressed \(uncompressed)) cannot fit before the central directory "
                    + "at \(centralDirectoryOffset)",
                offset: start, member: name)
        }
        let local = Int(localOffset)
        let dataOffset = try checkLocalHeader(
            archive, at: local, name: name, rawName: rawName, method: method, centralDirectoryOffset: centralDirectoryOffset)
        let (dataEnd, overflow) = dataOffset.addingReportingOverflow(Int(compressed))
        guard !overflow, dataEnd <= centralDirectoryOffset else {
            throw CheckpointError(
                .malformed,
                "data [\(dataOffset), \(dataOffset) + \(compressed)) runs into the central directory at \(centralDirectoryOffset)",
                offset: local, member: name)
        }
        return ZipEntry(
            name: name, rawName: rawName, method: method, flags: flags, crc32: crc,
            compressedSize: Int(compressed), uncompressedSize: Int(uncompressed),
            localHeaderOffset: local, dataOffset: dataOffset)
    }

    /// Checks the local header at `offset` (signature, method, name) and returns where its data starts.
    private static func checkLocalHeader(
        _ archive: ByteSlice, at offset: Int, name: String, rawName: [UInt8], method: UInt16, centralDirectoryOffset: Int
    ) throws(CheckpointError) -> Int {
        guard offset <= centralDirectoryOffset - localHeaderSize else {
            throw CheckpointError(
                .malformed, "local header at \(offset) does not fit before the central directory at \(centralDirectoryOffset)",
                offset: offset, member: name)
        }
        var l = ByteReader(archive, position: offset)
        do throws(CheckpointError) {
            guard try l.u32le("local header signature") == localSignature else {
                throw CheckpointError(.malformed, "expected a local file header signature (PK\\3\\4)", offset: offset, member: name)
            }
            _ = try l.u16le("version needed")
            _ = try l.u16le("flags")
            let localMethod = try l.u16le("compression method")
            guard localMethod == method else {
                throw CheckpointError(
                    .malformed, "local header says method \(localMethod), central directory says \(method)", offset: offset, member: name)
            }
            try l.skip(16, "local header times, CRC and sizes")
            let nameLength = Int(try l.u16le("local name length"))
            let extraLength = Int(try l.u16le("local extra field length"))
            let headerEnd = offset + localHeaderSize + nameLength + extraLength
            guard headerEnd <= centralDirectoryOffset else {
                throw CheckpointError(
                    .malformed, "local header name and extra field run into the central directory", offset: offset, member: name)
            }
            let localName = try l.slice(nameLength, "local name")
            guard localName.raw.elementsEqual(rawName) else {
                throw CheckpointError(
                    .malformed,
                    "local header names '\(String(decoding: localName.bytes, as: UTF8.self))', central directory names '\(name)'",
                    offset: offset, member: name)
            }
            return headerEnd
        } catch {
            throw error.inMember(name)
        }
    }

    /// The data of the first extra field with header `id`, checking that the fields tile `extra`.
    private static func findExtraField(
        _ id: UInt16, in extra: ByteSlice, member: String, offset: Int
    ) throws(CheckpointError) -> ByteSlice? {
        var r = ByteReader(extra)
        var found: ByteSlice?
        while r.remaining >= 4 {
            let fieldID = try r.u16le()
            let size = Int(try r.u16le())
            guard size <= r.remaining else {
                throw CheckpointError(
                    .malformed, "extra field 0x\(String(fieldID, radix: 16)) declares \(size) bytes, \(r.remaining) left",
                    offset: offset, member: member)
            }
            let field = try r.slice(size)
            if fieldID == id, found == nil { found = field }
        }
        return found
    }

    /// Decodes a name as UTF-8 (flag bit 11) or code page 437 (which maps ASCII to itself).
    private static func decodeName(_ bytes: [UInt8], utf8: Bool, offset: Int) throws(CheckpointError) -> String {
        if utf8 || bytes.allSatisfy({ $0 < 0x80 }) {
            guard let s = String(validating: bytes, as: UTF8.self) else {
                throw CheckpointError(.malformed, "entry name is flagged UTF-8 but is not valid UTF-8", offset: offset)
            }
            return s
        }
        var s = String.UnicodeScalarView()
        for b in bytes {
            let value = b < 0x80 ? UInt32(b) : UInt32(cp437High[Int(b) - 0x80])
            s.append(Unicode.Scalar(value)!)
        }
        return String(s)
    }

    /// Code page 437 for bytes 0x80...0xFF, as Unicode scalar values.
    private static let cp437High: [UInt16] = [
        0xC7, 0xFC, 0xE9, 0xE2, 0xE4, 0xE0, 0xE5, 0xE7, 0xEA, 0xEB, 0xE8, 0xEF, 0xEE, 0xEC, 0xC4, 0xC5,
        0xC9, 0xE6, 0xC6, 0xF4, 0xF6, 0xF2, 0xFB, 0xF9, 0xFF, 0xD6, 0xDC, 0xA2, 0xA3, 0xA5, 0x20A7, 0x192,
        0xE1, 0xED, 0xF3, 0xFA, 0xF1, 0xD1, 0xAA, 0xBA, 0xBF, 0x2310, 0xAC, 0xBD, 0xBC, 0xA1, 0xAB, 0xBB,
        0x2591, 0x2592, 0x2593, 0x2502, 0x2524, 0x2561, 0x2562, 0x2556, 0x2555, 0x2563, 0x2551, 0x2557, 0x255D, 0x255C, 0x255B, 0x2510,
        0x2514, 0x2534, 0x252C, 0x251C, 0x2500, 0x253C, 0x255E, 0x255F, 0x255A, 0x2554, 0x2569, 0x2566, 0x2560, 0x2550, 0x256C, 0x2567,
        0x2568, 0x2564, 0x2565, 0x2559, 0x2558, 0x2552, 0x2553, 0x256B, 0x256A, 0x2518, 0x250C, 0x2588, 0x2584, 0x258C, 0x2590, 0x2580,
        0x3B1, 0xDF, 0x393, 0x3C0, 0x3A3, 0x3C3, 0xB5, 0x3C4, 0x3A6, 0x398, 0x3A9, 0x3B4, 0x221E, 0x3C6, 0x3B5, 0x2229,
        0x2261, 0xB1, 0x2265, 0x2264, 0x2320, 0x2321, 0xF7, 0x2248, 0xB0, 0x2219, 0xB7, 0x221A, 0x207F, 0xB2, 0x25A0, 0xA0,
    ]

    /// Checks that a classic end-record field equals its ZIP64 counterpart or holds the sentinel.
    private static func agree(_ classic: UInt64, _ zip64: UInt64, sentinel: UInt64, _ what: String, at offset: Int) throws(CheckpointError)
    {
        guard classic == sentinel || classic == zip64 else {
            throw CheckpointError(
                .malformed, "end record \(what) \(classic) disagrees with the ZIP64 end record's \(zip64)", offset: offset)
        }
    }

    /// A little-endian u32 at `offset` (bounds-checked).
    private static func u32(_ data: ByteSlice, _ offset: Int) throws(CheckpointError) -> UInt32 {
        var r = ByteReader(data, position: offset)
        return try r.u32le()
    }

    /// `0x` and eight hex digits.
    private static func hex(_ v: UInt32) -> String {
        let s = String(v, radix: 16)
        return "0x" + String(repeating: "0", count: 8 - s.count) + s
    }

    /// A readable name for a zip compression method number.
    private static func methodName(_ method: UInt16) -> String {
        switch method {
        case 1: "shrink"
        case 6: "implode"
        case 9: "deflate64"
        case 12: "bzip2"
        case 14: "LZMA"
        case 93: "zstd"
        case 95: "xz"
        case 98: "PPMd"
        case 99: "AES encryption"
        default: "unknown"
        }
    }
}

/// A read-only HDF5 parser in Swift for the subset of HDF5 that h5py and Keras write (HDF5 File
/// Format Specification 3.0): superblocks 0-3, object headers 1 and 2 (with their lookup3
/// checksums), old-style groups (v1 B-tree + symbol nodes + local heap) and new-style groups (link
/// messages, dense links in a fractal heap indexed by a v2 B-tree), attributes (compact and dense),
/// fixed- and variable-length strings (global heap), and datasets stored compact, contiguous or
/// chunked (v1 B-tree index, or a layout 4/5 single-chunk, implicit or unpaged fixed-array index)
/// with the deflate and shuffle filters. Anything else (extensible-array and v2 B-tree chunk
/// indexes, other filters, committed datatypes, huge or filtered fractal heap objects, virtual
/// datasets) is refused with an `.unsupported` error that names the feature.
///
/// It works on the bytes of the file (usually the memory map) and never writes them. Every address
/// and length is checked against the file before use, every loop is bounded by the bytes that back
/// it, recursion is capped, the graphs a file can make cyclic (continuation blocks, B-tree nodes,
/// groups) are checked for cycles, and nothing is allocated that the file does not back: a hostile
/// file gives a typed `CheckpointError`, never a crash.
///
/// One value serves one read on one thread (it caches parsed object headers and heaps).
final class HDF5NativeFile {
    /// The whole file.
    let data: ByteSlice
    /// Absolute file offset that addresses are relative to (the superblock's base address).
    let base: Int
    /// Bytes of an address ("size of offsets").
    let offsetSize: Int
    /// Bytes of a length ("size of lengths").
    let lengthSize: Int
    /// Superblock version (0-3).
    let superblockVersion: Int
    /// Absolute offset of the root group's object header.
    let rootAddress: Int

    /// Deepest nesting of groups, B-tree levels and paths followed.
    static let maxDepth = 64
    /// Highest dataset rank.
    static let maxRank = 32
    /// Most links, chunks or B-tree records in one file (and objects one walk visits).
    static let maxObjects = 1_000_000
    /// Most messages one object header may hold (over all its blocks).
    static let maxMessages = 1 << 16
    /// Most continuation blocks one object header may have.
    static let maxContinuations = 1 << 12

    private var headers: [Int: HDF5ObjectHeader] = [:]
    /// Datasets already read, by object header address (a dataset reached by several paths is read once).
    var tensorCache: [Int: (tensor: TensorData, byteOrder: ByteOrder)] = [:]
    /// Bytes allocated so far for datasets that are not windows into the file (chunked, filled).
    var allocatedBytes = 0
    /// Most bytes all decoded datasets together may take: 16 times the file, at least 256 MiB.
    var allocationBudget: Int {
        let (n, o) = data.count.multipliedReportingOverflow(by: 16)
        return o ? Int.max : max(n, 256 << 20)
    }
    /// Offsets of the object headers parsed so far (tests aim mutations at them).
    var parsedHeaderAddresses: [Int] { headers.keys.sorted() }
    /// The links of each group parsed so far, in name order.
    var linkCache: [Int: [HDF5Link]] = [:]
    /// The links of each group parsed so far, by name.
    var linkIndex: [Int: [String: HDF5Link]] = [:]
    /// Global heap collections parsed so far: their objects by index.
    var globalHeaps: [Int: [Int: ByteSlice]] = [:]
    /// The attributes of each object looked up so far, by name.
    var attributeIndex: [Int: [String: HDF5Attribute]] = [:]
    /// Links listed so far over the whole file, capped by `maxObjects`.
    var linksSeen = 0

    /// Whether metadata checksums are checked (tests switch it off to let mutations reach deeper).
    let verifiesChecksums: Bool

    /// Finds the superblock (at 0, 512, 1024, ...) and reads it.
    init(_ data: ByteSlice, verifyingChecksums: Bool = true) throws(CheckpointError) {
        self.data = data
        verifiesChecksums = verifyingChecksums
        let signature: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]
        var at = 0
        var found: Int? = nil
        while at <= data.count - 8 {
            if (0..<8).allSatisfy({ data[at + $0] == signature[$0] }) {
                found = at
                break
            }
            at = at == 0 ? 512 : at * 2
        }
        guard let start = found else {
            throw CheckpointError(.malformed, "no HDF5 superblock signature at byte 0, 512, 1024, ...")
        }
        var c = HDF5Cursor(data, at: start, end: data.count, offsetSize: 8, lengthSize: 8, what: "superblock")
        try c.skip(8)
        let version = Int(try c.u8())
        superblockVersion = version
        var offsets = 0, lengths = 0
        var baseAddress: UInt64 = 0
        var eof: UInt64 = 0
        var rootHeader: UInt64 = 0
        switch version {
        case 0, 1:
            try c.skip(4)  // free-space, root symbol table entry, reserved, shared header versions
            offsets = Int(try c.u8())
            lengths = Int(try c.u8())
            try c.skip(1)
            try Self.checkSizes(offsets, lengths, at: start)
            c = HDF5Cursor(data, at: c.position, end: data.count, offsetSize: offsets, lengthSize: lengths, what: "superblock")
            _ = try c.u16()  // group leaf node K
            _ = try c.u16()  // group internal node K
            _ = try c.u32()  // file consistency flags
            if version == 1 { try c.skip(4) }  // indexed storage internal node K, reserved
            baseAddress = try c.sized(offsets)
            _ = try c.sized(offsets)  // free-space info (undefined)
            eof = try c.sized(offsets)
            _ = try c.sized(offsets)  // driver information block
            // Root group symbol table entry: link name offset, object header address, cache...
            _ = try c.sized(lengths)
            rootHeader = try c.sized(offsets)
            try c.skip(24)
        case 2, 3:
            offsets = Int(try c.u8())
            lengths = Int(try c.u8())
            try Self.checkSizes(offsets, lengths, at: start)
            c = HDF5Cursor(data, at: c.position, end: data.count, offsetSize: offsets, lengthSize: lengths, what: "superblock")
            _ = try c.u8()  // file consistency flags
            baseAddress = try c.sized(offsets)
            _ = try c.sized(offsets)  // superblock extension (holds nothing we read)
            eof = try c.sized(offsets)
            rootHeader = try c.sized(offsets)
            let end = c.position
            let stored = try c.u32()
            let computed = HDF5Lookup3.hash(try data.slice(start, end - start).raw)
            guard stored == computed || !verifyingChecksums else {
                throw CheckpointError(
                    .integrity, "superblock checksum is \(hex(stored)) but its bytes hash to \(hex(computed))", offset: end)
            }
        default:
            throw CheckpointError(.unsupported, "unsupported HDF5 feature: superblock version \(version)", offset: start + 8)
        }
        offsetSize = offsets
        lengthSize = lengths
        // The base address is absolute; h5py writes the superblock's own offset (0 without a userblock).
        guard baseAddress <= UInt64(data.count) else {
            throw CheckpointError(.malformed, "base address \(baseAddress) lies past the end of the file (\(data.count) bytes)")
        }
        base = Int(baseAddress)
        let undefined = offsets == 8 ? UInt64.max : (UInt64(1) << UInt64(8 * offsets)) - 1
        guard eof != undefined else { throw CheckpointError(.malformed, "the superblock's end-of-file address is undefined") }
        // libhdf5 writes the end-of-file address counting the userblock (H5F__super_read compares it
        // with the whole file's size).
        guard eof <= UInt64(data.count) else {
            throw CheckpointError(.truncated, "the superblock says the file is \(eof) bytes long; only \(data.count) are present")
        }
        guard rootHeader != undefined, rootHeader < eof else {
            throw CheckpointError(.malformed, "the root group's object header address \(rootHeader) is outside the file")
        }
        rootAddress = base + Int(rootHeader)
    }

    private static func checkSizes(_ offsets: Int, _ lengths: Int, at start: Int) throws(CheckpointError) {
        guard [2, 4, 8].contains(offsets), [2, 4, 8].contains(lengths) else {
            throw CheckpointError(
                .malformed, "superblock gives \(offsets)-byte addresses and \(lengths)-byte lengths (2, 4 or 8 expected)", offset: start)
        }
    }

    /// A cursor over `[at, at + length)`, checked to lie inside the file.
    func cursor(at: Int, length: Int, what: String) throws(CheckpointError) -> HDF5Cursor {
        guard at >= 0, length >= 0, at <= data.count, length <= data.count - at else {
            throw CheckpointError(
                .truncated, "\(what) at byte \(at) needs \(length) bytes; the file has \(data.count)", offset: max(0, min(at, data.count)))
        }
        return HDF5Cursor(data, at: at, end: at + length, offsetSize: offsetSize, lengthSize: lengthSize, what: what)
    }

    /// A cursor from `at` to the end of the file.
    func cursor(at: Int, what: String) throws(CheckpointError) -> HDF5Cursor {
        guard at >= 0, at <= data.count else {
            throw CheckpointError(.truncated, "\(what) at byte \(at) lies past the end of the file (\(data.count) bytes)")
        }
        return HDF5Cursor(data, at: at, end: data.count, offsetSize: offsetSize, lengthSize: lengthSize, what: what)
    }

    /// The absolute file offset of a stored address, nil when it is the undefined address.
    func absolute(_ address: UInt64, _ what: String) throws(CheckpointError) -> Int? {
        if address == undefinedAddress { return nil }
        let (sum, o) = address.addingReportingOverflow(UInt64(base))
        guard !o, sum < UInt64(data.count) else {
            throw CheckpointError(
                .truncated, "\(what) address \(address) lies past the end of the file (\(data.count) bytes)")
        }
        return Int(sum)
    }

    /// The all-ones address that means "none".
    var undefinedAddress: UInt64 { offsetSize == 8 ? UInt64.max : (UInt64(1) << UInt64(8 * offsetSize)) - 1 }

    /// Verifies the lookup3 checksum stored at `end` over `[start, end)` (only that it is present
    /// when `verifiesChecksums` is off).
    func verifyChecksum(from start: Int, to end: Int, what: String) throws(CheckpointError) {
        var c = try cursor(at: end, length: 4, what: "\(what) checksum")
        let stored = try c.u32()
        guard verifiesChecksums else { return }
        let computed = HDF5Lookup3.hash(try data.slice(start, end - start).raw)
        guard stored == computed else {
            throw CheckpointError(
                .integrity, "\(what) at byte \(start): stored checksum \(hex(stored)), computed \(hex(computed))", offset: end)
        }
    }

    // MARK: Object headers

    /// The object header at absolute offset `address` (parsed once, then cached).
    func objectHeader(at address: Int, path: String) throws(CheckpointError) -> HDF5ObjectHeader {
        if let cached = headers[address] { return cached }
        let header = try parseObjectHeader(at: address, path: path)
        headers[address] = header
        return header
    }

    private func parseObjectHeader(at address: Int, path: String) throws(CheckpointError) -> HDF5ObjectHeader {
        var c = try cursor(at: address, what: "object header")
        var messages: [HDF5Message] = []
        /// Blocks still to parse: (start, end, version-2?).
        var pending: [(Int, Int)] = []
        var seen: Set<Int> = [address]
        var isV2 = false
        if try c.peekSignature("OHDR") {
            isV2 = true
            try c.skip(4)
            let version = try c.u8()
            guard version == 2 else {
                throw CheckpointError(.unsupported, "unsupported HDF5 feature: object header version \(version) at byte \(address)", member: path)
            }
            let flags = try c.u8()
            if flags & 0x20 != 0 { try c.skip(16) }  // access, modification, change, birth times
            if flags & 0x10 != 0 { try c.skip(4) }  // attribute storage phase change values
            let size = try c.sized(1 << Int(flags & 3))
            let start = c.position
            guard size <= UInt64(data.count - start) else {
                throw CheckpointError(
                    .truncated, "object header at byte \(address) declares \(size) bytes of messages; the file ends first",
                    offset: address, member: path)
            }
            let end = start + Int(size)
            try verifyChecksum(from: address, to: end, what: "object header")
            try parseMessagesV2(start: start, end: end, flags: flags, into: &messages, pending: &pending, seen: &seen, path: path)
        } else {
            let version = try c.u8()
            guard version == 1 else {
                throw CheckpointError(
                    .malformed, "no object header at byte \(address) (version byte \(version), no OHDR signature)", offset: address,
                    member: path)
            }
            try c.skip(1)
            _ = try c.u16()  // number of messages: the blocks themselves bound the walk
            _ = try c.u32()  // reference count
            let size = try c.u32()
            try c.skip(4)  // padding to 8 bytes
            let start = c.position
            guard UInt64(size) <= UInt64(data.count - start) else {
                throw CheckpointError(
                    .truncated, "object header at byte \(address) declares \(size) bytes of messages; the file ends first",
                    offset: address, member: path)
            }
            try parseMessagesV1(start: start, end: start + Int(size), into: &messages, pending: &pending, seen: &seen, path: path)
        }
        var blocks = 0
        while let (start, length) = pending.first {
            pending.removeFirst()
            blocks += 1
            guard blocks <= Self.maxContinuations else {
                throw CheckpointError(
                    .limitExceeded, "object header at byte \(address) has more than \(Self.maxContinuations) continuation blocks",
                    member: path)
            }
            guard length <= data.count - start else {
                throw CheckpointError(
                    .truncated,
                    "object header continuation block at byte \(start) needs \(length) bytes; the file has \(data.count)",
                    offset: start, member: path)
            }
            if isV2 {
                let b = try cursor(at: start, length: length, what: "object header continuation block")
                guard length >= 8, try b.peekSignature("OCHK") else {
                    throw CheckpointError(
                        .malformed, "object header continuation block at byte \(start) has no OCHK signature", offset: start,
                        member: path)
                }
                try verifyChecksum(from: start, to: start + length - 4, what: "object header continuation block")
                try parseMessagesV2(
                    start: start + 4, end: start + length - 4, flags: nil, into: &messages, pending: &pending, seen: &seen, path: path)
            } else {
                try parseMessagesV1(start: start, end: start + length, into: &messages, pending: &pending, seen: &seen, path: path)
            }
        }
        return HDF5ObjectHeader(address: address, messages: messages)
    }

    /// Remembers a continuation block, refusing one reached twice (a cycle).
    private func continuation(
        _ body: ByteSlice, at offset: Int, pending: inout [(Int, Int)], seen: inout Set<Int>, path: String
    ) throws(CheckpointError) {
        var c = HDF5Cursor(data, at: offset, end: offset + body.count, offsetSize: offsetSize, lengthSize: lengthSize, what: "continuation message")
        let raw = try c.sized(offsetSize)
        let length = try c.sized(lengthSize)
        guard let start = try absolute(raw, "object header continuation block") else {
            throw CheckpointError(.malformed, "continuation message at byte \(offset) has an undefined address", offset: offset, member: path)
        }
        guard length <= UInt64(data.count - start) else {
            throw CheckpointError(
                .truncated,
                "object header continuation block at byte \(start) needs \(length) bytes; the file has \(data.count)", offset: start,
                member: path)
        }
        guard seen.insert(start).inserted else {
            throw CheckpointError(
                .malformed, "object header continuation cycle: the block at byte \(start) is reached twice", offset: offset, member: path)
        }
        pending.append((start, Int(length)))
    }

    private func parseMessagesV1(
        start: Int, end: Int, into messages: inout [HDF5Message], pending: inout [(Int, Int)], seen: inout Set<Int>, path: String
    ) throws(CheckpointError) {
        var c = try cursor(at: start, length: end - start, what: "object header messages")
        while c.remaining >= 8 {
            let type = try c.u16()
            let size = Int(try c.u16())
            let flags = try c.u8()
            try c.skip(3)
            let at = c.position
            let body = try c.slice(size, "message body")
            try append(HDF5Message(type: type, flags: flags, body: body, offset: at), into: &messages, pending: &pending, seen: &seen, path: path)
        }
    }

    private func parseMessagesV2(
        start: Int, end: Int, flags: UInt8?, into messages: inout [HDF5Message], pending: inout [(Int, Int)], seen: inout Set<Int>,
        path: String
    ) throws(CheckpointError) {
        // Whether messages carry a creation order is a flag of the header, which continuation blocks inherit.
        if let flags { creationOrderTracked = flags & 0x04 != 0 }
        let headerSize = creationOrderTracked ? 6 : 4
        var c = try cursor(at: start, length: end - start, what: "object header messages")
        while c.remaining >= headerSize {
            let type = UInt16(try c.u8())
            let size = Int(try c.u16())
            let mflags = try c.u8()
            if creationOrderTracked { _ = try c.u16() }
            let at = c.position
            let body = try c.slice(size, "message body")
            try append(HDF5Message(type: type, flags: mflags, body: body, offset: at), into: &messages, pending: &pending, seen: &seen, path: path)
        }
    }
    /// Whether the version-2 header being parsed stores a creation order in each message header.
    private var creationOrderTracked = false

    private func append(
        _ message: HDF5Message, into messages: inout [HDF5Message], pending: inout [(Int, Int)], seen: inout Set<Int>, path: String
    ) throws(CheckpointError) {
        guard messages.count < Self.maxMessages else {
            throw CheckpointError(.limitExceeded, "an object header holds more than \(Self.maxMessages) messages", member: path)
        }
        switch message.type {
        case 0x0000: return  // NIL
        case 0x0010: try continuation(message.body, at: message.offset, pending: &pending, seen: &seen, path: path)
        default: messages.append(message)
        }
    }

    /// A cursor over a message's body.
    func cursor(_ message: HDF5Message, what: String) -> HDF5Cursor {
        HDF5Cursor(
            data, at: message.offset, end: message.offset + message.body.count, offsetSize: offsetSize, lengthSize: lengthSize, what: what)
    }
}

/// A bounds-checked little-endian cursor over `[position, end)` of the file, with the file's sizes
/// of addresses and lengths. Errors name `what` and the absolute byte offset.
struct HDF5Cursor {
    /// The bytes read (the whole file, or a window of it such as an attribute value).
    let data: ByteSlice
    /// Next byte to read, relative to `data`.
    private(set) var position: Int
    /// First byte past the structure.
    let end: Int
    /// Bytes of an address.
    let offsetSize: Int
    /// Bytes of a length.
    let lengthSize: Int
    /// The structure's name, for errors.
    let what: String

    /// A cursor over `[at, end)` of `data` (`end` clamped to the data).
    init(_ data: ByteSlice, at: Int, end: Int, offsetSize: Int, lengthSize: Int, what: String) {
        self.data = data
        self.position = at
        self.end = min(end, data.count)
        self.offsetSize = offsetSize
        self.lengthSize = lengthSize
        self.what = what
    }

    /// Bytes left before `end`.
    var remaining: Int { max(0, end - position) }

    /// Throws `.truncated` unless `n` more bytes are there.
    func need(_ n: Int, _ item: String) throws(CheckpointError) {
        guard n >= 0, n <= end - position else {
            throw CheckpointError(
                .truncated, "\(what): \(item) at byte \(position) needs \(n) bytes; only \(max(0, end - position)) remain", offset: position)
        }
    }

    /// Skips `n` bytes.
    mutating func skip(_ n: Int) throws(CheckpointError) {
        try need(n, "a field")
        position += n
    }

    /// Moves to `to` (inside the structure).
    mutating func seek(_ to: Int) throws(CheckpointError) {
        guard to >= 0, to <= end else { throw CheckpointError(.truncated, "\(what): position \(to) lies outside it", offset: position) }
        position = to
    }

    /// One byte.
    mutating func u8() throws(CheckpointError) -> UInt8 {
        try need(1, "a byte")
        defer { position += 1 }
        return data[position]
    }

    /// A little-endian 16-bit integer.
    mutating func u16() throws(CheckpointError) -> UInt16 { UInt16(try sized(2)) }
    /// A little-endian 32-bit integer.
    mutating func u32() throws(CheckpointError) -> UInt32 { UInt32(try sized(4)) }
    /// A little-endian 64-bit integer.
    mutating func u64() throws(CheckpointError) -> UInt64 { try sized(8) }

    /// A little-endian unsigned integer of `n` (0...8) bytes.
    mutating func sized(_ n: Int) throws(CheckpointError) -> UInt64 {
        guard n >= 0, n <= 8 else { throw CheckpointError(.malformed, "\(what): a \(n)-byte integer field", offset: position) }
        try need(n, "a \(n)-byte integer")
        var v: UInt64 = 0
        for i in 0..<n { v |= UInt64(data[position + i]) << UInt64(8 * i) }
        position += n
        return v
    }

    /// An address field (file's size of offsets).
    mutating func address() throws(CheckpointError) -> UInt64 { try sized(offsetSize) }
    /// A length field (file's size of lengths).
    mutating func length() throws(CheckpointError) -> UInt64 { try sized(lengthSize) }

    /// The next `n` bytes as a window.
    mutating func slice(_ n: Int, _ item: String = "a block") throws(CheckpointError) -> ByteSlice {
        try need(n, item)
        defer { position += n }
        return try data.slice(position, n)
    }

    /// Whether the next four bytes are `signature` (does not move).
    func peekSignature(_ signature: String) throws(CheckpointError) -> Bool {
        guard end - position >= 4 else { return false }
        return Array(signature.utf8) == (0..<4).map { data[position + $0] }
    }

    /// Reads and checks a four-byte signature.
    mutating func signature(_ signature: String) throws(CheckpointError) {
        guard try peekSignature(signature) else {
            throw CheckpointError(.malformed, "\(what) at byte \(position) has no \(signature) signature", offset: position)
        }
        position += 4
    }
}

/// `0x1234abcd`.
func hex(_ v: UInt32) -> String { "0x" + String(v, radix: 16) }

/// Converts a file-stored count to `Int`, refusing values above `limit`.
func hdf5Int(_ v: UInt64, limit: Int, _ what: @autoclosure () -> String) throws(CheckpointError) -> Int {
    guard v <= UInt64(limit) else { throw CheckpointError(.limitExceeded, "\(what()) is \(v) (limit \(limit))") }
    return Int(v)
}

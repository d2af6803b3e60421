/// A bounds-checked cursor over a `ByteSlice`. Every read checks that the bytes exist first, so a
/// parser built on it cannot read past the end of a truncated or lying file.
struct ByteReader {
    let data: ByteSlice
    /// Current position, relative to the start of `data`.
    var position: Int = 0

    init(_ data: ByteSlice, position: Int = 0) {
        self.data = data
        self.position = position
    }

    var remaining: Int { data.count - position }
    var isAtEnd: Bool { position >= data.count }

    @inline(__always)
    func require(_ n: Int, _ what: @autoclosure () -> String) throws(CheckpointError) {
        guard n >= 0, n <= data.count - position else {
            throw CheckpointError(.truncated, "\(what()) needs \(n) bytes, \(max(0, data.count - position)) left", offset: position)
        }
    }

    mutating func u8(_ what: @autoclosure () -> String = "a byte") throws(CheckpointError) -> UInt8 {
        try require(1, what())
        let v = data[position]
        position += 1
        return v
    }

    mutating func u16le(_ what: @autoclosure () -> String = "a 2-byte integer") throws(CheckpointError) -> UInt16 {
        try require(2, what())
        let v = UInt16(data[position]) | UInt16(data[position + 1]) << 8
        position += 2
        return v
    }

    mutating func u32le(_ what: @autoclosure () -> String = "a 4-byte integer") throws(CheckpointError) -> UInt32 {
        try require(4, what())
        var v: UInt32 = 0
        for i in 0..<4 { v |= UInt32(data[position + i]) << (8 * i) }
        position += 4
        return v
    }

    mutating func u64le(_ what: @autoclosure () -> String = "an 8-byte integer") throws(CheckpointError) -> UInt64 {
        try require(8, what())
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(data[position + i]) << (8 * i) }
        position += 8
        return v
    }

    mutating func u64be(_ what: @autoclosure () -> String = "an 8-byte integer") throws(CheckpointError) -> UInt64 {
        try require(8, what())
        var v: UInt64 = 0
        for i in 0..<8 { v = v << 8 | UInt64(data[position + i]) }
        position += 8
        return v
    }

    mutating func slice(_ n: Int, _ what: @autoclosure () -> String = "a block") throws(CheckpointError) -> ByteSlice {
        try require(n, what())
        let s = try data.slice(position, n)
        position += n
        return s
    }

    mutating func bytes(_ n: Int, _ what: @autoclosure () -> String = "a block") throws(CheckpointError) -> [UInt8] {
        try slice(n, what()).bytes
    }

    mutating func skip(_ n: Int, _ what: @autoclosure () -> String = "padding") throws(CheckpointError) {
        try require(n, what())
        position += n
    }
}

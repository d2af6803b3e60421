/// The JSON header of a safetensors file, parsed strictly (FORMATS.md §5): an object whose values
/// are tensor records `{"dtype", "shape", "data_offsets"}` plus an optional `__metadata__` object of
/// strings. Duplicate keys, unknown record fields, non-integer sizes and trailing bytes other than
/// the spaces the writer pads with are errors. Every error carries the byte offset in the file.
struct SafetensorsHeader {
    struct Record {
        var name: String
        var dtype: String
        var shape: [Int]
        var begin: Int
        var end: Int
    }

    /// Tensor records in header order.
    var records: [Record] = []
    /// `__metadata__`, in header order.
    var metadata: [(key: String, value: String)] = []

    /// Parses `bytes`, which start at file offset `base` (8: after the length prefix).
    init(_ bytes: UnsafeRawBufferPointer, base: Int) throws(CheckpointError) {
        var p = JSONScanner(bytes: bytes, base: base)
        p.skipSpace()
        try p.expect(UInt8(ascii: "{"))
        var seen = Set<String>()
        p.skipSpace()
        if !p.consume(UInt8(ascii: "}")) {
            while true {
                p.skipSpace()
                let keyOffset = p.offset
                let key = try p.string()
                guard seen.insert(key).inserted else {
                    throw CheckpointError(.malformed, "safetensors header names '\(key)' twice", offset: keyOffset)
                }
                p.skipSpace()
                try p.expect(UInt8(ascii: ":"))
                p.skipSpace()
                if key == "__metadata__" {
                    metadata = try p.stringMap()
                } else {
                    records.append(try Self.record(named: key, &p))
                }
                p.skipSpace()
                if p.consume(UInt8(ascii: ",")) { continue }
                try p.expect(UInt8(ascii: "}"))
                break
            }
        }
        // Only padding may follow: the writer pads with spaces (we also accept other JSON whitespace).
        p.skipSpace()
        guard p.atEnd else {
            throw CheckpointError(.malformed, "safetensors header has bytes after its JSON object", offset: p.offset)
        }
    }

    private static func record(named name: String, _ p: inout JSONScanner) throws(CheckpointError) -> Record {
        let start = p.offset
        try p.expect(UInt8(ascii: "{"))
        var dtype: String?
        var shape: [Int]?
        var offsets: [Int]?
        var fields = Set<String>()
        p.skipSpace()
        if !p.consume(UInt8(ascii: "}")) {
            while true {
                p.skipSpace()
                let fieldOffset = p.offset
                let field = try p.string()
                guard fields.insert(field).inserted else {
                    throw CheckpointError(.malformed, "tensor '\(name)' has field '\(field)' twice", offset: fieldOffset)
                }
                p.skipSpace()
                try p.expect(UInt8(ascii: ":"))
                p.skipSpace()
                switch field {
                case "dtype": dtype = try p.string()
                case "shape": shape = try p.integerArray(limit: 64)
                case "data_offsets": offsets = try p.integerArray(limit: 2)
                default: throw CheckpointError(.malformed, "tensor '\(name)' has unknown field '\(field)'", offset: fieldOffset)
                }
                p.skipSpace()
                if p.consume(UInt8(ascii: ",")) { continue }
                try p.expect(UInt8(ascii: "}"))
                break
            }
        }
        guard let dtype, let shape, let offsets else {
            let missing = [("dtype", dtype == nil), ("shape", shape == nil), ("data_offsets", offsets == nil)].filter(\.1).map(\.0)
            throw CheckpointError(.malformed, "tensor '\(name)' lacks \(missing.joined(separator: ", "))", offset: start)
        }
        guard offsets.count == 2 else {
            throw CheckpointError(.malformed, "tensor '\(name)' has \(offsets.count) data_offsets, expected [begin, end]", offset: start)
        }
        return Record(name: name, dtype: dtype, shape: shape, begin: offsets[0], end: offsets[1])
    }
}

/// A cursor over JSON bytes for the few shapes a safetensors header uses.
struct JSONScanner {
    let bytes: UnsafeRawBufferPointer
    let base: Int
    var position = 0

    init(bytes: UnsafeRawBufferPointer, base: Int) {
        self.bytes = bytes
        self.base = base
    }

    /// File offset of the cursor.
    var offset: Int { base + position }
    var atEnd: Bool { position >= bytes.count }

    mutating func skipSpace() {
        while position < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[position]) { position += 1 }
    }

    mutating func consume(_ byte: UInt8) -> Bool {
        guard position < bytes.count, bytes[position] == byte else { return false }
        position += 1
        return true
    }

    mutating func expect(_ byte: UInt8) throws(CheckpointError) {
        guard consume(byte) else {
            let found = position < bytes.count ? "'\(Character(Unicode.Scalar(bytes[position])))'" : "the end of the header"
            throw CheckpointError(
                .malformed, "safetensors header: expected '\(Character(Unicode.Scalar(byte)))', found \(found)", offset: offset)
        }
    }

    /// A JSON string (escapes decoded; must be valid UTF-8).
    mutating func string() throws(CheckpointError) -> String {
        let start = offset
        try expect(UInt8(ascii: "\""))
        var out: [UInt8] = []
        while true {
            guard position < bytes.count else {
                throw CheckpointError(.truncated, "safetensors header: unterminated string", offset: start)
            }
            let c = bytes[position]
            position += 1
            if c == UInt8(ascii: "\"") { break }
            if c < 0x20 { throw CheckpointError(.malformed, "safetensors header: control byte in a string", offset: offset - 1) }
            if c != UInt8(ascii: "\\") {
                out.append(c)
                continue
            }
            guard position < bytes.count else {
                throw CheckpointError(.truncated, "safetensors header: unterminated escape", offset: offset)
            }
            let e = bytes[position]
            position += 1
            switch e {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if (0xD800..<0xDC00).contains(scalar) {
                    guard consume(UInt8(ascii: "\\")), consume(UInt8(ascii: "u")) else {
                        throw CheckpointError(.malformed, "safetensors header: lone surrogate in a string", offset: offset)
                    }
                    let low = try hex4()
                    guard (0xDC00..<0xE000).contains(low) else {
                        throw CheckpointError(.malformed, "safetensors header: bad surrogate pair in a string", offset: offset)
                    }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                }
                guard let u = Unicode.Scalar(scalar) else {
                    throw CheckpointError(.malformed, "safetensors header: invalid \\u escape", offset: offset)
                }
                out.append(contentsOf: Array(String(Character(u)).utf8))
            default:
                throw CheckpointError(
                    .malformed, "safetensors header: invalid escape '\\\(Character(Unicode.Scalar(e)))'", offset: offset - 1)
            }
        }
        guard let s = String(validating: out, as: UTF8.self) else {
            throw CheckpointError(.malformed, "safetensors header: a string is not valid UTF-8", offset: start)
        }
        return s
    }

    private mutating func hex4() throws(CheckpointError) -> UInt32 {
        guard position + 4 <= bytes.count else { throw CheckpointError(.truncated, "safetensors header: short \\u escape", offset: offset) }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[position]
            position += 1
            let d: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(c - UInt8(ascii: "A") + 10)
            default: throw CheckpointError(.malformed, "safetensors header: bad hex digit in \\u escape", offset: offset - 1)
            }
            v = v << 4 | d
        }
        return v
    }

    /// A non-negative integer that fits in 53 bits (no sign, fraction or exponent).
    mutating func integer() throws(CheckpointError) -> Int {
        let start = offset
        var v = 0
        var digits = 0
        while position < bytes.count, bytes[position] >= UInt8(ascii: "0"), bytes[position] <= UInt8(ascii: "9") {
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(Int(bytes[position] - UInt8(ascii: "0")))
            guard !o1, !o2, a <= 1 << 53 else {
                throw CheckpointError(.limitExceeded, "safetensors header: integer too large", offset: start)
            }
            v = a
            digits += 1
            position += 1
        }
        guard digits > 0 else { throw CheckpointError(.malformed, "safetensors header: expected a non-negative integer", offset: start) }
        if position < bytes.count, [UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E")].contains(bytes[position]) {
            throw CheckpointError(.malformed, "safetensors header: expected an integer, found a fraction or exponent", offset: start)
        }
        return v
    }

    /// `[int, int, ...]` with at most `limit` entries.
    mutating func integerArray(limit: Int) throws(CheckpointError) -> [Int] {
        let start = offset
        try expect(UInt8(ascii: "["))
        var out: [Int] = []
        skipSpace()
        if consume(UInt8(ascii: "]")) { return out }
        while true {
            skipSpace()
            out.append(try integer())
            guard out.count <= limit else {
                throw CheckpointError(.limitExceeded, "safetensors header: more than \(limit) integers in a list", offset: start)
            }
            skipSpace()
            if consume(UInt8(ascii: ",")) { continue }
            try expect(UInt8(ascii: "]"))
            return out
        }
    }

    /// `{"key": "value", ...}` with string values only, keys unique.
    mutating func stringMap() throws(CheckpointError) -> [(key: String, value: String)] {
        try expect(UInt8(ascii: "{"))
        var out: [(key: String, value: String)] = []
        var seen = Set<String>()
        skipSpace()
        if consume(UInt8(ascii: "}")) { return out }
        while true {
            skipSpace()
            let keyOffset = offset
            let key = try string()
            guard seen.insert(key).inserted else {
                throw CheckpointError(.malformed, "__metadata__ names '\(key)' twice", offset: keyOffset)
            }
            skipSpace()
            try expect(UInt8(ascii: ":"))
            skipSpace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else {
                throw CheckpointError(
                    .malformed, "__metadata__ value of '\(key)' is not a string (the format allows only strings)", offset: offset)
            }
            out.append((key, try string()))
            skipSpace()
            if consume(UInt8(ascii: ",")) { continue }
            try expect(UInt8(ascii: "}"))
            return out
        }
    }
}

/// An HDF5 datatype (IV.A.2.d), as far as this reader uses it.
indirect enum HDF5Datatype {
    /// Integers.
    case fixedPoint(size: Int, signed: Bool, bigEndian: Bool)
    /// Floating point (IEEE layouts by exponent and mantissa width).
    case floatingPoint(size: Int, bigEndian: Bool, exponentBits: Int, mantissaBits: Int)
    /// Fixed-length strings of `size` bytes.
    case string(size: Int)
    /// Variable-length strings (global heap references).
    case variableLengthString
    /// Opaque bytes (Keras 3 bfloat16).
    case opaque(size: Int)
    /// Enumerations (h5py bool).
    case enumeration(size: Int, members: Int)
    /// Any other class (time, bitfield, compound, reference, array, variable-length sequence).
    case other(typeClass: Int, size: Int)

    /// Bytes of one element as stored in a dataset or attribute.
    func storedSize(offsetSize: Int) -> Int {
        switch self {
        case .fixedPoint(let size, _, _), .floatingPoint(let size, _, _, _), .string(let size), .opaque(let size),
            .enumeration(let size, _), .other(_, let size):
            return size
        case .variableLengthString: return 4 + offsetSize + 4
        }
    }
}

/// An HDF5 dataspace: scalar (no dimensions), simple, or null (no elements).
struct HDF5Dataspace {
    /// A null dataspace (no elements, no shape).
    var isNull = false
    /// Dimensions (none for a scalar).
    var dims: [Int] = []
    /// Number of elements (0 for a null dataspace).
    var count: Int = 1
}

/// An attribute: name, type, shape and its stored value bytes.
struct HDF5Attribute {
    /// Attribute name.
    let name: String
    /// Element type.
    let type: HDF5Datatype
    /// Shape.
    let space: HDF5Dataspace
    /// The stored values.
    let value: ByteSlice
}

extension HDF5NativeFile {
    /// Parses a datatype message body starting at `c` (recursing into enum and variable-length bases).
    func datatype(_ c: inout HDF5Cursor, path: String, depth: Int = 0) throws(CheckpointError) -> HDF5Datatype {
        guard depth <= 8 else { throw CheckpointError(.limitExceeded, "datatype nested deeper than 8", member: path) }
        let start = c.position
        let classVersion = try c.u8()
        let typeClass = Int(classVersion & 0x0F)
        let version = Int(classVersion >> 4)
        guard (1...5).contains(version) else {
            throw CheckpointError(.malformed, "datatype at byte \(start) has version \(version)", offset: start, member: path)
        }
        let bits0 = try c.u8()
        let bits1 = try c.u8()
        _ = try c.u8()
        let size = try hdf5Int(UInt64(try c.u32()), limit: 1 << 24, "datatype size")
        switch typeClass {
        case 0:
            try c.skip(4)  // bit offset, precision
            return .fixedPoint(size: size, signed: bits0 & 0x08 != 0, bigEndian: bits0 & 0x01 != 0)
        case 1:
            guard bits0 & 0x40 == 0 else {
                throw CheckpointError(.unsupported, "unsupported HDF5 feature: VAX-ordered floating point", member: path)
            }
            try c.skip(4)  // bit offset, precision
            _ = try c.u8()  // exponent location
            let exponent = Int(try c.u8())
            _ = try c.u8()  // mantissa location
            let mantissa = Int(try c.u8())
            try c.skip(4)  // exponent bias
            _ = bits1
            return .floatingPoint(size: size, bigEndian: bits0 & 0x01 != 0, exponentBits: exponent, mantissaBits: mantissa)
        case 3:
            return .string(size: size)
        case 5:
            try c.skip(min(c.remaining, Int(bits0)))  // the tag, NUL-padded to a multiple of 8
            return .opaque(size: size)
        case 8:
            let members = Int(bits0) | Int(bits1) << 8
            let baseType = try datatype(&c, path: path, depth: depth + 1)
            let baseSize = baseType.storedSize(offsetSize: offsetSize)
            // Names (NUL-terminated, padded to 8 bytes before version 3), then the values.
            for _ in 0..<members {
                let nameStart = c.position
                var n = 0
                while try c.u8() != 0 { n += 1 }
                if version < 3 {
                    let padded = (n + 1 + 7) / 8 * 8
                    try c.seek(nameStart + padded)
                }
            }
            try c.skip(members * baseSize)
            return .enumeration(size: size, members: members)
        case 9:
            let base = try datatype(&c, path: path, depth: depth + 1)
            _ = base
            if bits0 & 0x0F == 1 { return .variableLengthString }
            return .other(typeClass: 9, size: size)
        default:
            return .other(typeClass: typeClass, size: size)
        }
    }

    /// Parses a dataspace message body.
    func dataspace(_ c: inout HDF5Cursor, path: String) throws(CheckpointError) -> HDF5Dataspace {
        let start = c.position
        let version = try c.u8()
        let rank = Int(try c.u8())
        let flags = try c.u8()
        var space = HDF5Dataspace()
        switch version {
        case 1:
            try c.skip(5)
        case 2:
            let type = try c.u8()
            if type == 2 { space.isNull = true }
            guard type <= 2 else { throw CheckpointError(.malformed, "dataspace at byte \(start) has type \(type)", member: path) }
        default:
            throw CheckpointError(.malformed, "dataspace at byte \(start) has version \(version)", offset: start, member: path)
        }
        guard rank <= Self.maxRank else {
            throw CheckpointError(.limitExceeded, "dataspace has rank \(rank) (limit \(Self.maxRank))", member: path)
        }
        var count = 1
        // The product of the non-zero dimensions too: strides are computed from it even when a
        // zero dimension makes the element count 0.
        var strideProduct = 1
        for _ in 0..<rank {
            let d = try c.length()
            guard d <= UInt64(Int.max) else { throw CheckpointError(.limitExceeded, "dimension \(d) too large", member: path) }
            space.dims.append(Int(d))
        }
        // Checked once every dimension is read, so that the error names the whole declared shape.
        for d in space.dims {
            let (p, o) = count.multipliedReportingOverflow(by: d)
            let (q, o2) = strideProduct.multipliedReportingOverflow(by: max(d, 1))
            guard !o, !o2 else { throw CheckpointError(.limitExceeded, "element count of shape \(space.dims) overflows", member: path) }
            count = p
            strideProduct = q
        }
        if flags & 1 != 0 { try c.skip(rank * lengthSize) }  // maximum dimensions
        if space.isNull {
            space.dims = []
            count = 0
        }
        space.count = count
        return space
    }

    /// The attributes of an object, in name order (compact ones from its header, dense ones from
    /// the fractal heap its attribute info message names).
    func attributes(of header: HDF5ObjectHeader, path: String) throws(CheckpointError) -> [HDF5Attribute] {
        var out: [HDF5Attribute] = []
        for message in header.all(Self.attributeMessage) {
            out.append(try attribute(message.body, at: message.offset, path: path))
        }
        if let info = header.first(Self.attributeInfoMessage) {
            var c = cursor(info, what: "attribute info message")
            let version = try c.u8()
            guard version == 0 else { throw CheckpointError(.unsupported, "unsupported HDF5 feature: attribute info version \(version)", member: path) }
            let flags = try c.u8()
            if flags & 1 != 0 { try c.skip(2) }
            let heap = try c.address()
            let nameIndex = try c.address()
            if let heapAt = try absolute(heap, "attribute fractal heap") {
                guard let indexAt = try absolute(nameIndex, "attribute name index") else {
                    throw CheckpointError(.malformed, "dense attribute storage without a name index", member: path)
                }
                let fractal = try fractalHeap(at: heapAt, path: path)
                try v2BTreeRecords(at: indexAt, expectedType: 8, path: path) { (record: HDF5Cursor) throws(CheckpointError) in
                    var r = record
                    let id = try r.slice(min(8, fractal.idLength), "heap ID")
                    let flags = try r.u8()
                    guard flags & 0x02 == 0 else {
                        throw CheckpointError(.unsupported, "unsupported HDF5 feature: a shared attribute message", member: path)
                    }
                    let object = try self.fractalHeapObject(fractal, id: id, path: path)
                    out.append(try self.attribute(object, at: object.offset - self.data.offset, path: path))
                    guard out.count <= Self.maxMessages else {
                        throw CheckpointError(.limitExceeded, "more than \(Self.maxMessages) attributes", member: path)
                    }
                }
            }
        }
        out.sort { Array($0.name.utf8).lexicographicallyPrecedes(Array($1.name.utf8)) }
        for i in out.indices.dropFirst() where out[i].name == out[i - 1].name {
            throw CheckpointError(.malformed, "two attributes named '\(out[i].name)'", member: path)
        }
        return out
    }

    /// An attribute message body (IV.A.2.m), versions 1-3.
    func attribute(_ body: ByteSlice, at offset: Int, path: String) throws(CheckpointError) -> HDF5Attribute {
        var c = HDF5Cursor(data, at: offset, end: offset + body.count, offsetSize: offsetSize, lengthSize: lengthSize, what: "attribute message")
        let version = try c.u8()
        let flags = try c.u8()
        let nameSize = Int(try c.u16())
        let typeSize = Int(try c.u16())
        let spaceSize = Int(try c.u16())
        guard (1...3).contains(version) else {
            throw CheckpointError(.malformed, "attribute message at byte \(offset) has version \(version)", offset: offset, member: path)
        }
        guard version == 1 || flags & 0x03 == 0 else {
            throw CheckpointError(.unsupported, "unsupported HDF5 feature: an attribute with a shared (committed) datatype or dataspace", member: path)
        }
        if version == 3 { try c.skip(1) }  // name character set
        func padded(_ n: Int) -> Int { version == 1 ? (n + 7) / 8 * 8 : n }
        let nameField = try c.slice(padded(nameSize), "attribute name")
        var nameBytes = try nameField.slice(0, nameSize).bytes
        if let nul = nameBytes.firstIndex(of: 0) { nameBytes = Array(nameBytes[..<nul]) }
        let name = String(decoding: nameBytes, as: UTF8.self)
        let where_ = path.isEmpty ? "attribute '\(name)'" : "\(path) attribute '\(name)'"
        let typeStart = c.position
        try c.need(padded(typeSize), "the datatype of \(where_)")
        var t = HDF5Cursor(data, at: typeStart, end: typeStart + typeSize, offsetSize: offsetSize, lengthSize: lengthSize, what: "datatype of \(where_)")
        let type = try datatype(&t, path: path)
        try c.skip(padded(typeSize))
        let spaceStart = c.position
        try c.need(padded(spaceSize), "the dataspace of \(where_)")
        var s = HDF5Cursor(data, at: spaceStart, end: spaceStart + spaceSize, offsetSize: offsetSize, lengthSize: lengthSize, what: "dataspace of \(where_)")
        let space = try dataspace(&s, path: path)
        try c.skip(padded(spaceSize))
        let (need, o) = space.count.multipliedReportingOverflow(by: type.storedSize(offsetSize: offsetSize))
        guard !o, need <= c.remaining else {
            throw CheckpointError(
                .truncated, "\(where_) holds \(space.count) values of \(type.storedSize(offsetSize: offsetSize)) bytes; its message has \(c.remaining) left",
                offset: c.position)
        }
        return HDF5Attribute(name: name, type: type, space: space, value: try c.slice(need))
    }

    /// Whether an attribute holds strings (fixed- or variable-length).
    static func isString(_ type: HDF5Datatype) -> Bool {
        switch type {
        case .string, .variableLengthString: return true
        default: return false
        }
    }

    /// The values of a string attribute (scalar or any shape), or nil when `attribute` is absent.
    /// Fixed-length strings lose their trailing NUL or space padding; an empty attribute (Keras
    /// writes an empty float array for a layer without weights) gives no strings.
    func strings(_ attribute: HDF5Attribute, path: String) throws(CheckpointError) -> [String] {
        let where_ = path.isEmpty ? "attribute '\(attribute.name)'" : "\(path) attribute '\(attribute.name)'"
        let n = attribute.space.count
        guard n <= 10_000_000 else { throw CheckpointError(.limitExceeded, "\(where_) has \(n) elements") }
        if n == 0 { return [] }
        switch attribute.type {
        case .string(let size):
            guard size > 0, size <= 1 << 20 else { throw CheckpointError(.limitExceeded, "\(where_) holds \(n) strings of \(size) bytes") }
            var out: [String] = []
            for i in 0..<n {
                var cell = try attribute.value.slice(i * size, size).bytes[...]
                if let nul = cell.firstIndex(of: 0) { cell = cell[cell.startIndex..<nul] }
                while let last = cell.last, last == 0x20 { cell = cell.dropLast() }
                out.append(String(decoding: cell, as: UTF8.self))
            }
            return out
        case .variableLengthString:
            var out: [String] = []
            let stride = 4 + offsetSize + 4
            for i in 0..<n {
                var c = HDF5Cursor(
                    attribute.value, at: i * stride, end: (i + 1) * stride, offsetSize: offsetSize, lengthSize: lengthSize, what: where_)
                let length = Int(try c.u32())
                let collection = try c.address()
                let index = Int(try c.u32())
                if length == 0 || collection == 0 {
                    out.append("")
                    continue
                }
                guard let at = try absolute(collection, "global heap collection") else {
                    out.append("")
                    continue
                }
                let objects = try globalHeap(at: at, path: path)
                guard let object = objects[index] else {
                    throw CheckpointError(.malformed, "\(where_): global heap collection at byte \(at) has no object \(index)", member: path)
                }
                guard length <= object.count else {
                    throw CheckpointError(
                        .malformed, "\(where_): a string of \(length) bytes in a global heap object of \(object.count)", member: path)
                }
                var bytes = try object.slice(0, length).bytes
                if let nul = bytes.firstIndex(of: 0) { bytes = Array(bytes[..<nul]) }
                out.append(String(decoding: bytes, as: UTF8.self))
            }
            return out
        default:
            throw CheckpointError(.malformed, "\(where_) is not a string attribute")
        }
    }

    /// The objects of the global heap collection (GCOL) at `address`, by index; parsed once.
    func globalHeap(at address: Int, path: String) throws(CheckpointError) -> [Int: ByteSlice] {
        if let cached = globalHeaps[address] { return cached }
        var c = try cursor(at: address, what: "global heap collection")
        try c.signature("GCOL")
        let version = try c.u8()
        guard version == 1 else { throw CheckpointError(.malformed, "global heap collection at byte \(address) has version \(version)", member: path) }
        try c.skip(3)
        let size = try c.length()
        let headerSize = 8 + lengthSize
        guard size >= UInt64(headerSize), size <= UInt64(data.count - address) else {
            throw CheckpointError(
                .truncated,
                "global heap collection at byte \(address) declares \(size) bytes; \(data.count - address) remain in the file",
                offset: address, member: path)
        }
        var h = try cursor(at: address + headerSize, length: Int(size) - headerSize, what: "global heap collection")
        var objects: [Int: ByteSlice] = [:]
        while h.remaining >= 8 + lengthSize {
            let index = Int(try h.u16())
            _ = try h.u16()  // reference count
            try h.skip(4)
            let objectSize = try h.length()
            if index == 0 { break }  // free space: the rest of the collection
            guard objectSize <= UInt64(h.remaining) else {
                throw CheckpointError(
                    .truncated, "global heap object \(index) at byte \(h.position) declares \(objectSize) bytes; its collection has \(h.remaining) left",
                    offset: h.position, member: path)
            }
            let object = try h.slice(Int(objectSize))
            guard objects[index] == nil else {
                throw CheckpointError(.malformed, "global heap collection at byte \(address) holds object \(index) twice", member: path)
            }
            objects[index] = object
            try h.skip(min(h.remaining, (8 - Int(objectSize) % 8) % 8))
        }
        globalHeaps[address] = objects
        return objects
    }
}

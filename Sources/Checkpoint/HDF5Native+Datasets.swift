import CZlib

/// Where a dataset's elements are stored (IV.A.2.i).
enum HDF5Layout {
    /// In the object header.
    case compact(ByteSlice)
    /// One block at an absolute offset (nil: never written, the fill value applies).
    case contiguous(address: Int?, size: UInt64)
    /// Chunks of `chunk` elements per dimension, indexed by a v1 B-tree at `btree`.
    case chunkedBTree(btree: Int?, chunk: [Int])
    /// A single chunk (layout 4, single-chunk index) of `size` stored bytes, or unfiltered.
    case singleChunk(address: Int?, chunk: [Int], filteredSize: UInt64?, mask: UInt32)
    /// Chunks stored one after another without an index (layout 4, implicit index).
    case implicit(address: Int?, chunk: [Int])
    /// Chunks listed in row-major order by a fixed array (layout 4, fixed array index).
    case fixedArray(address: Int?, chunk: [Int])
}

/// One filter of a pipeline.
struct HDF5Filter {
    /// Filter identifier (1 deflate, 2 shuffle, ...).
    let id: UInt16
    /// Whether the filter may be skipped when it fails.
    let optional: Bool
    /// Client data values.
    let values: [UInt32]
}

extension HDF5NativeFile {
    /// Reads the dataset at `header` as a tensor: a zero-copy window when stored contiguously (or
    /// compact), else the chunks decoded into one new buffer. `bfloat16` marks an opaque 2-byte
    /// dataset that Keras 3 tagged with `dtype="bfloat16"`.
    func tensor(_ header: HDF5ObjectHeader, path: String) throws(CheckpointError) -> (tensor: TensorData, byteOrder: ByteOrder) {
        if let cached = tensorCache[header.address] { return cached }
        let result = try readTensor(header, path: path)
        tensorCache[header.address] = result
        return result
    }

    private func readTensor(_ header: HDF5ObjectHeader, path: String) throws(CheckpointError) -> (tensor: TensorData, byteOrder: ByteOrder) {
        guard let typeMessage = header.first(Self.datatypeMessage), let spaceMessage = header.first(Self.dataspaceMessage),
            let layoutMessage = header.first(Self.layoutMessage)
        else {
            throw CheckpointError(.malformed, "dataset lacks a datatype, dataspace or layout message", member: path)
        }
        guard !typeMessage.isShared else {
            throw CheckpointError(.unsupported, "unsupported HDF5 feature: a committed (shared) datatype", member: path)
        }
        var tc = cursor(typeMessage, what: "datatype message")
        let type = try datatype(&tc, path: path)
        var sc = cursor(spaceMessage, what: "dataspace message")
        let space = try dataspace(&sc, path: path)
        let (dtype, order) = try elementType(type, header: header, path: path)
        guard type.storedSize(offsetSize: offsetSize) == dtype.byteSize else {
            throw CheckpointError(
                .malformed, "element type of \(type.storedSize(offsetSize: offsetSize)) bytes read as \(dtype.name)", member: path)
        }
        guard !space.isNull else {
            throw CheckpointError(.unsupported, "dataset has a null dataspace (no elements, no shape)", member: path)
        }
        let shape = space.dims
        let count = space.count
        let (byteCount, o) = count.multipliedReportingOverflow(by: dtype.byteSize)
        guard !o, byteCount <= data.count || byteCount == 0 else {
            throw CheckpointError(
                .truncated, "dataset of shape \(shape) needs \(o ? "overflow" : String(byteCount)) bytes; the file has \(data.count)",
                member: path)
        }
        let layout = try self.layout(layoutMessage, rank: shape.count, elementSize: dtype.byteSize, path: path)
        let filters = try header.first(Self.filterMessage).map { (m: HDF5Message) throws(CheckpointError) in try pipeline(m, path: path) } ?? []

        let bytes: ByteSlice
        switch layout {
        case .compact(let stored):
            guard stored.count >= byteCount else {
                throw CheckpointError(.truncated, "compact dataset holds \(stored.count) bytes; its shape needs \(byteCount)", member: path)
            }
            bytes = try stored.slice(0, byteCount)
        case .contiguous(let address, let size):
            guard filters.isEmpty else {
                throw CheckpointError(.malformed, "a contiguous dataset cannot have filters", member: path)
            }
            guard let address else {
                bytes = try filled(header, byteCount: byteCount, elementSize: dtype.byteSize, path: path)
                break
            }
            guard size >= UInt64(byteCount) else {
                throw CheckpointError(.malformed, "contiguous storage of \(size) bytes for a dataset of \(byteCount)", member: path)
            }
            guard byteCount <= data.count - address else {
                throw CheckpointError(
                    .truncated, "dataset data at byte \(address) needs \(byteCount) bytes; the file has \(data.count)", offset: address,
                    member: path)
            }
            bytes = try data.slice(address, byteCount)
        case .chunkedBTree, .singleChunk, .implicit, .fixedArray:
            bytes = try chunked(
                layout, header: header, shape: shape, byteCount: byteCount, elementSize: dtype.byteSize, filters: filters, path: path)
        }
        let storage = try StorageData(key: path, dtype: dtype, elementCount: count, byteOrder: order, bytes: bytes)
        let tensor = try TensorData(
            dtype: dtype, shape: shape, strides: TensorData.contiguousStrides(shape), storageOffset: 0, storage: storage)
        return (tensor, order)
    }

    /// The `DType` and byte order of an HDF5 element type.
    private func elementType(_ type: HDF5Datatype, header: HDF5ObjectHeader, path: String) throws(CheckpointError) -> (DType, ByteOrder) {
        switch type {
        case .floatingPoint(let size, let bigEndian, let esize, let msize):
            let order: ByteOrder = bigEndian ? .big : .little
            switch (size, esize, msize) {
            case (2, 5, 10): return (.float16, order)
            case (4, 8, 23): return (.float32, order)
            case (8, 11, 52): return (.float64, order)
            case (2, 8, 7): return (.bfloat16, order)
            default:
                throw CheckpointError(
                    .unsupported,
                    "floating-point type of \(size) bytes (exponent \(esize) bits, mantissa \(msize) bits) is not IEEE half, single or double",
                    member: path)
            }
        case .fixedPoint(let size, let signed, let bigEndian):
            let order: ByteOrder = bigEndian ? .big : .little
            switch (size, signed) {
            case (1, true): return (.int8, order)
            case (2, true): return (.int16, order)
            case (4, true): return (.int32, order)
            case (8, true): return (.int64, order)
            case (1, false): return (.uint8, order)
            case (2, false): return (.uint16, order)
            case (4, false): return (.uint32, order)
            case (8, false): return (.uint64, order)
            default: throw CheckpointError(.unsupported, "integer type of \(size) bytes", member: path)
            }
        case .enumeration(let size, let members):
            // h5py stores numpy bool as an enum {FALSE=0, TRUE=1} over int8.
            if size == 1, members == 2 { return (.bool, .little) }
            throw CheckpointError(.unsupported, "enumeration type of \(size) bytes", member: path)
        case .opaque(let size):
            if size == 2, let tag = try attributes(of: header, path: path).first(where: { $0.name == "dtype" }),
                Self.isString(tag.type), try strings(tag, path: path) == ["bfloat16"]
            {
                return (.bfloat16, .little)
            }
            throw CheckpointError(.unsupported, "opaque type of \(size) bytes without a dtype=\"bfloat16\" attribute", member: path)
        case .string, .variableLengthString:
            throw CheckpointError(.unsupported, "dataset holds strings, not numbers", member: path)
        case .other(let typeClass, _):
            if typeClass == 6 {
                throw CheckpointError(.unsupported, "dataset holds compound records (complex numbers?), not plain numbers", member: path)
            }
            throw CheckpointError(.unsupported, "dataset element type class \(typeClass) is not numeric", member: path)
        }
    }

    /// Parses a data layout message (versions 1-4).
    private func layout(_ message: HDF5Message, rank: Int, elementSize: Int, path: String) throws(CheckpointError) -> HDF5Layout {
        var c = cursor(message, what: "data layout message")
        let version = try c.u8()
        func chunkDims(_ dims: [UInt64]) throws(CheckpointError) -> [Int] {
            // The stored dimensionality is the dataset's rank plus one (the element size).
            guard dims.count == rank + 1, rank >= 1 else {
                throw CheckpointError(.malformed, "chunk dimensionality \(dims.count) for a dataset of rank \(rank)", member: path)
            }
            guard dims.last == UInt64(elementSize) else {
                throw CheckpointError(.malformed, "chunk element size \(dims.last ?? 0) for \(elementSize)-byte elements", member: path)
            }
            var out: [Int] = []
            for d in dims.dropLast() {
                guard d >= 1, d <= 1 << 32 else { throw CheckpointError(.malformed, "chunk dimension \(d)", member: path) }
                out.append(Int(d))
            }
            return out
        }
        switch version {
        case 1, 2:
            let dimensionality = Int(try c.u8())
            let layoutClass = try c.u8()
            try c.skip(5)
            var address: UInt64? = nil
            if layoutClass != 0 { address = try c.address() }
            var dims: [UInt64] = []
            for _ in 0..<dimensionality { dims.append(UInt64(try c.u32())) }
            switch layoutClass {
            case 0:
                let size = Int(try c.u32())
                return .compact(try c.slice(size, "compact data"))
            case 1:
                // These old messages store no byte size; the dataset's shape and the file bound it.
                return .contiguous(address: try absolute(address ?? undefinedAddress, "dataset data"), size: UInt64.max)
            case 2:
                let element = try c.u32()
                return .chunkedBTree(btree: try absolute(address ?? undefinedAddress, "chunk B-tree"), chunk: try chunkDims(dims + [UInt64(element)]))
            default:
                throw CheckpointError(.malformed, "data layout class \(layoutClass)", member: path)
            }
        case 3, 4, 5:
            // Version 5 (HDF5 2.0) is laid out as version 4 for the classes and indexes read here.
            let layoutClass = try c.u8()
            switch layoutClass {
            case 0:
                let size = Int(try c.u16())
                return .compact(try c.slice(size, "compact data"))
            case 1:
                let address = try c.address()
                let size = try c.length()
                return .contiguous(address: try absolute(address, "dataset data"), size: size)
            case 2 where version == 3:
                let dimensionality = Int(try c.u8())
                let address = try c.address()
                var dims: [UInt64] = []
                for _ in 0..<dimensionality { dims.append(UInt64(try c.u32())) }
                return .chunkedBTree(btree: try absolute(address, "chunk B-tree"), chunk: try chunkDims(dims))
            case 2:
                let flags = try c.u8()
                let dimensionality = Int(try c.u8())
                let encoded = Int(try c.u8())
                guard (1...8).contains(encoded) else { throw CheckpointError(.malformed, "chunk dimension size of \(encoded) bytes", member: path) }
                var dims: [UInt64] = []
                for _ in 0..<dimensionality { dims.append(try c.sized(encoded)) }
                let chunk = try chunkDims(dims)
                let index = try c.u8()
                switch index {
                case 1:
                    var filteredSize: UInt64? = nil
                    var mask: UInt32 = 0
                    if flags & 0x02 != 0 {
                        filteredSize = try c.length()
                        mask = try c.u32()
                    }
                    return .singleChunk(address: try absolute(try c.address(), "chunk"), chunk: chunk, filteredSize: filteredSize, mask: mask)
                case 2:
                    return .implicit(address: try absolute(try c.address(), "chunks"), chunk: chunk)
                case 3:
                    _ = try c.u8()  // page bits (the array header repeats them)
                    return .fixedArray(address: try absolute(try c.address(), "fixed array"), chunk: chunk)
                default:
                    let names = [3: "fixed array", 4: "extensible array", 5: "version 2 B-tree"]
                    throw CheckpointError(
                        .unsupported, "unsupported HDF5 feature: chunk index type \(index) (\(names[Int(index)] ?? "unknown"))", member: path)
                }
            case 3:
                throw CheckpointError(.unsupported, "unsupported HDF5 feature: virtual dataset layout", member: path)
            default:
                throw CheckpointError(.malformed, "data layout class \(layoutClass)", member: path)
            }
        default:
            throw CheckpointError(.malformed, "data layout message version \(version)", member: path)
        }
    }

    /// Parses a filter pipeline message (versions 1 and 2).
    private func pipeline(_ message: HDF5Message, path: String) throws(CheckpointError) -> [HDF5Filter] {
        var c = cursor(message, what: "filter pipeline message")
        let version = try c.u8()
        let count = Int(try c.u8())
        guard version == 1 || version == 2 else { throw CheckpointError(.malformed, "filter pipeline version \(version)", member: path) }
        guard count <= 32 else { throw CheckpointError(.malformed, "filter pipeline of \(count) filters", member: path) }
        if version == 1 { try c.skip(6) }
        var filters: [HDF5Filter] = []
        for _ in 0..<count {
            let id = try c.u16()
            var nameLength = 0
            if version == 1 || id >= 256 { nameLength = Int(try c.u16()) }
            let flags = try c.u16()
            let valueCount = Int(try c.u16())
            if version == 1 { nameLength = (nameLength + 7) / 8 * 8 }
            try c.skip(nameLength)
            var values: [UInt32] = []
            for _ in 0..<valueCount { values.append(try c.u32()) }
            if version == 1, valueCount % 2 == 1 { try c.skip(4) }
            filters.append(HDF5Filter(id: id, optional: flags & 1 != 0, values: values))
        }
        return filters
    }

    /// A buffer of `byteCount` bytes holding the dataset's fill value (zero unless one is stored).
    private func filled(_ header: HDF5ObjectHeader, byteCount: Int, elementSize: Int, path: String) throws(CheckpointError) -> ByteSlice {
        try allocate(byteCount, path: path)
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 1), alignment: 64)
        p.initializeMemory(as: UInt8.self, repeating: 0, count: max(byteCount, 1))
        let buffer = ByteBuffer(adopting: p, count: byteCount)
        if let value = try fillValue(header, path: path), value.count == elementSize, elementSize > 0 {
            var at = 0
            while at + elementSize <= byteCount {
                p.advanced(by: at).copyMemory(from: value.base, byteCount: elementSize)
                at += elementSize
            }
        }
        return buffer.all
    }

    /// The fill value a fill value message stores, if any.
    private func fillValue(_ header: HDF5ObjectHeader, path: String) throws(CheckpointError) -> ByteSlice? {
        guard let message = header.first(Self.fillValueMessage) else { return nil }
        var c = cursor(message, what: "fill value message")
        let version = try c.u8()
        switch version {
        case 1, 2:
            try c.skip(2)  // allocation and write times
            let defined = try c.u8()
            guard version == 1 || defined != 0 else { return nil }
            let size = Int(try c.u32())
            return size == 0 ? nil : try c.slice(size, "fill value")
        case 3:
            let flags = try c.u8()
            guard flags & 0x20 != 0 else { return nil }
            let size = Int(try c.u32())
            return size == 0 ? nil : try c.slice(size, "fill value")
        default:
            throw CheckpointError(.malformed, "fill value message version \(version)", member: path)
        }
    }

    /// Counts `n` bytes against the file's allocation budget.
    private func allocate(_ n: Int, path: String) throws(CheckpointError) {
        let (total, o) = allocatedBytes.addingReportingOverflow(n)
        guard !o, total <= allocationBudget else {
            throw CheckpointError(
                .limitExceeded, "decoded datasets would take more than \(allocationBudget) bytes (16 times the file)", member: path)
        }
        allocatedBytes = total
    }

    // MARK: Chunks

    /// One stored chunk: its first element's coordinates, stored bytes and filter mask.
    private struct Chunk {
        let offsets: [Int]
        let address: Int
        let size: Int
        let mask: UInt32
    }

    /// Decodes a chunked dataset into one new buffer of `byteCount` bytes (chunks never written
    /// hold the fill value).
    private func chunked(
        _ layout: HDF5Layout, header: HDF5ObjectHeader, shape: [Int], byteCount: Int, elementSize: Int, filters: [HDF5Filter],
        path: String
    ) throws(CheckpointError) -> ByteSlice {
        let chunkShape: [Int]
        var chunks: [Chunk] = []
        // Chunks per dimension, and the bytes of one chunk.
        func grid(_ chunk: [Int]) throws(CheckpointError) -> (counts: [Int], total: Int, bytes: Int) {
            guard chunk.count == shape.count else {
                throw CheckpointError(.malformed, "chunks of rank \(chunk.count) for a dataset of rank \(shape.count)", member: path)
            }
            var counts: [Int] = []
            var total = 1
            var bytes = elementSize
            for (d, c) in zip(shape, chunk) {
                let n = d == 0 ? 0 : (d - 1) / c + 1
                counts.append(n)
                let (t, o1) = total.multipliedReportingOverflow(by: n)
                let (b, o2) = bytes.multipliedReportingOverflow(by: c)
                guard !o1, !o2 else { throw CheckpointError(.limitExceeded, "chunk grid of \(shape) by \(chunk) overflows", member: path) }
                total = t
                bytes = b
            }
            // A chunk never needs more memory than the larger of the dataset (which the file backs)
            // and 1 MiB.
            guard bytes <= max(byteCount, 1 << 20) else {
                throw CheckpointError(.limitExceeded, "chunks of \(chunk) need \(bytes) bytes each, more than the dataset's \(byteCount)", member: path)
            }
            return (counts, total, bytes)
        }
        switch layout {
        case .chunkedBTree(let btree, let chunk):
            chunkShape = chunk
            _ = try grid(chunk)
            if let btree {
                var visited = Set<Int>()
                try chunkTree(at: btree, level: nil, rank: shape.count, visited: &visited, into: &chunks, path: path, depth: 0)
            }
        case .singleChunk(let address, let chunk, let filteredSize, let mask):
            chunkShape = chunk
            let g = try grid(chunk)
            guard g.total <= 1 else { throw CheckpointError(.malformed, "single-chunk index for \(g.total) chunks", member: path) }
            if let address {
                let size = filteredSize ?? UInt64(g.bytes)
                chunks.append(Chunk(offsets: shape.map { _ in 0 }, address: address, size: try hdf5Int(size, limit: data.count, "chunk size"), mask: mask))
            }
        case .implicit(let address, let chunk):
            chunkShape = chunk
            let g = try grid(chunk)
            guard filters.isEmpty else { throw CheckpointError(.malformed, "implicit chunk index with filters", member: path) }
            if let address {
                for i in 0..<g.total {
                    var rest = i
                    var offsets = [Int](repeating: 0, count: shape.count)
                    for d in stride(from: shape.count - 1, through: 0, by: -1) {
                        offsets[d] = rest % g.counts[d] * chunk[d]
                        rest /= g.counts[d]
                    }
                    let (at, o) = i.multipliedReportingOverflow(by: g.bytes)
                    guard !o, at <= data.count - address else {
                        throw CheckpointError(.truncated, "implicit chunk \(i) lies past the end of the file", member: path)
                    }
                    chunks.append(Chunk(offsets: offsets, address: address + at, size: g.bytes, mask: 0))
                }
            }
        case .fixedArray(let address, let chunk):
            chunkShape = chunk
            let g = try grid(chunk)
            if let address { chunks = try fixedArrayChunks(at: address, grid: g, chunk: chunk, filtered: !filters.isEmpty, path: path) }
        default:
            throw CheckpointError(.malformed, "not a chunked layout", member: path)
        }
        let g = try grid(chunkShape)
        guard chunks.count <= g.total else {
            throw CheckpointError(.malformed, "\(chunks.count) chunks stored for a grid of \(g.total)", member: path)
        }
        // Every chunk must be present in the file before anything is allocated.
        for chunk in chunks {
            guard chunk.size <= data.count - chunk.address else {
                throw CheckpointError(
                    .truncated, "chunk at byte \(chunk.address) needs \(chunk.size) bytes; the file has \(data.count)", offset: chunk.address,
                    member: path)
            }
            for (d, o) in chunk.offsets.enumerated() {
                guard o >= 0, o % chunkShape[d] == 0, o < max(shape[d], 1) else {
                    throw CheckpointError(.malformed, "chunk at \(chunk.offsets) does not fit a dataset of shape \(shape) in chunks of \(chunkShape)", member: path)
                }
            }
        }
        var seen = Set<[Int]>()
        for chunk in chunks where !seen.insert(chunk.offsets).inserted {
            throw CheckpointError(.malformed, "two chunks at \(chunk.offsets)", member: path)
        }
        let out = try filled(header, byteCount: byteCount, elementSize: elementSize, path: path)
        let target = UnsafeMutableRawPointer(mutating: out.base)
        for chunk in chunks {
            let stored = try data.slice(chunk.address, chunk.size)
            let decoded = try decode(stored, filters: filters, mask: chunk.mask, size: g.bytes, elementSize: elementSize, at: chunk.address, path: path)
            copy(decoded, chunkShape: chunkShape, origin: chunk.offsets, shape: shape, elementSize: elementSize, into: target)
        }
        return out
    }

    /// The chunks a fixed array index (FAHD + FADB) lists, one entry per chunk of the grid in
    /// row-major order; unallocated entries are skipped. Paged data blocks are not supported.
    private func fixedArrayChunks(at address: Int, grid g: (counts: [Int], total: Int, bytes: Int), chunk: [Int], filtered: Bool, path: String)
        throws(CheckpointError) -> [Chunk]
    {
        var c = try cursor(at: address, what: "fixed array header")
        try c.signature("FAHD")
        let version = try c.u8()
        let client = try c.u8()
        let entrySize = Int(try c.u8())
        let pageBits = Int(try c.u8())
        let count = try c.length()
        let block = try c.address()
        try verifyChecksum(from: address, to: c.position, what: "fixed array header")
        let sizeBytes = entrySize - offsetSize - 4
        guard version == 0, client == (filtered ? 1 : 0), entrySize == (filtered ? entrySize : offsetSize), !filtered || (1...8).contains(sizeBytes)
        else {
            throw CheckpointError(
                .malformed, "fixed array at byte \(address): version \(version), client \(client), \(entrySize)-byte entries", member: path)
        }
        guard count == UInt64(g.total) else {
            throw CheckpointError(.malformed, "fixed array at byte \(address) lists \(count) chunks; the grid has \(g.total)", member: path)
        }
        guard pageBits < 32, g.total <= 1 << pageBits else {
            throw CheckpointError(.unsupported, "unsupported HDF5 feature: a paged fixed array (\(g.total) chunks)", member: path)
        }
        guard let blockAt = try absolute(block, "fixed array data block") else { return [] }
        var b = try cursor(at: blockAt, what: "fixed array data block")
        try b.signature("FADB")
        guard try b.u8() == 0, try b.u8() == client else {
            throw CheckpointError(.malformed, "fixed array data block at byte \(blockAt) does not match its header", member: path)
        }
        _ = try b.address()  // header address
        try b.need(g.total * entrySize + 4, "\(g.total) entries")
        var chunks: [Chunk] = []
        for i in 0..<g.total {
            let raw = try b.address()
            var size = g.bytes
            var mask: UInt32 = 0
            if filtered {
                size = try hdf5Int(try b.sized(sizeBytes), limit: data.count, "filtered chunk size")
                mask = try b.u32()
            }
            guard let at = try absolute(raw, "chunk") else { continue }
            var rest = i
            var offsets = [Int](repeating: 0, count: chunk.count)
            for d in stride(from: chunk.count - 1, through: 0, by: -1) {
                offsets[d] = rest % g.counts[d] * chunk[d]
                rest /= g.counts[d]
            }
            chunks.append(Chunk(offsets: offsets, address: at, size: size, mask: mask))
        }
        try verifyChecksum(from: blockAt, to: b.position, what: "fixed array data block")
        return chunks
    }

    /// Walks a chunk index v1 B-tree (node type 1) to its chunks.
    private func chunkTree(
        at address: Int, level: Int?, rank: Int, visited: inout Set<Int>, into chunks: inout [Chunk], path: String, depth: Int
    ) throws(CheckpointError) {
        let (node, nodeLevel, entries) = try v1BTreeNode(
            at: address, type: 1, level: level, visited: &visited, depth: depth, what: "chunk B-tree", path: path)
        var c = node
        let keySize = 8 + 8 * (rank + 1)
        try c.need(entries * (keySize + offsetSize) + keySize, "\(entries) keys and children")
        for _ in 0..<entries {
            let size = Int(try c.u32())
            let mask = try c.u32()
            var offsets: [Int] = []
            for _ in 0...rank { offsets.append(try hdf5Int(try c.u64(), limit: Int.max, "chunk offset")) }
            guard let child = try absolute(try c.address(), "chunk") else {
                throw CheckpointError(.malformed, "chunk B-tree node at byte \(address) has an undefined child", member: path)
            }
            if nodeLevel == 0 {
                chunks.append(Chunk(offsets: Array(offsets.dropLast()), address: child, size: size, mask: mask))
                guard chunks.count <= Self.maxObjects else { throw CheckpointError(.limitExceeded, "more than \(Self.maxObjects) chunks", member: path) }
            } else {
                try chunkTree(at: child, level: nodeLevel - 1, rank: rank, visited: &visited, into: &chunks, path: path, depth: depth + 1)
            }
        }
    }

    /// Undoes a chunk's filters (last applied first) giving exactly `size` bytes.
    private func decode(
        _ stored: ByteSlice, filters: [HDF5Filter], mask: UInt32, size: Int, elementSize: Int, at offset: Int, path: String
    ) throws(CheckpointError) -> ByteSlice {
        var current = stored
        for (i, filter) in filters.enumerated().reversed() {
            if i < 32, mask & (1 << UInt32(i)) != 0 { continue }
            switch filter.id {
            case 1:
                current = try inflateZlib(current, size: size, at: offset, path: path)
            case 2:
                current = try unshuffle(current, elementSize: filter.values.first.map(Int.init) ?? elementSize, path: path)
            default:
                let names: [UInt16: String] = [3: "fletcher32", 4: "szip", 5: "nbit", 6: "scaleoffset", 32001: "blosc", 32004: "lz4", 32015: "zstd"]
                throw CheckpointError(
                    .unsupported, "unsupported HDF5 feature: filter \(filter.id)\(names[filter.id].map { " (\($0))" } ?? "")", member: path)
            }
        }
        guard current.count == size else {
            throw CheckpointError(.integrity, "chunk at byte \(offset) decodes to \(current.count) bytes; \(size) expected", offset: offset, member: path)
        }
        return current
    }

    /// Inflates a zlib stream (deflate filter) to exactly `size` bytes (the zlib header is checked;
    /// the Adler-32 trailer is not, the exact output size is).
    private func inflateZlib(_ stored: ByteSlice, size: Int, at offset: Int, path: String) throws(CheckpointError) -> ByteSlice {
        guard stored.count >= 6, stored[0] & 0x0F == 8, (UInt16(stored[0]) << 8 | UInt16(stored[1])) % 31 == 0, stored[1] & 0x20 == 0 else {
            throw CheckpointError(.malformed, "deflate chunk at byte \(offset) has no zlib header", offset: offset, member: path)
        }
        let out: ByteBuffer
        do throws(CheckpointError) {
            out = try Inflate.raw(try stored.slice(2, stored.count - 2), expectedSize: size)
        } catch {
            var e = error
            e.message = "deflate chunk at byte \(offset): " + e.message
            e.offset = offset
            throw e.inMember(path)
        }
        return out.all
    }

    /// Undoes the shuffle filter: byte `b` of element `i` was stored at `b * count + i`.
    private func unshuffle(_ stored: ByteSlice, elementSize: Int, path: String) throws(CheckpointError) -> ByteSlice {
        guard elementSize > 1, stored.count >= elementSize else { return stored }
        let count = stored.count / elementSize
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(stored.count, 1), alignment: 64)
        let src = stored.base
        for b in 0..<elementSize {
            for i in 0..<count {
                p.storeBytes(of: src.load(fromByteOffset: b * count + i, as: UInt8.self), toByteOffset: i * elementSize + b, as: UInt8.self)
            }
        }
        let tail = stored.count - count * elementSize
        if tail > 0 { (p + count * elementSize).copyMemory(from: src + count * elementSize, byteCount: tail) }
        return ByteBuffer(adopting: p, count: stored.count).all
    }

    /// Copies the part of a decoded chunk that lies inside the dataset into the row-major output.
    private func copy(
        _ chunk: ByteSlice, chunkShape: [Int], origin: [Int], shape: [Int], elementSize: Int, into out: UnsafeMutableRawPointer
    ) {
        let rank = shape.count
        // Elements of the chunk along each dimension that lie inside the dataset.
        let extent = (0..<rank).map { min(chunkShape[$0], shape[$0] - origin[$0]) }
        if extent.contains(where: { $0 <= 0 }) { return }
        var outStrides = [Int](repeating: elementSize, count: rank)
        var chunkStrides = [Int](repeating: elementSize, count: rank)
        for d in stride(from: rank - 2, through: 0, by: -1) {
            outStrides[d] = outStrides[d + 1] * shape[d + 1]
            chunkStrides[d] = chunkStrides[d + 1] * chunkShape[d + 1]
        }
        let rowBytes = extent[rank - 1] * elementSize
        var index = [Int](repeating: 0, count: rank)
        while true {
            var src = 0
            var dst = 0
            for d in 0..<rank {
                src += index[d] * chunkStrides[d]
                dst += (origin[d] + index[d]) * outStrides[d]
            }
            (out + dst).copyMemory(from: chunk.base + src, byteCount: rowBytes)
            // Next row: advance the index over every dimension but the last.
            var d = rank - 2
            while d >= 0 {
                index[d] += 1
                if index[d] < extent[d] { break }
                index[d] = 0
                d -= 1
            }
            if d < 0 { return }
        }
    }
}

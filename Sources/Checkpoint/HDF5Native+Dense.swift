/// A fractal heap header (FRHP), as far as finding managed and tiny objects needs it.
struct HDF5FractalHeap {
    /// Absolute offset of the header.
    let address: Int
    /// Bytes of a heap ID.
    let idLength: Int
    /// Blocks per row of the doubling table.
    let tableWidth: Int
    /// Size of the blocks of rows 0 and 1.
    let startingBlockSize: Int
    /// Largest direct block; larger rows hold indirect blocks.
    let maxDirectBlockSize: Int
    /// Absolute offset of the root block, nil for an empty heap.
    let rootBlock: Int?
    /// Rows of the root indirect block; 0 when the root is a direct block.
    let currentRows: Int
    /// Bytes of an offset in a managed heap ID.
    let offsetBytes: Int
    /// Bytes of a length in a managed heap ID.
    let lengthBytes: Int
    /// Bytes of a block's offset field in block headers.
    let blockOffsetBytes: Int
    /// Whether direct blocks end their header with a checksum.
    let checksummedDirectBlocks: Bool
    /// Rows of direct blocks in an indirect block, before rows of indirect blocks begin.
    let maxDirectRows: Int
}

extension HDF5NativeFile {
    /// floor(log2(n)) for n >= 1, 0 for 0.
    static func log2Floor(_ n: UInt64) -> Int { n == 0 ? 0 : 63 - n.leadingZeroBitCount }

    /// Reads a fractal heap header (III.G). Filtered heaps are not supported.
    func fractalHeap(at address: Int, path: String) throws(CheckpointError) -> HDF5FractalHeap {
        var c = try cursor(at: address, what: "fractal heap header")
        try c.signature("FRHP")
        let version = try c.u8()
        guard version == 0 else { throw CheckpointError(.unsupported, "unsupported HDF5 feature: fractal heap version \(version)", member: path) }
        let idLength = Int(try c.u16())
        let filterLength = try c.u16()
        let flags = try c.u8()
        let maxManaged = try c.u32()
        _ = try c.length()  // next huge object ID
        _ = try c.address()  // huge object B-tree
        _ = try c.length()  // free space
        _ = try c.address()  // free space manager
        for _ in 0..<8 { _ = try c.length() }  // managed space, allocated, iterator, counts and sizes
        let width = Int(try c.u16())
        let startSize = try c.length()
        let maxDirect = try c.length()
        let maxHeapBits = Int(try c.u16())
        _ = try c.u16()  // starting rows of the root indirect block
        let root = try c.address()
        let rows = Int(try c.u16())
        guard filterLength == 0 else {
            throw CheckpointError(.unsupported, "unsupported HDF5 feature: a filtered fractal heap at byte \(address)", member: path)
        }
        try verifyChecksum(from: address, to: c.position, what: "fractal heap header")
        func power(_ v: UInt64) -> Bool { v != 0 && v & (v - 1) == 0 }
        guard width > 0, power(UInt64(width)), power(startSize), power(maxDirect), startSize <= maxDirect, maxDirect <= 1 << 40,
            maxHeapBits > 0, maxHeapBits <= 64, idLength >= 2, idLength <= 64, rows <= 64
        else {
            throw CheckpointError(
                .malformed,
                "fractal heap at byte \(address) has table width \(width), block sizes \(startSize)-\(maxDirect), \(maxHeapBits)-bit offsets, "
                    + "\(idLength)-byte IDs, \(rows) root rows", member: path)
        }
        let offsetBytes = (maxHeapBits + 7) / 8
        let lengthBytes = min((Self.log2Floor(maxDirect) + 7) / 8, Self.log2Floor(UInt64(maxManaged)) / 8 + 1)
        return HDF5FractalHeap(
            address: address, idLength: idLength, tableWidth: width, startingBlockSize: Int(startSize), maxDirectBlockSize: Int(maxDirect),
            rootBlock: try absolute(root, "fractal heap root block"), currentRows: rows, offsetBytes: offsetBytes, lengthBytes: lengthBytes,
            blockOffsetBytes: offsetBytes, checksummedDirectBlocks: flags & 2 != 0,
            maxDirectRows: Self.log2Floor(maxDirect) - Self.log2Floor(startSize) + 2)
    }

    /// The object a heap ID names: tiny objects live in the ID, managed ones in a direct block.
    func fractalHeapObject(_ heap: HDF5FractalHeap, id: ByteSlice, path: String) throws(CheckpointError) -> ByteSlice {
        guard id.count >= 1 else { throw CheckpointError(.malformed, "empty fractal heap ID", member: path) }
        let first = id[0]
        switch (first >> 4) & 3 {
        case 0:
            var c = HDF5Cursor(id, at: 1, end: id.count, offsetSize: offsetSize, lengthSize: lengthSize, what: "fractal heap ID")
            let offset = try c.sized(heap.offsetBytes)
            let length = try c.sized(heap.lengthBytes)
            guard let root = heap.rootBlock else { throw CheckpointError(.malformed, "fractal heap at byte \(heap.address) is empty", member: path) }
            guard offset <= 1 << 62, length <= UInt64(data.count) else {
                throw CheckpointError(.malformed, "fractal heap ID names \(length) bytes at heap offset \(offset)", member: path)
            }
            let blockSize = heap.currentRows == 0 ? heap.startingBlockSize : 0
            return try managedObject(
                heap, offset: Int(offset), length: Int(length), block: root, rows: heap.currentRows, directSize: blockSize, path: path,
                depth: 0)
        case 2:
            if heap.idLength <= 18 {
                let length = Int(first & 0x0F) + 1
                return try id.slice(1, length)
            }
            guard id.count >= 2 else { throw CheckpointError(.malformed, "short tiny fractal heap ID", member: path) }
            let length = (Int(first & 0x0F) << 8 | Int(id[1])) + 1
            return try id.slice(2, length)
        default:
            throw CheckpointError(.unsupported, "unsupported HDF5 feature: a huge fractal heap object (ID type \((first >> 4) & 3))", member: path)
        }
    }

    /// Finds `[offset, offset + length)` of the heap's space below `block`: a direct block when `rows`
    /// is 0 (of `directSize` bytes), else an indirect block of `rows` rows.
    private func managedObject(
        _ heap: HDF5FractalHeap, offset: Int, length: Int, block: Int, rows: Int, directSize: Int, path: String, depth: Int
    ) throws(CheckpointError) -> ByteSlice {
        guard depth <= 16 else { throw CheckpointError(.limitExceeded, "fractal heap indirect blocks nested deeper than 16", member: path) }
        if rows == 0 {
            var c = try cursor(at: block, what: "fractal heap direct block")
            try c.signature("FHDB")
            guard offset >= 0, length <= directSize, offset <= directSize - length else {
                throw CheckpointError(
                    .malformed, "fractal heap object of \(length) bytes at \(offset) does not fit its \(directSize)-byte direct block",
                    member: path)
            }
            let header = 5 + offsetSize + heap.blockOffsetBytes + (heap.checksummedDirectBlocks ? 4 : 0)
            guard offset >= header else {
                throw CheckpointError(.malformed, "fractal heap object at block offset \(offset) overlaps the block header", member: path)
            }
            return try cursor(at: block, length: directSize, what: "fractal heap direct block").data.slice(block + offset, length)
        }
        var c = try cursor(at: block, what: "fractal heap indirect block")
        try c.signature("FHIB")
        try c.skip(1 + offsetSize + heap.blockOffsetBytes)
        let entries = c.position
        // Find the row and column holding `offset`.
        var rowStart = 0
        for row in 0..<rows {
            guard row <= 1 || Self.log2Floor(UInt64(heap.startingBlockSize)) + row - 1 < 56 else { break }
            let size = row == 0 ? heap.startingBlockSize : heap.startingBlockSize << (row - 1)
            let (rowBytes, o) = size.multipliedReportingOverflow(by: heap.tableWidth)
            guard !o, size > 0 else { break }
            if offset - rowStart < rowBytes {
                let column = (offset - rowStart) / size
                let index = row * heap.tableWidth + column
                var e = try cursor(at: entries + index * offsetSize, length: offsetSize, what: "fractal heap indirect block entry")
                guard let child = try absolute(try e.address(), "fractal heap block") else {
                    throw CheckpointError(.malformed, "fractal heap object at heap offset \(offset) lies in an unallocated block", member: path)
                }
                let within = offset - rowStart - column * size
                if row < heap.maxDirectRows {
                    return try managedObject(heap, offset: within, length: length, block: child, rows: 0, directSize: size, path: path, depth: depth + 1)
                }
                let childRows = Self.log2Floor(UInt64(size)) - Self.log2Floor(UInt64(heap.startingBlockSize * heap.tableWidth)) + 1
                return try managedObject(
                    heap, offset: within, length: length, block: child, rows: childRows, directSize: 0, path: path, depth: depth + 1)
            }
            let (next, o2) = rowStart.addingReportingOverflow(rowBytes)
            guard !o2 else { break }
            rowStart = next
        }
        throw CheckpointError(.malformed, "fractal heap offset \(offset) lies outside the heap's \(rows) rows", member: path)
    }

    // MARK: Version 2 B-trees

    /// Calls `body` with a cursor on each record of the v2 B-tree (III.A.2) at `address`.
    func v2BTreeRecords(at address: Int, expectedType: UInt8, path: String, _ body: (HDF5Cursor) throws(CheckpointError) -> Void)
        throws(CheckpointError)
    {
        var c = try cursor(at: address, what: "v2 B-tree header")
        try c.signature("BTHD")
        let version = try c.u8()
        let type = try c.u8()
        guard version == 0, type == expectedType else {
            throw CheckpointError(.malformed, "v2 B-tree at byte \(address) has version \(version), type \(type); type \(expectedType) expected", member: path)
        }
        let nodeSize = Int(try c.u32())
        let recordSize = Int(try c.u16())
        let depth = Int(try c.u16())
        try c.skip(2)
        let root = try c.address()
        let rootRecords = Int(try c.u16())
        _ = try c.length()
        try verifyChecksum(from: address, to: c.position, what: "v2 B-tree header")
        guard nodeSize > 10, recordSize > 0, nodeSize <= 1 << 24, depth <= 16 else {
            throw CheckpointError(.malformed, "v2 B-tree at byte \(address): node size \(nodeSize), record size \(recordSize), depth \(depth)", member: path)
        }
        // Per-depth record capacities and the sizes of their record counts (H5B2__hdr_init).
        func encSize(_ n: UInt64) -> Int { Self.log2Floor(n) / 8 + 1 }
        var maxRecords = [max(0, (nodeSize - 10) / recordSize)]
        var cumulative: [UInt64] = [UInt64(maxRecords[0])]
        var cumulativeSize = [0]
        let countSize = encSize(UInt64(maxRecords[0]))
        if depth > 0 {
            for d in 1...depth {
                let pointer = offsetSize + countSize + (d > 1 ? cumulativeSize[d - 1] : 0)
                let n = max(0, (nodeSize - (10 + pointer)) / (recordSize + pointer))
                maxRecords.append(n)
                let (m, o1) = UInt64(n + 1).multipliedReportingOverflow(by: cumulative[d - 1])
                let (s, o2) = m.addingReportingOverflow(UInt64(n))
                guard !o1, !o2 else { throw CheckpointError(.malformed, "v2 B-tree at byte \(address) is too deep for its node size", member: path) }
                cumulative.append(s)
                cumulativeSize.append(encSize(s))
            }
        }
        guard let rootAt = try absolute(root, "v2 B-tree root") else { return }
        var visited = Set<Int>()
        var records = 0
        func visit(_ node: Int, depth d: Int, count: Int) throws(CheckpointError) {
            guard visited.insert(node).inserted else {
                throw CheckpointError(.malformed, "v2 B-tree cycle: the node at byte \(node) is reached twice", offset: node, member: path)
            }
            guard count <= maxRecords[d] else {
                throw CheckpointError(.malformed, "v2 B-tree node at byte \(node) claims \(count) records; it holds at most \(maxRecords[d])", member: path)
            }
            records += count
            guard records <= Self.maxObjects else { throw CheckpointError(.limitExceeded, "v2 B-tree with more than \(Self.maxObjects) records", member: path) }
            var n = try cursor(at: node, length: nodeSize, what: "v2 B-tree node")
            try n.signature(d == 0 ? "BTLF" : "BTIN")
            let v = try n.u8()
            let t = try n.u8()
            guard v == 0, t == expectedType else { throw CheckpointError(.malformed, "v2 B-tree node at byte \(node) has version \(v), type \(t)", member: path) }
            var children: [(Int, Int)] = []
            for _ in 0..<count {
                let record = HDF5Cursor(data, at: n.position, end: n.position + recordSize, offsetSize: offsetSize, lengthSize: lengthSize, what: "v2 B-tree record")
                try n.need(recordSize, "a record")
                try body(record)
                try n.skip(recordSize)
            }
            if d > 0 {
                for _ in 0...count {
                    let child = try n.address()
                    let childCount = try n.sized(countSize)
                    if d > 1 { _ = try n.sized(cumulativeSize[d - 1]) }
                    guard let at = try absolute(child, "v2 B-tree child") else {
                        throw CheckpointError(.malformed, "v2 B-tree node at byte \(node) has an undefined child", member: path)
                    }
                    children.append((at, try hdf5Int(childCount, limit: 1 << 24, "v2 B-tree child record count")))
                }
            }
            try verifyChecksum(from: node, to: n.position, what: "v2 B-tree node")
            for (child, childCount) in children { try visit(child, depth: d - 1, count: childCount) }
        }
        try visit(rootAt, depth: depth, count: rootRecords)
    }
}

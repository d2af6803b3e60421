/// A link of a group: its name and where it points.
struct HDF5Link {
    /// Where a link points.
    enum Target: Equatable {
        /// An object in this file (absolute offset of its object header).
        case hard(Int)
        /// A path in this file (not followed).
        case soft
        /// An object in another file (not followed).
        case external
        /// A user-defined link type (not followed).
        case other(UInt8)
    }
    /// The link's name in its group.
    let name: String
    /// Where it points.
    let target: Target
}

/// What kind of object an object header describes.
enum HDF5ObjectKind { case group, dataset, other }

extension HDF5NativeFile {
    // Message types (specification IV.A.2).
    /// Dataspace (shape).
    static let dataspaceMessage: UInt16 = 0x01
    /// Link info (new-style group, dense link storage).
    static let linkInfoMessage: UInt16 = 0x02
    /// Datatype.
    static let datatypeMessage: UInt16 = 0x03
    /// Fill value.
    static let fillValueMessage: UInt16 = 0x05
    /// Link (compact new-style group).
    static let linkMessage: UInt16 = 0x06
    /// Data layout.
    static let layoutMessage: UInt16 = 0x08
    /// Filter pipeline.
    static let filterMessage: UInt16 = 0x0B
    /// Attribute.
    static let attributeMessage: UInt16 = 0x0C
    /// Symbol table (old-style group).
    static let symbolTableMessage: UInt16 = 0x11
    /// Attribute info (dense attribute storage).
    static let attributeInfoMessage: UInt16 = 0x15

    /// Group when it has a symbol table or link info message, dataset when it has a layout.
    func kind(of header: HDF5ObjectHeader) -> HDF5ObjectKind {
        if header.first(Self.symbolTableMessage) != nil || header.first(Self.linkInfoMessage) != nil { return .group }
        if header.first(Self.layoutMessage) != nil { return .dataset }
        return .other
    }

    /// The links of the group at `address`, in name order (byte order of their UTF-8 names, as
    /// libhdf5's name index), parsed once.
    func links(ofGroupAt address: Int, path: String) throws(CheckpointError) -> [HDF5Link] {
        if let cached = linkCache[address] { return cached }
        let header = try objectHeader(at: address, path: path)
        var links: [HDF5Link] = []
        if let stab = header.first(Self.symbolTableMessage) {
            var c = cursor(stab, what: "symbol table message")
            let tree = try c.address()
            let heap = try c.address()
            guard let treeAt = try absolute(tree, "group B-tree"), let heapAt = try absolute(heap, "local heap") else {
                throw CheckpointError(.malformed, "symbol table message at byte \(stab.offset) has an undefined address", member: path)
            }
            let names = try localHeap(at: heapAt, path: path)
            var visited = Set<Int>()
            try symbolTableTree(at: treeAt, level: nil, heap: names, visited: &visited, into: &links, path: path, depth: 0)
        }
        for message in header.all(Self.linkMessage) {
            try count(1, path: path)
            links.append(try link(message.body, at: message.offset, path: path))
        }
        if let info = header.first(Self.linkInfoMessage) {
            var c = cursor(info, what: "link info message")
            let version = try c.u8()
            guard version == 0 else { throw CheckpointError(.unsupported, "unsupported HDF5 feature: link info message version \(version)", member: path) }
            let flags = try c.u8()
            if flags & 1 != 0 { try c.skip(8) }
            let heap = try c.address()
            let nameIndex = try c.address()
            if let heapAt = try absolute(heap, "fractal heap") {
                guard let indexAt = try absolute(nameIndex, "link name index") else {
                    throw CheckpointError(.malformed, "dense link storage without a name index", member: path)
                }
                let fractal = try fractalHeap(at: heapAt, path: path)
                try v2BTreeRecords(at: indexAt, expectedType: 5, path: path) { (record: HDF5Cursor) throws(CheckpointError) in
                    var r = record
                    _ = try r.u32()  // name hash
                    let id = try r.slice(fractal.idLength, "heap ID")
                    let object = try self.fractalHeapObject(fractal, id: id, path: path)
                    try self.count(1, path: path)
                    links.append(try self.link(object, at: object.offset - self.data.offset, path: path))
                }
            }
        }
        links.sort { Array($0.name.utf8).lexicographicallyPrecedes(Array($1.name.utf8)) }
        for i in links.indices.dropFirst() where links[i].name == links[i - 1].name {
            throw CheckpointError(.malformed, "two links named '\(links[i].name)'", member: path)
        }
        linkCache[address] = links
        linkIndex[address] = Dictionary(links.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        return links
    }

    /// Counts links against the file-wide cap.
    func count(_ n: Int, path: String) throws(CheckpointError) {
        linksSeen += n
        guard linksSeen <= Self.maxObjects else {
            throw CheckpointError(.limitExceeded, "more than \(Self.maxObjects) links in the file", member: path)
        }
    }

    /// A link message body (IV.A.2.g).
    func link(_ body: ByteSlice, at offset: Int, path: String) throws(CheckpointError) -> HDF5Link {
        var c = HDF5Cursor(data, at: offset, end: offset + body.count, offsetSize: offsetSize, lengthSize: lengthSize, what: "link message")
        let version = try c.u8()
        guard version == 1 else { throw CheckpointError(.malformed, "link message at byte \(offset) has version \(version)", member: path) }
        let flags = try c.u8()
        var type: UInt8 = 0
        if flags & 0x08 != 0 { type = try c.u8() }
        if flags & 0x04 != 0 { try c.skip(8) }  // creation order
        if flags & 0x10 != 0 { try c.skip(1) }  // character set
        let nameLength = try c.sized(1 << Int(flags & 3))
        let name = String(decoding: try c.slice(try hdf5Int(nameLength, limit: c.remaining, "link name length"), "link name").raw, as: UTF8.self)
        switch type {
        case 0:
            guard let target = try absolute(try c.address(), "link '\(name)' target") else {
                throw CheckpointError(.malformed, "hard link '\(name)' has an undefined address", member: path)
            }
            return HDF5Link(name: name, target: .hard(target))
        case 1: return HDF5Link(name: name, target: .soft)
        case 64: return HDF5Link(name: name, target: .external)
        default: return HDF5Link(name: name, target: .other(type))
        }
    }

    // MARK: Old-style groups

    /// A local heap's data segment (IV.A.2... III.D).
    func localHeap(at address: Int, path: String) throws(CheckpointError) -> ByteSlice {
        var c = try cursor(at: address, what: "local heap")
        try c.signature("HEAP")
        let version = try c.u8()
        guard version == 0 else { throw CheckpointError(.malformed, "local heap at byte \(address) has version \(version)", member: path) }
        try c.skip(3)
        let size = try c.length()
        _ = try c.length()  // free list head
        guard let segment = try absolute(try c.address(), "local heap data segment") else {
            throw CheckpointError(.malformed, "local heap at byte \(address) has no data segment", member: path)
        }
        guard size <= UInt64(data.count - segment) else {
            throw CheckpointError(
                .truncated, "local heap data segment at byte \(segment) needs \(size) bytes; the file has \(data.count)", offset: segment,
                member: path)
        }
        return try data.slice(segment, Int(size))
    }

    /// The NUL-terminated string at `offset` of a local heap segment.
    func heapString(_ heap: ByteSlice, _ offset: UInt64, path: String) throws(CheckpointError) -> String {
        guard offset < UInt64(heap.count) else {
            throw CheckpointError(.malformed, "a link name offset \(offset) lies outside the local heap (\(heap.count) bytes)", member: path)
        }
        var end = Int(offset)
        while end < heap.count, heap[end] != 0 { end += 1 }
        guard end < heap.count else { throw CheckpointError(.malformed, "a link name in the local heap is not NUL-terminated", member: path) }
        return String(decoding: try heap.slice(Int(offset), end - Int(offset)).raw, as: UTF8.self)
    }

    /// Walks a group's v1 B-tree (node type 0) down to its symbol table nodes.
    private func symbolTableTree(
        at address: Int, level: Int?, heap: ByteSlice, visited: inout Set<Int>, into links: inout [HDF5Link], path: String, depth: Int
    ) throws(CheckpointError) {
        let (node, nodeLevel, entries) = try v1BTreeNode(
            at: address, type: 0, level: level, visited: &visited, depth: depth, what: "group B-tree", path: path)
        var c = node
        try c.need(entries * (lengthSize + offsetSize) + lengthSize, "\(entries) keys and children")
        for _ in 0..<entries {
            _ = try c.length()  // key: heap offset of the largest name in the child
            guard let child = try absolute(try c.address(), "group B-tree child") else {
                throw CheckpointError(.malformed, "group B-tree node at byte \(address) has an undefined child", member: path)
            }
            if nodeLevel == 0 {
                try symbolNode(at: child, heap: heap, visited: &visited, into: &links, path: path)
            } else {
                try symbolTableTree(at: child, level: nodeLevel - 1, heap: heap, visited: &visited, into: &links, path: path, depth: depth + 1)
            }
        }
    }

    /// A symbol table node (SNOD): its entries become links.
    private func symbolNode(at address: Int, heap: ByteSlice, visited: inout Set<Int>, into links: inout [HDF5Link], path: String)
        throws(CheckpointError)
    {
        guard visited.insert(address).inserted else {
            throw CheckpointError(.malformed, "symbol table node at byte \(address) is listed twice", offset: address, member: path)
        }
        var c = try cursor(at: address, what: "symbol table node")
        try c.signature("SNOD")
        let version = try c.u8()
        guard version == 1 else { throw CheckpointError(.malformed, "symbol table node at byte \(address) has version \(version)", member: path) }
        try c.skip(1)
        let symbols = Int(try c.u16())
        let entrySize = lengthSize + offsetSize + 24
        try c.need(symbols * entrySize, "\(symbols) symbol table entries")
        try count(symbols, path: path)
        for _ in 0..<symbols {
            let nameOffset = try c.length()
            let object = try c.address()
            let cacheType = try c.u32()
            try c.skip(4)
            let scratch = try c.slice(16)
            let name = try heapString(heap, nameOffset, path: path)
            if cacheType == 2 {
                _ = scratch  // soft link: the scratch pad holds the offset of its value in the local heap
                links.append(HDF5Link(name: name, target: .soft))
                continue
            }
            guard let target = try absolute(object, "object '\(name)'") else {
                throw CheckpointError(.malformed, "link '\(name)' has an undefined object header address", member: path)
            }
            links.append(HDF5Link(name: name, target: .hard(target)))
        }
    }
}

extension HDF5NativeFile {
    /// Opens a version 1 B-tree node ("TREE") of node type `type` (0: group, 1: chunk index) at
    /// `address`: checks the depth cap and that no node is reached twice, the node type, and the
    /// level when the parent gave one (`level` is nil at the root). Returns a cursor at the node's
    /// first key, with its level and entry count. `what` names the tree in errors.
    func v1BTreeNode(
        at address: Int, type: UInt8, level: Int?, visited: inout Set<Int>, depth: Int, what: String, path: String
    ) throws(CheckpointError) -> (cursor: HDF5Cursor, level: Int, entries: Int) {
        guard depth <= Self.maxDepth else { throw CheckpointError(.limitExceeded, "\(what) deeper than \(Self.maxDepth)", member: path) }
        guard visited.insert(address).inserted else {
            throw CheckpointError(.malformed, "\(what) cycle: the node at byte \(address) is reached twice", offset: address, member: path)
        }
        var c = try cursor(at: address, what: "\(what) node")
        try c.signature("TREE")
        let nodeType = try c.u8()
        let nodeLevel = Int(try c.u8())
        guard nodeType == type else { throw CheckpointError(.malformed, "\(what) node at byte \(address) has node type \(nodeType)", member: path) }
        if let level, nodeLevel != level {
            throw CheckpointError(.malformed, "\(what) node at byte \(address) has level \(nodeLevel); \(level) expected", member: path)
        }
        let entries = Int(try c.u16())
        _ = try c.address()  // left sibling
        _ = try c.address()  // right sibling
        return (c, nodeLevel, entries)
    }
}

/// What a format reader hands to the unwrapping step: the loaded object as inert values, and the
/// container facts for the provenance.
struct LoadedObject {
    var root: PickleValue
    var format: CheckpointFormat
    var formatVersion: [String: String] = [:]
    var byteOrder: ByteOrder = .little
    var archivePrefix: String?
    var notes: [String] = []
}

/// Pieces shared by the PyTorch readers: running one pickle with a persistent-id handler, and
/// decoding the storage persistent ids torch writes.
enum TorchPickle {
    /// Runs one pickle at `position` of `data` and freezes nothing yet; returns the graph and the end position.
    static func run(
        _ data: ByteSlice, at position: Int = 0, options: ReadOptions, allowOpaque: Bool? = nil,
        persistentLoad: @escaping Unpickler.PersistentLoad = { _, offset throws(CheckpointError) in
            throw CheckpointError(.malformed, "unexpected persistent id in a framing pickle", offset: offset)
        }
    ) throws(CheckpointError) -> (node: PickleNode, end: Int) {
        var u = Unpickler(
            data, position: position, limits: options.limits,
            allowOpaqueClasses: allowOpaque ?? options.allowModulePickle, persistentLoad: persistentLoad)
        let node = try u.load()
        return (node, u.position)
    }

    /// Freezes a graph into inert values, with a node budget scaled by the pickle's length.
    static func freeze(_ node: PickleNode, pickleLength: Int, options: ReadOptions) throws(CheckpointError) -> PickleValue {
        let (scaled, overflow) = pickleLength.multipliedReportingOverflow(by: options.limits.maxObjectsPerByte)
        var f = PickleFreezer(budget: overflow ? Int.max : scaled + 4096, maxDepth: options.limits.maxDepth)
        return try f.freeze(node)
    }

    /// A storage persistent id: `('storage', StorageClass, key, location, numel[, view_metadata])`.
    struct StorageID {
        var dtype: DType
        var storageClass: String
        var key: String
        var location: String
        var elementCount: Int
        /// Legacy view metadata: the object is storage `viewKey`, a window `[offset, offset+size)` of this one.
        var view: (viewKey: String, offset: Int, size: Int)?
    }

    /// Decodes a storage persistent id, or returns nil if `pid` is not one (a tuple whose first
    /// element is `'storage'`).
    static func storageID(_ pid: PickleNode, offset: Int) throws(CheckpointError) -> StorageID? {
        guard case .tuple(let t) = pid, let tag = t.first?.stringValue, tag == "storage" else { return nil }
        guard t.count == 5 || t.count == 6 else {
            throw CheckpointError(.malformed, "storage persistent id has \(t.count) fields (expected 5 or 6)", offset: offset)
        }
        guard case .global(let g) = t[1], case .storageClass(let dtype) = g.kind else {
            throw CheckpointError(.malformed, "storage persistent id names a \(t[1].typeName), not a storage class", offset: offset)
        }
        guard let key = keyString(t[2]) else {
            throw CheckpointError(.malformed, "storage key is a \(t[2].typeName)", offset: offset)
        }
        guard let location = t[3].stringValue else {
            throw CheckpointError(.malformed, "storage location is a \(t[3].typeName)", offset: offset)
        }
        guard let numel = t[4].intValue, numel >= 0, let count = Int(exactly: numel) else {
            throw CheckpointError(.malformed, "storage '\(key)' element count is not a non-negative int", offset: offset)
        }
        var view: (String, Int, Int)?
        if t.count == 6, case .tuple(let v) = t[5] {
            guard v.count == 3, let viewKey = keyString(v[0]), let o = v[1].intValue, let s = v[2].intValue,
                let oi = Int(exactly: o), let si = Int(exactly: s), oi >= 0, si >= 0
            else {
                throw CheckpointError(.malformed, "storage '\(key)' view metadata is not (key, offset, size)", offset: offset)
            }
            view = (viewKey, oi, si)
        }
        return StorageID(dtype: dtype, storageClass: g.qualifiedName, key: key, location: location, elementCount: count, view: view)
    }

    /// Storage and tensor keys are strings in modern files and ints in old ones; both become strings.
    static func keyString(_ node: PickleNode) -> String? {
        switch node {
        case .string(let s): return s
        case .bytes(let b): return String(decoding: b, as: UTF8.self)
        case .int(let v): return String(v)
        default: return nil
        }
    }

    /// Reads a legacy storage body: an 8-byte little-endian element count (torch writes it
    /// little-endian on every host), then that many elements. The count must equal `expected`.
    static func readLegacyStorage(_ reader: inout ByteReader, key: String, dtype: DType, expected: Int?) throws(CheckpointError) -> StorageData {
        let start = reader.position
        let raw = try reader.u64le("element count of storage '\(key)'")
        guard raw <= UInt64(Int.max) else {
            throw CheckpointError(.malformed, "storage '\(key)' declares \(raw) elements", offset: start)
        }
        var count = Int(raw)
        if let expected, expected != count {
            // Torch before the 2019 big-endian fixes wrote this count in host order on big-endian
            // hosts (the elements were already little-endian): accept that reading when it matches.
            if raw.byteSwapped == UInt64(expected) {
                count = expected
            } else {
                throw CheckpointError(.integrity, "storage '\(key)' declares \(count) elements but its persistent id says \(expected)", offset: start)
            }
        }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow, bytes <= reader.remaining else {
            throw CheckpointError(.truncated, "storage '\(key)' needs \(overflow ? "overflowing" : String(bytes)) bytes, \(reader.remaining) present", offset: start)
        }
        let slice = try reader.slice(bytes, "storage '\(key)'")
        do throws(CheckpointError) {
            return try StorageData(key: key, dtype: dtype, elementCount: count, byteOrder: .little, bytes: slice)
        } catch {
            var e = error
            e.offset = start
            throw e
        }
    }

    /// Attaches each storage's bytes, resolving legacy storage views (a storage that is a window of
    /// another) against their roots.
    static func attach(_ refs: [String: StorageRef], data: [String: StorageData]) throws(CheckpointError) {
        for (key, ref) in refs where ref.data == nil {
            if let d = data[key] {
                guard d.elementCount == ref.elementCount || ref.view != nil else {
                    throw CheckpointError(.integrity, "storage '\(key)' has \(d.elementCount) elements but its persistent id says \(ref.elementCount)")
                }
                ref.data = d
            } else if let view = ref.view, let root = data[view.rootKey] {
                let size = ref.dtype.byteSize
                let (start, o1) = view.offset.multipliedReportingOverflow(by: size)
                let (length, o2) = view.size.multipliedReportingOverflow(by: size)
                guard !o1, !o2 else { throw CheckpointError(.malformed, "storage view '\(key)' overflows") }
                let window: ByteSlice
                do throws(CheckpointError) { window = try root.bytes.slice(start, length) } catch {
                    throw CheckpointError(.malformed, "storage view '\(key)' [\(view.offset), +\(view.size)) lies outside storage '\(view.rootKey)'")
                }
                ref.data = try StorageData(key: key, dtype: ref.dtype, elementCount: view.size, byteOrder: root.byteOrder, bytes: window)
            } else {
                throw CheckpointError(.malformed, "storage '\(key)' is referenced but not present in the file")
            }
        }
    }
}

/// Reads PyTorch's oldest format (torch <= 0.1.9; torchvision's first ResNet files): a tar with
/// members `storages`, `tensors` and `pickle` (FORMATS.md §1.5), following torch's reader contract.
enum LegacyTarReader {
    static func read(_ data: ByteSlice, options: ReadOptions) throws(CheckpointError) -> LoadedObject {
        let tar = try TarArchive(data)
        // torch never writes such names; refuse them rather than pass them on to anything that extracts.
        if let unsafe = tar.entries.first(where: \.hasUnsafeName) {
            throw CheckpointError(
                .malformed,
                "unsafe member name \(String(reflecting: unsafe.name)) (absolute, '..', backslash, drive letter or NUL)",
                offset: unsafe.headerOffset)
        }
        func member(_ name: String) throws(CheckpointError) -> ByteSlice {
            guard let m = tar.member(named: name) else {
                throw CheckpointError(.malformed, "legacy tar has no '\(name)' member (members: \(tar.entries.map(\.name).joined(separator: ", ")))")
            }
            return m.data
        }

        // storages: count, then per storage a (key, location, StorageClass) pickle, an 8-byte
        // element count and the elements; then a pickled list of views (target, root, offset, numel).
        var refs: [String: StorageRef] = [:]
        var stored: [String: StorageData] = [:]
        let storages = try member("storages")
        do throws(CheckpointError) {
            var (node, position) = try TorchPickle.run(storages, options: options, allowOpaque: false)
            guard let count = node.intValue, count >= 0, count <= Int64(storages.count) else {
                throw CheckpointError(.malformed, "storage count is not a plausible int (\(node.typeName))", offset: 0)
            }
            for _ in 0..<count {
                let headerStart = position
                (node, position) = try TorchPickle.run(storages, at: position, options: options, allowOpaque: false)
                guard case .tuple(let t) = node, t.count == 3, let key = TorchPickle.keyString(t[0]), let location = t[1].stringValue,
                    case .global(let g) = t[2], case .storageClass(let dtype) = g.kind, dtype != .untyped
                else {
                    throw CheckpointError(.malformed, "storage header is not (key, location, StorageClass)", offset: headerStart)
                }
                guard stored[key] == nil else { throw CheckpointError(.malformed, "storage '\(key)' appears twice", offset: headerStart) }
                var reader = ByteReader(storages, position: position)
                let s = try TorchPickle.readLegacyStorage(&reader, key: key, dtype: dtype, expected: nil)
                position = reader.position
                stored[key] = s
                refs[key] = StorageRef(key: key, dtype: dtype, elementCount: s.elementCount, location: location)
            }
            let viewsStart = position
            (node, position) = try TorchPickle.run(storages, at: position, options: options, allowOpaque: false)
            guard case .list(let views) = node else {
                throw CheckpointError(.malformed, "storage view list is a \(node.typeName)", offset: viewsStart)
            }
            for item in views.items {
                guard case .tuple(let v) = item, v.count == 4, let target = TorchPickle.keyString(v[0]),
                    let rootKey = TorchPickle.keyString(v[1]), let root = refs[rootKey],
                    let o = v[2].intValue, let n = v[3].intValue, let offset = Int(exactly: o), let size = Int(exactly: n),
                    offset >= 0, size >= 0
                else {
                    throw CheckpointError(.malformed, "storage view is not (target, known root, offset, numel)", offset: viewsStart)
                }
                refs[target] = StorageRef(key: target, dtype: root.dtype, elementCount: size, location: root.location, view: (rootKey, offset, size))
            }
            try TorchPickle.attach(refs, data: stored)
        } catch {
            throw error.inMember("storages")
        }

        // tensors: count, then per tensor a (key, storage key, TensorClass) pickle and a binary
        // header: int32 ndim, 4 pad bytes, ndim int64 sizes, ndim int64 strides, int64 offset.
        var tensors: [String: TensorView] = [:]
        let tensorBytes = try member("tensors")
        do throws(CheckpointError) {
            var (node, position) = try TorchPickle.run(tensorBytes, options: options, allowOpaque: false)
            guard let count = node.intValue, count >= 0, count <= Int64(tensorBytes.count) else {
                throw CheckpointError(.malformed, "tensor count is not a plausible int (\(node.typeName))", offset: 0)
            }
            for _ in 0..<count {
                let headerStart = position
                (node, position) = try TorchPickle.run(tensorBytes, at: position, options: options, allowOpaque: false)
                guard case .tuple(let t) = node, t.count == 3, let key = TorchPickle.keyString(t[0]),
                    let storageKey = TorchPickle.keyString(t[1])
                else {
                    throw CheckpointError(.malformed, "tensor header is not (key, storage key, type)", offset: headerStart)
                }
                guard let storage = refs[storageKey] else {
                    throw CheckpointError(.malformed, "tensor '\(key)' names unknown storage '\(storageKey)'", offset: headerStart)
                }
                var reader = ByteReader(tensorBytes, position: position)
                let ndim = Int32(bitPattern: try reader.u32le("tensor rank"))
                guard ndim >= 0, ndim <= 64 else {
                    throw CheckpointError(.malformed, "tensor '\(key)' has rank \(ndim)", offset: position)
                }
                try reader.skip(4)
                var shape: [Int] = [], strides: [Int] = []
                for _ in 0..<ndim { shape.append(Int(Int64(bitPattern: try reader.u64le("tensor size")))) }
                for _ in 0..<ndim { strides.append(Int(Int64(bitPattern: try reader.u64le("tensor stride")))) }
                let offset = Int(Int64(bitPattern: try reader.u64le("storage offset")))
                tensors[key] = TensorView(storage: storage, dtype: storage.dtype, offset: offset, shape: shape, strides: strides, pickleOffset: position)
                position = reader.position
            }
            for t in tensors.values { _ = try t.tensor() }
        } catch {
            throw error.inMember("tensors")
        }

        // pickle: the object; persistent ids are tensor (or storage) keys.
        let pickle = try member("pickle")
        let object: PickleNode
        do throws(CheckpointError) {
            let load: Unpickler.PersistentLoad = { pid, offset throws(CheckpointError) in
                if case .tuple = pid {
                    throw CheckpointError(.disallowedGlobal, "the file pickles a whole module with its source code; use --allow-module-pickle", offset: offset)
                }
                guard let key = TorchPickle.keyString(pid) else {
                    throw CheckpointError(.malformed, "persistent id is a \(pid.typeName)", offset: offset)
                }
                if let t = tensors[key] { return .tensor(t) }
                if let s = refs[key] { return .storage(s) }
                throw CheckpointError(.malformed, "persistent id '\(key)' names no tensor or storage", offset: offset)
            }
            (object, _) = try TorchPickle.run(pickle, options: options, allowOpaque: options.allowModulePickle, persistentLoad: load)
        } catch {
            throw error.inMember("pickle")
        }
        var notes: [String] = []
        if let info = tar.member(named: "sys_info") {
            if let (node, _) = try? TorchPickle.run(info.data, options: options, allowOpaque: false), case .dict(let d) = node,
                let i = d.keys.firstIndex(where: { $0.stringValue == "little_endian" }), case .bool(false) = d.values[i]
            {
                notes.append("sys_info says a big-endian host wrote it; torch stores storages little-endian regardless")
            }
        }
        let root: PickleValue
        do throws(CheckpointError) {
            root = try TorchPickle.freeze(object, pickleLength: pickle.count, options: options)
        } catch {
            throw error.inMember("pickle")
        }
        return LoadedObject(root: root, format: .torchLegacyTar, formatVersion: ["members": tar.entries.map(\.name).joined(separator: ",")], byteOrder: .little, notes: notes)
    }
}

/// Reads PyTorch's legacy magic-number stream (torch 0.1.10 to 1.5, and
/// `_use_new_zipfile_serialization=False`): five pickles — magic number, protocol version 1001,
/// `sys_info`, the object, the sorted list of storage keys — then, per key in that order, an 8-byte
/// little-endian element count and the storage's raw little-endian elements (FORMATS.md §1.4).
enum LegacyStreamReader {
    static let magicNumber: [UInt8] = [0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19]

    static func read(_ data: ByteSlice, options: ReadOptions) throws(CheckpointError) -> LoadedObject {
        var (node, position) = try TorchPickle.run(data, options: options, allowOpaque: false)
        guard case .bigInt(let magic) = node, magic == magicNumber else {
            throw CheckpointError(.malformed, "legacy stream does not start with the torch magic number", offset: 0)
        }
        (node, position) = try TorchPickle.run(data, at: position, options: options, allowOpaque: false)
        guard let version = node.intValue else {
            throw CheckpointError(.malformed, "legacy protocol version is a \(node.typeName)", offset: position)
        }
        guard version == 1001 else {
            throw CheckpointError(.unsupported, "legacy protocol version \(version) (only 1001 exists)", offset: position)
        }
        let sysInfoStart = position
        (node, position) = try TorchPickle.run(data, at: position, options: options, allowOpaque: false)
        guard case .dict(let sysInfo) = node else {
            throw CheckpointError(.malformed, "legacy sys_info is a \(node.typeName), not a dict", offset: sysInfoStart)
        }
        var notes: [String] = []
        var formatVersion = ["protocol": String(version)]
        for (k, v) in zip(sysInfo.keys, sysInfo.values) {
            guard let key = k.stringValue else { continue }
            if key == "little_endian", case .bool(let little) = v {
                formatVersion["sys_info.little_endian"] = little ? "True" : "False"
                if !little { notes.append("written on a big-endian host; torch stores legacy storages little-endian regardless") }
            }
            if key == "type_sizes", case .dict(let sizes) = v {
                for (sk, sv) in zip(sizes.keys, sizes.values) {
                    if let name = sk.stringValue, let size = sv.intValue { formatVersion["sys_info.\(name)"] = String(size) }
                }
            }
        }

        // The object: storages are named by 6-tuple persistent ids; views add a second key.
        var refs: [String: StorageRef] = [:]
        let objectStart = position
        let load: Unpickler.PersistentLoad = { pid, offset throws(CheckpointError) in
            if case .tuple(let t) = pid, t.first?.stringValue == "module" {
                // ('module', class, source_file, source): torch returns the class (and compares sources).
                if options.allowModulePickle, t.count >= 2, case .global = t[1] { return t[1] }
                throw CheckpointError(
                    .disallowedGlobal,
                    "the file pickles a whole module with its source code ('module' persistent id); use --allow-module-pickle to harvest its tensors",
                    offset: offset)
            }
            guard let id = try TorchPickle.storageID(pid, offset: offset) else {
                throw CheckpointError(.malformed, "persistent id is a \(pid.typeName), not a storage id", offset: offset)
            }
            let root: StorageRef
            if let existing = refs[id.key] {
                guard existing.dtype == id.dtype else {
                    throw CheckpointError(.malformed, "storage '\(id.key)' is viewed as both \(existing.dtype.name) and \(id.dtype.name)", offset: offset)
                }
                root = existing
            } else {
                root = StorageRef(key: id.key, dtype: id.dtype, elementCount: id.elementCount, location: id.location)
                refs[id.key] = root
            }
            guard let view = id.view else { return .storage(root) }
            if let existing = refs[view.viewKey] { return .storage(existing) }
            let v = StorageRef(
                key: view.viewKey, dtype: id.dtype, elementCount: view.size, location: id.location,
                view: (rootKey: id.key, offset: view.offset, size: view.size))
            refs[view.viewKey] = v
            return .storage(v)
        }
        let object: PickleNode
        (object, position) = try TorchPickle.run(
            data, at: position, options: options, allowOpaque: options.allowModulePickle, persistentLoad: load)
        let objectLength = position - objectStart

        let keysStart = position
        (node, position) = try TorchPickle.run(data, at: position, options: options, allowOpaque: false)
        guard case .list(let keyList) = node else {
            throw CheckpointError(.malformed, "legacy storage key list is a \(node.typeName)", offset: keysStart)
        }
        var reader = ByteReader(data, position: position)
        var stored: [String: StorageData] = [:]
        for item in keyList.items {
            guard let key = TorchPickle.keyString(item) else {
                throw CheckpointError(.malformed, "storage key is a \(item.typeName)", offset: keysStart)
            }
            guard let ref = refs[key], ref.view == nil else {
                throw CheckpointError(.malformed, "storage '\(key)' in the key list is not used by the object", offset: reader.position)
            }
            guard stored[key] == nil else {
                throw CheckpointError(.malformed, "storage '\(key)' listed twice", offset: reader.position)
            }
            stored[key] = try TorchPickle.readLegacyStorage(&reader, key: key, dtype: ref.dtype, expected: ref.elementCount)
        }
        if reader.remaining > 0 { notes.append("\(reader.remaining) bytes after the last storage were ignored") }
        try TorchPickle.attach(refs, data: stored)
        let root = try TorchPickle.freeze(object, pickleLength: objectLength, options: options)
        return LoadedObject(root: root, format: .torchLegacyStream, formatVersion: formatVersion, byteOrder: .little, notes: notes)
    }
}

/// Paths and attributes by name: what `HDF5Reader` asks of a file.
extension HDF5NativeFile {
    /// The root group's object header.
    func root() throws(CheckpointError) -> HDF5ObjectHeader {
        let header = try objectHeader(at: rootAddress, path: "/")
        guard kind(of: header) == .group else { throw CheckpointError(.malformed, "the root object is not a group", member: "/") }
        return header
    }

    /// Names of the links in `group`, in name order.
    func children(_ group: HDF5ObjectHeader, path: String) throws(CheckpointError) -> [String] {
        try links(ofGroupAt: group.address, path: path).map(\.name)
    }

    /// The object the hard link `name` in `group` points to, with its kind; nil when there is no
    /// such link. Soft, external and user-defined links are refused (they could name other files).
    func child(_ name: String, in group: HDF5ObjectHeader, path: String) throws(CheckpointError) -> (HDF5ObjectHeader, HDF5ObjectKind)? {
        guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else { return nil }
        if linkIndex[group.address] == nil { _ = try links(ofGroupAt: group.address, path: path) }
        guard let link = linkIndex[group.address]?[name] else { return nil }
        switch link.target {
        case .hard(let address):
            let header = try objectHeader(at: address, path: path.isEmpty ? name : path + "/" + name)
            return (header, kind(of: header))
        case .soft:
            throw CheckpointError(.unsupported, "'\(name)' is a soft link; only hard links are followed", member: path)
        case .external:
            throw CheckpointError(.unsupported, "'\(name)' is an external link; only hard links are followed", member: path)
        case .other(let type):
            throw CheckpointError(.unsupported, "'\(name)' is a user-defined link (type \(type)); only hard links are followed", member: path)
        }
    }

    /// What the link `name` in `group` points to; nil when there is no such link.
    func kind(of name: String, in group: HDF5ObjectHeader, path: String) throws(CheckpointError) -> HDF5ObjectKind? {
        try child(name, in: group, path: path)?.1
    }

    /// The group `name` (one link) inside `group`, nil if absent or not a group.
    func group(_ name: String, in group: HDF5ObjectHeader, path: String) throws(CheckpointError) -> HDF5ObjectHeader? {
        guard let (header, kind) = try child(name, in: group, path: path), kind == .group else { return nil }
        return header
    }

    /// Follows a `/`-separated path of hard links from `group` to a group or dataset.
    func resolve(_ relative: String, from group: HDF5ObjectHeader, path: String) throws(CheckpointError) -> (
        header: HDF5ObjectHeader, kind: HDF5ObjectKind
    )? {
        let parts = relative.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        guard !parts.isEmpty, parts.count <= Self.maxDepth else { return nil }
        var current = group
        for (i, part) in parts.enumerated() {
            guard let (header, kind) = try child(part, in: current, path: path) else { return nil }
            if i == parts.count - 1 { return kind == .other ? nil : (header, kind) }
            guard kind == .group else { return nil }
            current = header
        }
        return nil
    }

    /// The attribute called `name` of `object`, if any.
    func attribute(_ object: HDF5ObjectHeader, _ name: String, path: String) throws(CheckpointError) -> HDF5Attribute? {
        if attributeIndex[object.address] == nil {
            let all = try attributes(of: object, path: path)
            attributeIndex[object.address] = Dictionary(all.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        }
        return attributeIndex[object.address]?[name]
    }

    /// Whether `object` has an attribute called `name`.
    func hasAttribute(_ object: HDF5ObjectHeader, _ name: String, path: String) throws(CheckpointError) -> Bool {
        try attribute(object, name, path: path) != nil
    }

    /// A string attribute (scalar or any shape; fixed- or variable-length) as a list; nil if absent.
    func strings(_ object: HDF5ObjectHeader, _ name: String, path: String) throws(CheckpointError) -> [String]? {
        guard let attr = try attribute(object, name, path: path) else { return nil }
        return try strings(attr, path: path)
    }

    /// The attribute `name`, or its chunks `name0`, `name1`, ... concatenated, as Keras writes
    /// attributes larger than an object header holds (`load_attributes_from_hdf5_group`).
    func chunkedStrings(_ object: HDF5ObjectHeader, _ name: String, path: String) throws(CheckpointError) -> [String]? {
        if let whole = try strings(object, name, path: path) { return whole }
        var out: [String] = []
        var chunk = 0
        while let part = try strings(object, "\(name)\(chunk)", path: path) {
            out += part
            chunk += 1
            guard chunk < 100_000 else {
                throw CheckpointError(.limitExceeded, "attribute '\(name)' in more than 100000 chunks", member: path)
            }
        }
        return chunk == 0 ? nil : out
    }
}

import CHDF5
import Foundation

/// An HDF5 file opened read-only from bytes already in memory (usually the memory-mapped file),
/// without copying them: libhdf5 reads the image in place. Contiguous, unfiltered datasets become
/// zero-copy windows into the same bytes (`H5Dget_offset`); anything else is read by libhdf5.
///
/// Every method must run inside `HDF5Library.locked`, and the value must not outlive that call.
/// Only hard links are followed: soft and external links (which could name other files) are refused.
struct HDF5File {
    let data: ByteSlice
    let file: HDF5Handle
    /// Objects visited so far, capped by `limits`.
    private var visited = 0
    static let maxObjects = 1_000_000
    static let maxDepth = 64
    static let maxRank = 32

    init(_ data: ByteSlice) throws(CheckpointError) {
        self.data = data
        let flags = chdf5_LT_FILE_IMAGE_DONT_COPY() | chdf5_LT_FILE_IMAGE_DONT_RELEASE()
        let id = H5LTopen_file_image(UnsafeMutableRawPointer(mutating: data.base), data.count, flags)
        file = try HDF5Handle.check(id, "libhdf5 cannot open the file image", close: H5Fclose)
    }

    /// The root group.
    func root() throws(CheckpointError) -> HDF5Handle {
        try HDF5Handle.check(H5Gopen2(file.id, "/", chdf5_P_DEFAULT()), "cannot open the root group", close: H5Gclose)
    }

    // MARK: Links

    /// Names of the links in `group`, in name order.
    mutating func children(_ group: HDF5Handle, path: String) throws(CheckpointError) -> [String] {
        var info = H5G_info_t()
        guard H5Gget_info(group.id, &info) >= 0 else { throw HDF5Library.failure("cannot list group", member: path) }
        guard info.nlinks <= UInt64(Self.maxObjects - visited) else {
            throw CheckpointError(
                .limitExceeded, "group has \(info.nlinks) links; more than \(Self.maxObjects) objects in the file", member: path)
        }
        visited += Int(info.nlinks)
        var names: [String] = []
        for i in 0..<info.nlinks {
            let n = H5Lget_name_by_idx(group.id, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, chdf5_P_DEFAULT())
            guard n >= 0, n < 65536 else { throw HDF5Library.failure("cannot read link name \(i)", member: path) }
            var buffer = [CChar](repeating: 0, count: Int(n) + 1)
            guard H5Lget_name_by_idx(group.id, ".", H5_INDEX_NAME, H5_ITER_INC, i, &buffer, Int(n) + 1, chdf5_P_DEFAULT()) >= 0 else {
                throw HDF5Library.failure("cannot read link name \(i)", member: path)
            }
            names.append(String(decoding: buffer.prefix(Int(n)).map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return names
    }

    enum ObjectKind { case group, dataset, other }

    /// What the hard link `name` in `group` points to; nil when there is no such link.
    func kind(of name: String, in group: HDF5Handle, path: String) throws(CheckpointError) -> ObjectKind? {
        guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else { return nil }
        let exists = H5Lexists(group.id, name, chdf5_P_DEFAULT())
        guard exists > 0 else { return nil }
        var info = H5L_info_t()
        guard H5Lget_info(group.id, name, &info, chdf5_P_DEFAULT()) >= 0 else {
            throw HDF5Library.failure("cannot read link '\(name)'", member: path)
        }
        guard info.type == H5L_TYPE_HARD else {
            throw CheckpointError(
                .unsupported, "'\(name)' is a \(info.type == H5L_TYPE_EXTERNAL ? "external" : "soft") link; only hard links are followed",
                member: path)
        }
        let object = try HDF5Handle.check(
            H5Oopen(group.id, name, chdf5_P_DEFAULT()), "cannot open '\(name)'", member: path, close: H5Oclose)
        switch H5Iget_type(object.id) {
        case H5I_GROUP: return .group
        case H5I_DATASET: return .dataset
        default: return .other
        }
    }

    /// Opens the group `name` (one link) inside `group`.
    func group(_ name: String, in group: HDF5Handle, path: String) throws(CheckpointError) -> HDF5Handle? {
        guard try kind(of: name, in: group, path: path) == .group else { return nil }
        return try HDF5Handle.check(
            H5Gopen2(group.id, name, chdf5_P_DEFAULT()), "cannot open group '\(name)'", member: path, close: H5Gclose)
    }

    /// Follows a `/`-separated path of hard links from `group` to a group or dataset.
    func resolve(_ relative: String, from group: HDF5Handle, path: String) throws(CheckpointError) -> (
        handle: HDF5Handle, kind: ObjectKind
    )? {
        let parts = relative.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        guard !parts.isEmpty, parts.count <= Self.maxDepth else { return nil }
        var current = group
        for (i, part) in parts.enumerated() {
            guard let k = try kind(of: part, in: current, path: path) else { return nil }
            if i == parts.count - 1 {
                switch k {
                case .group:
                    let g = try HDF5Handle.check(
                        H5Gopen2(current.id, part, chdf5_P_DEFAULT()), "cannot open group '\(part)'", member: path, close: H5Gclose)
                    return (g, .group)
                case .dataset:
                    let d = try HDF5Handle.check(
                        H5Dopen2(current.id, part, chdf5_P_DEFAULT()), "cannot open dataset '\(part)'", member: path, close: H5Dclose)
                    return (d, .dataset)
                case .other:
                    return nil
                }
            }
            guard k == .group else { return nil }
            current = try HDF5Handle.check(
                H5Gopen2(current.id, part, chdf5_P_DEFAULT()), "cannot open group '\(part)'", member: path, close: H5Gclose)
        }
        return nil
    }

    // MARK: Attributes

    /// Whether `object` has an attribute called `name`.
    func hasAttribute(_ object: HDF5Handle, _ name: String) -> Bool {
        H5Aexists(object.id, name) > 0
    }

    /// A string attribute (scalar or 1-D; fixed- or variable-length; bytes or UTF-8) as a list;
    /// nil if absent. Fixed-length strings lose their trailing NUL or space padding.
    func strings(_ object: HDF5Handle, _ name: String, path: String) throws(CheckpointError) -> [String]? {
        guard hasAttribute(object, name) else { return nil }
        let where_ = path.isEmpty ? "attribute '\(name)'" : "\(path) attribute '\(name)'"
        let attr = try HDF5Handle.check(H5Aopen(object.id, name, chdf5_P_DEFAULT()), "cannot open \(where_)", close: H5Aclose)
        let type = try HDF5Handle.check(H5Aget_type(attr.id), "cannot read the type of \(where_)", close: H5Tclose)
        let space = try HDF5Handle.check(H5Aget_space(attr.id), "cannot read the shape of \(where_)", close: H5Sclose)
        let count = H5Sget_simple_extent_npoints(space.id)
        guard count >= 0, count <= 10_000_000 else { throw CheckpointError(.limitExceeded, "\(where_) has \(count) elements") }
        let n = Int(count)
        if n == 0 { return [] }  // Keras writes an empty float array for a layer without weights
        guard H5Tget_class(type.id) == H5T_STRING else {
            throw CheckpointError(.malformed, "\(where_) is not a string attribute")
        }
        if H5Tis_variable_str(type.id) > 0 {
            let mem = try HDF5Handle.check(H5Tcopy(chdf5_T_C_S1()), "H5Tcopy", close: H5Tclose)
            H5Tset_size(mem.id, chdf5_T_VARIABLE())
            H5Tset_cset(mem.id, H5Tget_cset(type.id))
            var pointers = [UnsafeMutablePointer<CChar>?](repeating: nil, count: n)
            guard H5Aread(attr.id, mem.id, &pointers) >= 0 else { throw HDF5Library.failure("cannot read \(where_)") }
            defer { H5Dvlen_reclaim(mem.id, space.id, chdf5_P_DEFAULT(), &pointers) }
            return pointers.map { $0.map { String(cString: $0) } ?? "" }
        }
        let size = H5Tget_size(type.id)
        guard size > 0, size <= 1 << 20, n <= (64 << 20) / size else {
            throw CheckpointError(.limitExceeded, "\(where_) holds \(n) strings of \(size) bytes")
        }
        var buffer = [UInt8](repeating: 0, count: n * size)
        guard H5Aread(attr.id, type.id, &buffer) >= 0 else { throw HDF5Library.failure("cannot read \(where_)") }
        var out: [String] = []
        for i in 0..<n {
            var cell = buffer[(i * size)..<((i + 1) * size)]
            if let nul = cell.firstIndex(of: 0) { cell = cell[cell.startIndex..<nul] }
            while let last = cell.last, last == 0x20 { cell = cell.dropLast() }
            out.append(String(decoding: cell, as: UTF8.self))
        }
        return out
    }

    /// The attribute `name`, or its chunks `name0`, `name1`, ... concatenated, as Keras writes
    /// attributes larger than an object header holds (`load_attributes_from_hdf5_group`).
    func chunkedStrings(_ object: HDF5Handle, _ name: String, path: String) throws(CheckpointError) -> [String]? {
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

    // MARK: Datasets

    /// Reads the dataset as a tensor: a zero-copy window when its bytes are stored contiguously and
    /// unfiltered, else a copy read by libhdf5 in the stored byte order. `bfloat16` marks an opaque
    /// 2-byte dataset that Keras 3 tagged with `dtype="bfloat16"`.
    func tensor(_ dataset: HDF5Handle, path: String) throws(CheckpointError) -> (tensor: TensorData, byteOrder: ByteOrder) {
        let type = try HDF5Handle.check(H5Dget_type(dataset.id), "cannot read the element type", member: path, close: H5Tclose)
        let space = try HDF5Handle.check(H5Dget_space(dataset.id), "cannot read the shape", member: path, close: H5Sclose)
        let (dtype, order) = try elementType(type, dataset: dataset, path: path)

        var shape: [Int] = []
        switch H5Sget_simple_extent_type(space.id) {
        case H5S_SCALAR: shape = []
        case H5S_SIMPLE:
            let rank = H5Sget_simple_extent_ndims(space.id)
            guard rank >= 0, rank <= Int32(Self.maxRank) else {
                throw CheckpointError(.limitExceeded, "dataset has rank \(rank)", member: path)
            }
            var dims = [hsize_t](repeating: 0, count: Int(rank))
            guard H5Sget_simple_extent_dims(space.id, &dims, nil) == rank else {
                throw HDF5Library.failure("cannot read the dimensions", member: path)
            }
            for d in dims {
                guard d <= UInt64(Int.max) else { throw CheckpointError(.limitExceeded, "dimension \(d) too large", member: path) }
                shape.append(Int(d))
            }
        default:
            throw CheckpointError(.unsupported, "dataset has a null dataspace (no elements, no shape)", member: path)
        }
        var count = 1
        var strideBound = 1  // product of the non-zero sizes: the contiguous strides must fit even if a size is 0
        for d in shape {
            let (c, o) = count.multipliedReportingOverflow(by: d)
            let (s, o2) = strideBound.multipliedReportingOverflow(by: max(d, 1))
            guard !o, !o2 else { throw CheckpointError(.limitExceeded, "element count of shape \(shape) overflows", member: path) }
            count = c
            strideBound = s
        }
        let (byteCount, o) = count.multipliedReportingOverflow(by: dtype.byteSize)
        guard !o, byteCount <= data.count || byteCount == 0 else {
            throw CheckpointError(
                .truncated, "dataset of shape \(shape) needs \(o ? "overflow" : String(byteCount)) bytes; the file has \(data.count)",
                member: path)
        }

        let bytes: ByteSlice
        if let window = try storedWindow(dataset, byteCount: byteCount, path: path) {
            bytes = window
        } else if byteCount == 0 {
            bytes = ByteBuffer(copying: [UInt8]()).all
        } else {
            let p = UnsafeMutableRawPointer.allocate(byteCount: byteCount, alignment: 64)
            let buffer = ByteBuffer(adopting: p, count: byteCount)
            let status = H5Dread(dataset.id, type.id, chdf5_S_ALL(), chdf5_S_ALL(), chdf5_P_DEFAULT(), p)
            guard status >= 0 else { throw HDF5Library.failure("cannot read the dataset's data", member: path) }
            bytes = buffer.all
        }
        let storage = try StorageData(key: path, dtype: dtype, elementCount: count, byteOrder: order, bytes: bytes)
        let tensor = try TensorData(
            dtype: dtype, shape: shape, strides: TensorData.contiguousStrides(shape), storageOffset: 0, storage: storage)
        return (tensor, order)
    }

    /// The dataset's bytes in the file image, when they are stored contiguously without filters.
    private func storedWindow(_ dataset: HDF5Handle, byteCount: Int, path: String) throws(CheckpointError) -> ByteSlice? {
        let plist = try HDF5Handle.check(
            H5Dget_create_plist(dataset.id), "cannot read the storage properties", member: path, close: H5Pclose)
        guard H5Pget_layout(plist.id) == H5D_CONTIGUOUS, H5Pget_nfilters(plist.id) == 0 else { return nil }
        let offset = H5Dget_offset(dataset.id)
        _ = HDF5Library.lastError()  // an unallocated dataset leaves an error on the stack
        guard offset != chdf5_HADDR_UNDEF(), byteCount > 0 else { return nil }
        guard offset <= UInt64(Int.max) else { throw CheckpointError(.malformed, "data address \(offset) is invalid", member: path) }
        let start = Int(offset)
        do throws(CheckpointError) {
            return try data.slice(start, byteCount)
        } catch {
            throw CheckpointError(
                .truncated, "dataset data at byte \(start) needs \(byteCount) bytes; the file has \(data.count)", offset: start,
                member: path)
        }
    }

    /// The `DType` and byte order of an HDF5 element type.
    private func elementType(_ type: HDF5Handle, dataset: HDF5Handle, path: String) throws(CheckpointError) -> (DType, ByteOrder) {
        let size = H5Tget_size(type.id)
        let order: ByteOrder = H5Tget_order(type.id) == H5T_ORDER_BE ? .big : .little
        switch H5Tget_class(type.id) {
        case H5T_FLOAT:
            var spos = 0, epos = 0, esize = 0, mpos = 0, msize = 0
            H5Tget_fields(type.id, &spos, &epos, &esize, &mpos, &msize)
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
        case H5T_INTEGER:
            let signed = H5Tget_sign(type.id) == H5T_SGN_2
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
        case H5T_ENUM:
            // h5py stores numpy bool as an enum {FALSE=0, TRUE=1} over int8.
            if size == 1, H5Tget_nmembers(type.id) == 2 { return (.bool, .little) }
            throw CheckpointError(.unsupported, "enumeration type of \(size) bytes", member: path)
        case H5T_OPAQUE:
            if size == 2, let tag = try strings(dataset, "dtype", path: path), tag == ["bfloat16"] { return (.bfloat16, .little) }
            throw CheckpointError(.unsupported, "opaque type of \(size) bytes without a dtype=\"bfloat16\" attribute", member: path)
        case H5T_STRING: throw CheckpointError(.unsupported, "dataset holds strings, not numbers", member: path)
        case H5T_COMPOUND:
            throw CheckpointError(.unsupported, "dataset holds compound records (complex numbers?), not plain numbers", member: path)
        default:
            throw CheckpointError(.unsupported, "dataset element type class \(H5Tget_class(type.id).rawValue) is not numeric", member: path)
        }
    }
}

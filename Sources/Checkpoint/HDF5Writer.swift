import CHDF5

/// Writes a flat state dict as HDF5, the way h5py users write one (FORMATS.md §4.5): one dataset per
/// tensor at the root, named by its key (a `/` in a key makes nested groups, as h5py does), contiguous and little-endian; 0-d datasets for scalars;
/// bool as h5py's `{FALSE, TRUE}` enum; bfloat16 as 2-byte opaque data tagged `dtype="bfloat16"`
/// (Keras 3's convention, as numpy has no bfloat16). `metadata` becomes string attributes of the root.
///
/// The file is built in memory by libhdf5's core driver and then written atomically with `AtomicFile`.
public enum HDF5Writer {
    /// The file's bytes.
    public static func bytes(
        _ entries: [(name: String, tensor: TensorData)], metadata: [String: String] = [:], floatStorage: FloatStorage? = nil
    ) throws(CheckpointError) -> [UInt8] {
        try HDF5Library.locked { () throws(CheckpointError) -> [UInt8] in
            let fapl = try HDF5Handle.check(H5Pcreate(chdf5_P_FILE_ACCESS()), "H5Pcreate", close: H5Pclose)
            guard H5Pset_fapl_core(fapl.id, 1 << 20, false) >= 0 else {
                throw HDF5Library.failure("cannot set up an in-memory file", kind: .io)
            }
            let file = try HDF5Handle.check(
                H5Fcreate("state_dict.h5", chdf5_F_ACC_TRUNC(), chdf5_P_DEFAULT(), fapl.id), "cannot create an in-memory HDF5 file",
                close: H5Fclose)
            // Names with '/' become nested groups (h5py does the same), which the reader joins back with '/'.
            let lcpl = try HDF5Handle.check(H5Pcreate(chdf5_P_LINK_CREATE()), "H5Pcreate", close: H5Pclose)
            H5Pset_create_intermediate_group(lcpl.id, 1)
            var seen = Set<String>()
            for (name, tensor) in entries {
                let parts = name.split(separator: "/", omittingEmptySubsequences: false)
                guard !name.isEmpty, parts.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." }), seen.insert(name).inserted else {
                    throw CheckpointError(
                        .malformed, "'\(name)' cannot be a dataset name in an HDF5 file (empty, repeated, or an empty path component)",
                        member: name)
                }
                var dtype = tensor.dtype
                if let floatStorage, [.float64, .float32, .float16, .bfloat16].contains(dtype) { dtype = floatStorage.dtype }
                let type = try fileType(dtype, name: name)
                let dims = tensor.shape.map { hsize_t($0) }
                let space = try HDF5Handle.check(
                    dims.isEmpty ? H5Screate(H5S_SCALAR) : H5Screate_simple(Int32(dims.count), dims, nil), "cannot make the dataspace",
                    member: name,
                    close: H5Sclose)
                let dataset = try HDF5Handle.check(
                    H5Dcreate2(file.id, name, type.id, space.id, lcpl.id, chdf5_P_DEFAULT(), chdf5_P_DEFAULT()),
                    "cannot create the dataset",
                    member: name, close: H5Dclose)
                if dtype == .bfloat16 { try setString(dataset, "dtype", "bfloat16") }
                var data: [UInt8] = []
                data.reserveCapacity(tensor.elementCount * dtype.byteSize)
                try SafetensorsWriter.encode(tensor, as: dtype) { (raw) throws(CheckpointError) in data += raw }
                if !data.isEmpty {
                    let status = data.withUnsafeBytes {
                        H5Dwrite(dataset.id, type.id, chdf5_S_ALL(), chdf5_S_ALL(), chdf5_P_DEFAULT(), $0.baseAddress)
                    }
                    guard status >= 0 else { throw HDF5Library.failure("cannot write the dataset", kind: .io, member: name) }
                }
            }
            let root = try HDF5Handle.check(H5Gopen2(file.id, "/", chdf5_P_DEFAULT()), "cannot open the root group", close: H5Gclose)
            for (key, value) in metadata.sorted(by: { $0.key < $1.key }) { try setString(root, key, value) }
            guard H5Fflush(file.id, H5F_SCOPE_GLOBAL) >= 0 else { throw HDF5Library.failure("cannot flush the in-memory file", kind: .io) }
            let size = H5Fget_file_image(file.id, nil, 0)
            guard size > 0 else { throw HDF5Library.failure("cannot size the file image", kind: .io) }
            var image = [UInt8](repeating: 0, count: size)
            let got = image.withUnsafeMutableBytes { H5Fget_file_image(file.id, $0.baseAddress, size) }
            guard got == size else { throw HDF5Library.failure("cannot copy the file image", kind: .io) }
            return image
        }
    }

    /// Writes the file atomically at `path`.
    public static func write(
        _ entries: [(name: String, tensor: TensorData)], metadata: [String: String] = [:], floatStorage: FloatStorage? = nil,
        to path: String, overwrite: Bool
    ) throws(CheckpointError) {
        let image = try bytes(entries, metadata: metadata, floatStorage: floatStorage)
        let file = try AtomicFile(path: path, overwrite: overwrite)
        do throws(CheckpointError) {
            try file.write(image)
            try file.commit()
        } catch {
            file.abandon()
            throw error.inFile(path)
        }
    }

    /// The little-endian file type for `dtype`.
    private static func fileType(_ dtype: DType, name: String) throws(CheckpointError) -> HDF5Handle {
        func copy(_ id: hid_t) throws(CheckpointError) -> HDF5Handle {
            try HDF5Handle.check(H5Tcopy(id), "H5Tcopy", member: name, close: H5Tclose)
        }
        switch dtype {
        case .float64: return try copy(chdf5_T_IEEE_F64LE())
        case .float32: return try copy(chdf5_T_IEEE_F32LE())
        case .float16:
            // As h5py makes numpy's float16: sign bit 15, exponent bits 10-14 (bias 15), mantissa bits 0-9.
            let t = try copy(chdf5_T_IEEE_F32LE())
            guard H5Tset_fields(t.id, 15, 10, 5, 0, 10) >= 0, H5Tset_size(t.id, 2) >= 0, H5Tset_ebias(t.id, 15) >= 0 else {
                throw HDF5Library.failure("cannot make a half-precision type", kind: .io, member: name)
            }
            return t
        case .bfloat16:
            let t = try HDF5Handle.check(H5Tcreate(H5T_OPAQUE, 2), "H5Tcreate", member: name, close: H5Tclose)
            return t
        case .int64: return try copy(chdf5_T_STD_I64LE())
        case .int32: return try copy(chdf5_T_STD_I32LE())
        case .int16: return try copy(chdf5_T_STD_I16LE())
        case .int8: return try copy(chdf5_T_STD_I8LE())
        case .uint8: return try copy(chdf5_T_STD_U8LE())
        case .uint16: return try copy(chdf5_T_STD_U16LE())
        case .uint32: return try copy(chdf5_T_STD_U32LE())
        case .uint64: return try copy(chdf5_T_STD_U64LE())
        case .bool:
            let t = try HDF5Handle.check(H5Tenum_create(chdf5_T_NATIVE_INT8()), "H5Tenum_create", member: name, close: H5Tclose)
            var no: Int8 = 0
            var yes: Int8 = 1
            guard H5Tenum_insert(t.id, "FALSE", &no) >= 0, H5Tenum_insert(t.id, "TRUE", &yes) >= 0 else {
                throw HDF5Library.failure("cannot make the bool enum type", kind: .io, member: name)
            }
            return t
        case .complex64, .complex128, .untyped:
            throw CheckpointError(.unsupported, "a \(dtype.name) tensor cannot be written to a flat HDF5 file", member: name)
        }
    }

    /// A variable-length UTF-8 string attribute (as h5py writes a Python `str`).
    private static func setString(_ object: HDF5Handle, _ name: String, _ value: String) throws(CheckpointError) {
        let type = try HDF5Handle.check(H5Tcopy(chdf5_T_C_S1()), "H5Tcopy", close: H5Tclose)
        H5Tset_size(type.id, chdf5_T_VARIABLE())
        H5Tset_cset(type.id, H5T_CSET_UTF8)
        let space = try HDF5Handle.check(H5Screate(H5S_SCALAR), "H5Screate", close: H5Sclose)
        let attr = try HDF5Handle.check(
            H5Acreate2(object.id, name, type.id, space.id, chdf5_P_DEFAULT(), chdf5_P_DEFAULT()), "cannot create attribute '\(name)'",
            close: H5Aclose)
        let status = value.withCString { cString -> herr_t in
            var pointer: UnsafePointer<CChar>? = cString
            return H5Awrite(attr.id, type.id, &pointer)
        }
        guard status >= 0 else { throw HDF5Library.failure("cannot write attribute '\(name)'", kind: .io) }
    }
}

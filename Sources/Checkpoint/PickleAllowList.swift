/// The globals a checkpoint pickle may name. Anything else is an error naming the global and its
/// offset (or, in module-pickle mode, an opaque class that can only be instantiated without
/// arguments). This is an allow-list, never a deny-list: a name is usable only if it is here.
enum PickleAllowList {
    /// Looks up `module.name`; nil if it is not allowed.
    static func kind(module: String, name: String) -> GlobalKind? {
        switch module {
        case "torch._utils":
            switch name {
            case "_rebuild_tensor": return .rebuildTensor
            case "_rebuild_tensor_v2": return .rebuildTensorV2
            case "_rebuild_tensor_v3": return .rebuildTensorV3
            case "_rebuild_parameter": return .rebuildParameter
            case "_rebuild_parameter_with_state": return .rebuildParameterWithState
            case "_rebuild_qtensor", "_rebuild_sparse_tensor", "_rebuild_nested_tensor",
                "_rebuild_meta_tensor_no_storage", "_rebuild_wrapper_subclass",
                "_rebuild_device_tensor_from_numpy", "_rebuild_device_tensor_from_cpu_tensor",
                "_rebuild_sparse_csr_tensor", "_rebuild_xla_tensor", "_rebuild_mtia_tensor":
                return .unsupportedRebuild
            default: return nil
            }
        case "torch._tensor":
            return name == "_rebuild_from_type_v2" ? .rebuildFromTypeV2 : nil
        case "torch", "torch.cuda":
            if let dtype = DType(storageClass: name) { return .storageClass(dtype) }
            if name.hasSuffix("Storage"), quantizedStorages.contains(name) { return .storageClass(.untyped) }
            if let tensorType = tensorClass(name) { return .tensorClass(tensorType) }
            guard module == "torch" else { return nil }
            if name == "Tensor" { return .tensorClass(nil) }
            if name == "Size" { return .torchSize }
            if name == "device" { return .torchDevice }
            if let dtype = DType(torchName: name) { return .dtype(dtype) }
            if otherDtypes.contains(name) { return .dtype(nil) }
            return nil
        case "torch.storage":
            if name == "UntypedStorage" || name == "_LegacyStorage" { return .storageClass(.untyped) }
            return nil
        case "torch.nn.parameter":
            return name == "Parameter" ? .parameterClass : nil
        case "collections":
            switch name {
            case "OrderedDict": return .orderedDict
            case "Counter": return .counter
            default: return nil
            }
        case "builtins", "__builtin__":
            switch name {
            case "set": return .builtinSet
            case "frozenset": return .builtinFrozenSet
            // `bytes()` / `bytearray()` of nothing, of bytes or of a latin-1 string (Python 3 writes
            // empty bytes as `bytes()` at protocol 2): the same inert construction.
            case "bytearray", "bytes": return .builtinByteArray
            case "complex": return .builtinComplex
            default: return nil
            }
        case "_codecs":
            return name == "encode" ? .codecsEncode : nil
        case "argparse":
            return name == "Namespace" ? .namespace : nil
        case "numpy.core.multiarray", "numpy._core.multiarray":
            switch name {
            case "scalar": return .numpyScalar
            // `_reconstruct(ndarray, (0,), b'b')` makes an empty array of a class without running
            // code, like `copyreg._reconstructor`; the array's contents arrive by BUILD as inert bytes.
            case "_reconstruct": return .copyregReconstructor
            default: return nil
            }
        case "numpy":
            switch name {
            case "dtype": return .numpyDtype
            // Only ever instantiated without arguments (by `_reconstruct`), never called.
            case "ndarray": return .opaqueClass
            default: return nil
            }
        case "torch.jit._pickle":
            switch name {
            case "build_intlist", "build_doublelist", "build_boollist", "build_tensorlist": return .jitList
            default: return nil
            }
        case "copy_reg", "copyreg":
            return name == "_reconstructor" ? .copyregReconstructor : nil
        default:
            return nil
        }
    }

    /// Legacy tensor classes (`torch.FloatTensor`, `torch.cuda.HalfTensor`...) as the tar format names them.
    private static func tensorClass(_ name: String) -> DType?? {
        guard name.hasSuffix("Tensor"), name != "Tensor" else { return nil }
        let stem = String(name.dropLast("Tensor".count))
        if let dtype = DType(storageClass: stem + "Storage") { return .some(dtype) }
        return nil
    }

    private static let quantizedStorages: Set<String> = [
        "QInt8Storage", "QUInt8Storage", "QInt32Storage", "QUInt4x2Storage", "QUInt2x4Storage",
    ]

    /// dtypes that exist in torch but that this reader does not convert; allowed as values so the
    /// error can say which dtype a tensor had.
    private static let otherDtypes: Set<String> = [
        "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz",
        "float8_e8m0fnu", "float4_e2m1fn_x2", "complex32", "chalf", "qint8", "quint8", "qint32", "quint4x2",
        "quint2x4", "bits1x8", "bits2x4", "bits4x2", "bits8", "bits16",
        "uint1", "uint2", "uint3", "uint4", "uint5", "uint6", "uint7",
        "int1", "int2", "int3", "int4", "int5", "int6", "int7",
    ]
}

/// Element type of a stored tensor, as PyTorch, safetensors and HDF5 files declare it.
public enum DType: String, Sendable, Equatable, CaseIterable, Codable {
    case float64, float32, float16, bfloat16
    case int64, int32, int16, int8, uint8, bool
    case uint16, uint32, uint64
    case complex64, complex128
    /// Bytes with no numeric type yet (a `torch.storage.UntypedStorage` before its view gives it one).
    case untyped

    /// Size of one element in bytes.
    public var byteSize: Int {
        switch self {
        case .float64, .int64, .uint64, .complex64: return 8
        case .float32, .int32, .uint32: return 4
        case .float16, .bfloat16, .int16, .uint16: return 2
        case .int8, .uint8, .bool, .untyped: return 1
        case .complex128: return 16
        }
    }

    /// Whether `TensorData.floats()` can convert this type to float32.
    public var isConvertibleToFloat32: Bool {
        switch self {
        case .complex64, .complex128, .untyped: return false
        default: return true
        }
    }

    /// The name PyTorch prints (`torch.float32` → `float32`).
    public var name: String { rawValue }

    /// The legacy storage class that holds this dtype, e.g. `FloatStorage` (PyTorch's frozen table).
    init?(storageClass name: String) {
        switch name {
        case "DoubleStorage": self = .float64
        case "FloatStorage": self = .float32
        case "HalfStorage": self = .float16
        case "BFloat16Storage": self = .bfloat16
        case "LongStorage": self = .int64
        case "IntStorage": self = .int32
        case "ShortStorage": self = .int16
        case "CharStorage": self = .int8
        case "ByteStorage": self = .uint8
        case "BoolStorage": self = .bool
        case "ComplexFloatStorage": self = .complex64
        case "ComplexDoubleStorage": self = .complex128
        case "UntypedStorage": self = .untyped
        default: return nil
        }
    }

    /// A `torch.<name>` dtype global, e.g. `torch.float16` (as `_rebuild_tensor_v3` passes it).
    init?(torchName name: String) {
        switch name {
        case "float64", "double": self = .float64
        case "float32", "float": self = .float32
        case "float16", "half": self = .float16
        case "bfloat16": self = .bfloat16
        case "int64", "long": self = .int64
        case "int32", "int": self = .int32
        case "int16", "short": self = .int16
        case "int8": self = .int8
        case "uint8": self = .uint8
        case "bool": self = .bool
        case "uint16": self = .uint16
        case "uint32": self = .uint32
        case "uint64": self = .uint64
        case "complex64", "cfloat": self = .complex64
        case "complex128", "cdouble": self = .complex128
        default: return nil
        }
    }
}

/// The unpickler's working values. Containers are classes so that the memo shares them by
/// reference, as Python's does: a dict put in the memo and filled later by SETITEMS is seen filled
/// through every later BINGET. `freeze` turns a finished graph into inert `PickleValue`s.
enum PickleNode {
    case none
    case bool(Bool)
    case int(Int64)
    case bigInt([UInt8])
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case tuple([PickleNode])
    case list(PickleList)
    case dict(PickleDict)
    case set(PickleSet)
    case object(PickleObject)
    case global(PickleGlobal)
    case storage(StorageRef)
    case tensor(TensorView)

    /// A short type name for error messages.
    var typeName: String {
        switch self {
        case .none: return "None"
        case .bool: return "bool"
        case .int, .bigInt: return "int"
        case .float: return "float"
        case .string: return "str"
        case .bytes: return "bytes"
        case .tuple: return "tuple"
        case .list: return "list"
        case .dict: return "dict"
        case .set: return "set"
        case .object(let o): return o.type
        case .global(let g): return "global \(g.qualifiedName)"
        case .storage: return "storage"
        case .tensor: return "tensor"
        }
    }

    var stringValue: String? {
        switch self {
        case .string(let s): return s
        case .bytes(let b): return String(decoding: b, as: UTF8.self)
        default: return nil
        }
    }

    var intValue: Int64? {
        switch self {
        case .int(let v): return v
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }
}

extension PickleNode {
    /// The identity of a container (list, dict, set, object), nil for every other node.
    var containerID: ObjectIdentifier? {
        switch self {
        case .list(let l): return ObjectIdentifier(l)
        case .dict(let d): return ObjectIdentifier(d)
        case .set(let s): return ObjectIdentifier(s)
        case .object(let o): return ObjectIdentifier(o)
        default: return nil
        }
    }

    /// What a container refers to: items, keys and values, attributes, arguments and state.
    var containerChildren: [PickleNode] {
        switch self {
        case .list(let l): return l.items
        case .dict(let d): return d.keys + d.values + d.attributes.map(\.1)
        case .set(let s): return s.items
        case .object(let o): return o.args + (o.state.map { [$0] } ?? [])
        default: return []
        }
    }

    /// Empties a container, dropping its references (which frees a cycle it is part of).
    func emptyContainer() {
        switch self {
        case .list(let l): l.items = []
        case .dict(let d): d.removeAll()
        case .set(let s): s.items = []
        case .object(let o):
            o.args = []
            o.state = nil
        default: break
        }
    }
}

/// A mutable list.
final class PickleList {
    var items: [PickleNode] = []
}

/// A mutable dict (or OrderedDict, Counter) keeping insertion order; a repeated hashable key
/// replaces the earlier value as in Python.
final class PickleDict {
    var keys: [PickleNode] = []
    var values: [PickleNode] = []
    private var index: [HashKey: Int] = [:]
    /// Attributes set by BUILD (an OrderedDict's `_metadata`): not items of the dict.
    var attributes: [(String, PickleNode)] = []

    private enum HashKey: Hashable {
        case string(String)
        case int(Int64)
        case bytes([UInt8])
    }

    private static func hashKey(_ node: PickleNode) -> HashKey? {
        switch node {
        case .string(let s): return .string(s)
        case .int(let v): return .int(v)
        case .bool(let b): return .int(b ? 1 : 0)
        case .bytes(let b): return .bytes(b)
        default: return nil
        }
    }

    /// Drops every key, value and attribute.
    func removeAll() {
        keys = []
        values = []
        index = [:]
        attributes = []
    }

    func set(_ key: PickleNode, _ value: PickleNode) {
        if let h = Self.hashKey(key) {
            if let i = index[h] {
                values[i] = value
                return
            }
            index[h] = keys.count
        }
        keys.append(key)
        values.append(value)
    }
}

/// A mutable set (items in insertion order).
final class PickleSet {
    var items: [PickleNode] = []
}

/// An inert record of an object of an allow-listed (or, in module-pickle mode, opaque) class.
final class PickleObject {
    let type: String
    var args: [PickleNode]
    var state: PickleNode?
    init(type: String, args: [PickleNode]) {
        self.type = type
        self.args = args
    }
}

/// A global reference that passed the allow-list, with what it means to this reader.
struct PickleGlobal {
    let module: String
    let name: String
    let kind: GlobalKind
    /// Byte offset of the GLOBAL opcode, for error messages.
    let offset: Int
    var qualifiedName: String { "\(module).\(name)" }
}

/// What an allow-listed global is.
enum GlobalKind: Equatable {
    case rebuildTensor, rebuildTensorV2, rebuildTensorV3
    case rebuildParameter, rebuildParameterWithState, rebuildFromTypeV2
    /// A tensor rebuild function this reader recognises but does not convert (sparse, quantized...).
    case unsupportedRebuild
    case storageClass(DType)
    case tensorClass(DType?)
    case parameterClass
    case dtype(DType?)
    case orderedDict, counter, builtinSet, builtinFrozenSet, builtinByteArray, builtinComplex
    case codecsEncode
    case torchSize, torchDevice
    case namespace
    case numpyScalar, numpyDtype
    case copyregReconstructor
    /// TorchScript's typed-list constructors (`torch.jit._pickle.build_intlist`...): identity on a list.
    case jitList
    /// A class off the allow-list, accepted only in module-pickle mode and only for NEWOBJ /
    /// `copyreg._reconstructor` (instantiation without arguments), never for REDUCE.
    case opaqueClass
}

/// A storage named by a persistent id; its bytes are attached by the format reader.
final class StorageRef {
    let key: String
    let dtype: DType
    let elementCount: Int
    let location: String
    /// Legacy view metadata: this storage is `(rootKey, offset, size)` of another storage.
    let view: (rootKey: String, offset: Int, size: Int)?
    var data: StorageData?

    init(key: String, dtype: DType, elementCount: Int, location: String, view: (rootKey: String, offset: Int, size: Int)? = nil) {
        self.key = key
        self.dtype = dtype
        self.elementCount = elementCount
        self.location = location
        self.view = view
    }
}

/// A tensor as a rebuild call describes it; made into a `TensorData` once storage bytes exist.
final class TensorView {
    let storage: StorageRef
    let dtype: DType
    let offset: Int
    let shape: [Int]
    let strides: [Int]
    /// Byte offset of the REDUCE that built it, for error messages.
    let pickleOffset: Int
    var resolved: TensorData?

    init(storage: StorageRef, dtype: DType, offset: Int, shape: [Int], strides: [Int], pickleOffset: Int) {
        self.storage = storage
        self.dtype = dtype
        self.offset = offset
        self.shape = shape
        self.strides = strides
        self.pickleOffset = pickleOffset
    }

    /// The tensor, validated against its storage's bytes.
    func tensor() throws(CheckpointError) -> TensorData {
        if let resolved { return resolved }
        guard let data = storage.data else {
            throw CheckpointError(.malformed, "storage '\(storage.key)' has no data in the file", offset: pickleOffset)
        }
        do throws(CheckpointError) {
            let t = try TensorData(dtype: dtype, shape: shape, strides: strides, storageOffset: offset, storage: data)
            resolved = t
            return t
        } catch {
            var e = error
            if e.offset == nil { e.offset = pickleOffset }
            throw e
        }
    }
}

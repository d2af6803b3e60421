/// Byte order of stored element data.
public enum ByteOrder: String, Sendable, Equatable, Codable {
    case little, big
}

/// A block of stored elements that one or more tensors view: one `data/<key>` zip record, one
/// legacy storage, one safetensors range.
public struct StorageData: Sendable {
    /// The storage's key in its file (`"0"`, `"93977130480784"`, a tensor name...).
    public let key: String
    /// The element type the storage holds.
    public let dtype: DType
    /// Number of elements of `dtype`.
    public let elementCount: Int
    /// Byte order of `bytes`.
    public let byteOrder: ByteOrder
    /// The raw bytes: exactly `elementCount * dtype.byteSize` of them. Often a window into a mapped file.
    public let bytes: ByteSlice
    /// A CRC-32 check deferred to the first access of the bytes (stored zip records), if any.
    let checksum: DeferredChecksum?

    /// Creates a storage, checking that the bytes present match the declared element count.
    public init(key: String, dtype: DType, elementCount: Int, byteOrder: ByteOrder, bytes: ByteSlice) throws(CheckpointError) {
        try self.init(key: key, dtype: dtype, elementCount: elementCount, byteOrder: byteOrder, bytes: bytes, checksum: nil)
    }

    /// Runs the deferred CRC-32 check of the storage's record, if one is pending; the result is
    /// remembered, so only the first call reads the bytes.
    public func verifyChecksum() throws(CheckpointError) {
        try checksum?.verify(bytes)
    }

    init(key: String, dtype: DType, elementCount: Int, byteOrder: ByteOrder, bytes: ByteSlice, checksum: DeferredChecksum?) throws(CheckpointError) {
        self.checksum = checksum
        let (need, overflow) = elementCount.multipliedReportingOverflow(by: dtype.byteSize)
        guard elementCount >= 0, !overflow, need == bytes.count else {
            throw CheckpointError(
                .integrity,
                "storage '\(key)' declares \(elementCount) \(dtype.name) elements (\(overflow ? "overflow" : String(need)) bytes) but \(bytes.count) bytes are present")
        }
        self.key = key
        self.dtype = dtype
        self.elementCount = elementCount
        self.byteOrder = byteOrder
        self.bytes = bytes
    }
}

/// One tensor as a file stores it: a view (offset, shape, strides, in elements) into a storage.
///
/// Nothing is copied or read when a `TensorData` is made; `floats()` and `contiguousBytes()` produce
/// contiguous data on demand, honouring the offset, arbitrary strides and byte order.
public struct TensorData: Sendable {
    /// Element type of the tensor.
    public let dtype: DType
    /// Sizes of each dimension; empty for a 0-d scalar.
    public let shape: [Int]
    /// Element strides of each dimension.
    public let strides: [Int]
    /// Offset of the first element into the storage, in elements.
    public let storageOffset: Int
    /// The storage this tensor views.
    public let storage: StorageData

    /// Creates a view, checking that every element it addresses lies inside the storage
    /// (`offset + span(shape, strides) <= storage.elementCount`) and that nothing overflows.
    public init(dtype: DType, shape: [Int], strides: [Int], storageOffset: Int, storage: StorageData) throws(CheckpointError) {
        guard shape.count == strides.count else {
            throw CheckpointError(.malformed, "tensor has \(shape.count) sizes but \(strides.count) strides")
        }
        guard shape.count <= 64 else {
            throw CheckpointError(.limitExceeded, "tensor has \(shape.count) dimensions (limit 64)")
        }
        guard shape.allSatisfy({ $0 >= 0 }), strides.allSatisfy({ $0 >= 0 }), storageOffset >= 0 else {
            throw CheckpointError(.malformed, "negative size, stride or offset: shape \(shape), strides \(strides), offset \(storageOffset)")
        }
        guard dtype == storage.dtype || storage.dtype == .untyped else {
            throw CheckpointError(.malformed, "tensor of \(dtype.name) views storage '\(storage.key)' of \(storage.dtype.name)")
        }
        var count = 1
        var span = 1  // index of last element + 1, relative to the offset
        for (size, stride) in zip(shape, strides) {
            let (c, o1) = count.multipliedReportingOverflow(by: size)
            guard !o1 else { throw CheckpointError(.limitExceeded, "element count of shape \(shape) overflows") }
            count = c
            if size > 0 {
                let (reach, o2) = (size - 1).multipliedReportingOverflow(by: stride)
                let (s, o3) = span.addingReportingOverflow(reach)
                guard !o2, !o3 else { throw CheckpointError(.limitExceeded, "span of shape \(shape) strides \(strides) overflows") }
                span = s
            }
        }
        // Element counts in the storage's own units: an untyped storage counts bytes.
        let unit = storage.dtype == .untyped ? dtype.byteSize : 1
        let available = storage.elementCount / unit
        if count > 0 {
            let (end, o) = storageOffset.addingReportingOverflow(span)
            guard !o, end <= available else {
                throw CheckpointError(
                    .malformed,
                    "view of shape \(shape), strides \(strides), offset \(storageOffset) reaches element \(o ? "overflow" : String(end)) of storage '\(storage.key)' which has \(available)")
            }
        } else {
            guard storageOffset <= available else {
                throw CheckpointError(.malformed, "empty view at offset \(storageOffset) beyond storage '\(storage.key)' of \(available) elements")
            }
        }
        self.dtype = dtype
        self.shape = shape
        self.strides = strides
        self.storageOffset = storageOffset
        self.storage = storage
    }

    /// Number of elements (1 for a 0-d scalar, 0 if any dimension is 0).
    public var elementCount: Int { shape.reduce(1, *) }

    /// Bytes the tensor's elements occupy when contiguous.
    public var byteCount: Int { elementCount * dtype.byteSize }

    /// Whether the elements lie in row-major order without gaps (dimensions of size 1 are ignored,
    /// as PyTorch leaves arbitrary strides there).
    public var isContiguous: Bool {
        var expected = 1
        for (size, stride) in zip(shape, strides).reversed() where size != 1 {
            if size == 0 { return true }
            if stride != expected { return false }
            expected *= size
        }
        return true
    }

    /// The strides a contiguous row-major tensor of `shape` has.
    public static func contiguousStrides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var running = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[i] = running
            running *= Swift.max(shape[i], 1)
        }
        return strides
    }
}

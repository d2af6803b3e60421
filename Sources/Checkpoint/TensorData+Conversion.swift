import Foundation

/// IEEE half-precision bit patterns to `Float`, portable (no reliance on the `Float16` type).
enum Float16Bits {
    @inline(__always)
    static func toFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exponent = UInt32(h >> 10) & 0x1F
        let mantissa = UInt32(h & 0x3FF)
        if exponent == 0x1F {  // inf / nan
            return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        }
        if exponent == 0 {
            if mantissa == 0 { return Float(bitPattern: sign) }
            // subnormal half: mantissa * 2^-24, exact in float32
            let value = Float(mantissa) * (1.0 / 16_777_216.0)
            return sign != 0 ? -value : value
        }
        return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13))
    }
}

extension TensorData {
    /// The tensor's elements in row-major order as little-endian bytes of its own dtype.
    ///
    /// A contiguous little-endian tensor is returned as a zero-copy window into its storage (often a
    /// memory-mapped file); a strided or big-endian one is gathered into a new buffer.
    /// A deferred CRC-32 check of the storage record runs first (once per storage).
    public func contiguousBytes() throws(CheckpointError) -> ByteSlice {
        try storage.verifyChecksum()
        let size = dtype.byteSize
        let start = storage.bytes.offset + storageOffset * size
        let needsSwap = storage.byteOrder == .big && size > 1
        if isContiguous && !needsSwap {
            return ByteSlice(buffer: storage.bytes.buffer, offset: start, count: byteCount)
        }
        let out = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 1), alignment: 64)
        gather(into: out)
        if needsSwap { Self.swapInPlace(out, count: elementCount, elementSize: size, dtype: dtype) }
        return ByteSlice(buffer: ByteBuffer(adopting: out, count: byteCount), offset: 0, count: byteCount)
    }

    /// Copies the elements in row-major order (stored byte order) to `out`.
    private func gather(into out: UnsafeMutableRawPointer) {
        let n = elementCount
        guard n > 0 else { return }
        let size = dtype.byteSize
        let src = storage.bytes.base + storageOffset * size
        if isContiguous {
            out.copyMemory(from: src, byteCount: n * size)
            return
        }
        let rank = shape.count
        let inner = shape[rank - 1]
        let innerStride = strides[rank - 1] * size
        var index = [Int](repeating: 0, count: rank)
        var written = 0
        var base = 0  // element offset of index[0..<rank-1]
        while written < n {
            var p = src + base * size
            if innerStride == size {
                (out + written * size).copyMemory(from: p, byteCount: inner * size)
            } else {
                var q = out + written * size
                for _ in 0..<inner {
                    q.copyMemory(from: p, byteCount: size)
                    p += innerStride
                    q += size
                }
            }
            written += inner
            // advance the outer index
            var d = rank - 2
            while d >= 0 {
                index[d] += 1
                base += strides[d]
                if index[d] < shape[d] { break }
                base -= strides[d] * shape[d]
                index[d] = 0
                d -= 1
            }
        }
    }

    private static func swapInPlace(_ p: UnsafeMutableRawPointer, count: Int, elementSize: Int, dtype: DType) {
        // Complex numbers are two floats, each swapped on its own.
        let unit = (dtype == .complex64 || dtype == .complex128) ? elementSize / 2 : elementSize
        let units = count * elementSize / unit
        let bytes = p.assumingMemoryBound(to: UInt8.self)
        for u in 0..<units {
            var i = u * unit
            var j = i + unit - 1
            while i < j {
                let t = bytes[i]
                bytes[i] = bytes[j]
                bytes[j] = t
                i += 1
                j -= 1
            }
        }
    }

    /// The elements in row-major order converted to `Float`.
    ///
    /// Every real dtype converts (f64 rounds to nearest, bf16/f16 exactly, integers and bool by
    /// value); complex tensors are refused with `.unsupported`.
    public func floats() throws(CheckpointError) -> [Float] {
        guard dtype.isConvertibleToFloat32 else {
            throw CheckpointError(.unsupported, "a \(dtype.name) tensor cannot be converted to float32")
        }
        let bytes = try contiguousBytes()
        let n = elementCount
        let p = bytes.base
        return [Float](unsafeUninitializedCapacity: n) { out, initialized in
            switch dtype {
            case .float32:
                if n > 0 { UnsafeMutableRawPointer(out.baseAddress!).copyMemory(from: p, byteCount: n * 4) }
            case .float64:
                for i in 0..<n { out[i] = Float(p.loadUnaligned(fromByteOffset: i * 8, as: Double.self)) }
            case .float16:
                for i in 0..<n { out[i] = Float16Bits.toFloat(p.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)) }
            case .bfloat16:
                for i in 0..<n { out[i] = Float(bitPattern: UInt32(p.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)) << 16) }
            case .int64:
                for i in 0..<n { out[i] = Float(p.loadUnaligned(fromByteOffset: i * 8, as: Int64.self)) }
            case .int32:
                for i in 0..<n { out[i] = Float(p.loadUnaligned(fromByteOffset: i * 4, as: Int32.self)) }
            case .int16:
                for i in 0..<n { out[i] = Float(p.loadUnaligned(fromByteOffset: i * 2, as: Int16.self)) }
            case .int8:
                for i in 0..<n { out[i] = Float(p.load(fromByteOffset: i, as: Int8.self)) }
            case .uint8:
                for i in 0..<n { out[i] = Float(p.load(fromByteOffset: i, as: UInt8.self)) }
            case .bool:
                for i in 0..<n { out[i] = p.load(fromByteOffset: i, as: UInt8.self) != 0 ? 1 : 0 }
            case .uint16:
                for i in 0..<n { out[i] = Float(p.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)) }
            case .uint32:
                for i in 0..<n { out[i] = Float(p.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)) }
            case .uint64:
                for i in 0..<n { out[i] = Float(p.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)) }
            case .complex64, .complex128, .untyped:
                break  // refused above
            }
            initialized = n
        }
    }
}

extension TensorData {
    /// A contiguous float32 tensor holding `values` (copied once), for state dicts built in memory.
    public init(float32 values: [Float], shape: [Int]) throws(CheckpointError) {
        let count = shape.reduce(1, *)
        guard count == values.count, shape.allSatisfy({ $0 >= 0 }) else {
            throw CheckpointError(.malformed, "\(values.count) values do not fill shape \(shape)")
        }
        let bytes = values.withUnsafeBytes { ByteBuffer(copying: $0) }
        let storage = try StorageData(key: "memory", dtype: .float32, elementCount: count, byteOrder: .little, bytes: bytes.all)
        try self.init(dtype: .float32, shape: shape, strides: TensorData.contiguousStrides(shape), storageOffset: 0, storage: storage)
    }
}

extension StateDict {
    /// A state dict built in memory (provenance format `memory`-like: zip, no file).
    public init(tensors: [(name: String, tensor: TensorData)], name: String = "<memory>") throws(CheckpointError) {
        try self.init(
            entries: tensors,
            provenance: Provenance(
                file: name, format: .torchZip, formatVersion: [:], byteOrder: .little, nestingPath: [], strippedPrefixes: [],
                archivePrefix: nil, notes: ["built in memory"]))
    }
}

extension TensorData {
    /// The same tensor (dtype, byte order, shape, values) in freshly allocated contiguous memory, so that
    /// keeping it does not keep its file's mapping or a larger storage alive. Runs the deferred
    /// checksum, like every read of the bytes. The copy is little-endian (`contiguousBytes()` swaps).
    public func ownedCopy() throws(CheckpointError) -> TensorData {
        let slice = try contiguousBytes()
        let bytes = ByteBuffer(copying: slice.raw)
        let storage = try StorageData(
            key: storage.key, dtype: dtype, elementCount: elementCount, byteOrder: .little, bytes: bytes.all)
        return try TensorData(dtype: dtype, shape: shape, strides: TensorData.contiguousStrides(shape), storageOffset: 0, storage: storage)
    }
}

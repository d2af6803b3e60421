/// Reads safetensors files (FORMATS.md §5; huggingface/safetensors `tensor.rs` validation):
/// `u64` little-endian header size N, N bytes of JSON, then the byte buffer. Tensors are zero-copy
/// windows into the (memory-mapped) file.
///
/// Checked before any tensor is made: N <= 100,000,000 and within the file; every dtype known; sizes
/// `numel x element size == end - begin` without overflow; tensors sorted by offset contiguous from 0
/// with no gap or overlap, and together covering the whole buffer (no hidden bytes); no duplicate
/// names; `__metadata__` strings only.
enum SafetensorsReader {
    /// The largest header accepted, as the reference implementation (`MAX_HEADER_SIZE`).
    static let maxHeaderSize = 100_000_000

    static func read(_ data: ByteSlice, options: ReadOptions) throws(CheckpointError) -> LoadedObject {
        guard data.count >= 8 else {
            throw CheckpointError(.truncated, "safetensors file of \(data.count) bytes has no header size", offset: 0)
        }
        var n: UInt64 = 0
        for i in 0..<8 { n |= UInt64(data[i]) << (8 * UInt64(i)) }
        guard n <= UInt64(maxHeaderSize) else {
            throw CheckpointError(.limitExceeded, "safetensors header size \(n) exceeds the \(maxHeaderSize)-byte limit", offset: 0)
        }
        let headerSize = Int(n)
        guard headerSize <= data.count - 8 else {
            throw CheckpointError(.truncated, "safetensors header size \(headerSize) but only \(data.count - 8) bytes follow", offset: 0)
        }
        let header = try SafetensorsHeader(try data.slice(8, headerSize).raw, base: 8)
        let bufferStart = 8 + headerSize
        let buffer = try data.slice(bufferStart, data.count - bufferStart)

        // Validate offsets in offset order: contiguous from 0, covering the buffer.
        let byOffset = header.records.indices.sorted {
            let a = header.records[$0], b = header.records[$1]
            return a.begin != b.begin ? a.begin < b.begin : a.end < b.end
        }
        var expected = 0
        for i in byOffset {
            let r = header.records[i]
            guard r.begin == expected else {
                throw CheckpointError(
                    .malformed,
                    r.begin > expected
                        ? "tensor '\(r.name)' starts at buffer byte \(r.begin), leaving a gap after byte \(expected)"
                        : "tensor '\(r.name)' starts at buffer byte \(r.begin), overlapping bytes up to \(expected)",
                    offset: bufferStart + r.begin, member: r.name)
            }
            guard r.end >= r.begin else {
                throw CheckpointError(.malformed, "tensor '\(r.name)' ends (\(r.end)) before it begins (\(r.begin))", member: r.name)
            }
            expected = r.end
        }
        guard expected == buffer.count else {
            throw CheckpointError(
                expected > buffer.count ? .truncated : .malformed,
                expected > buffer.count
                    ? "tensors need \(expected) buffer bytes but the file has \(buffer.count)"
                    : "the byte buffer has \(buffer.count - expected) bytes after the last tensor (not covered by the header)",
                offset: bufferStart + min(expected, buffer.count))
        }

        var entries: [PickleValue.DictEntry] = []
        entries.reserveCapacity(header.records.count + 1)
        for i in byOffset {
            let r = header.records[i]
            guard let dtype = SafetensorsDType.dtype(r.dtype) else {
                let known = SafetensorsDType.known.contains(r.dtype)
                throw CheckpointError(
                    known ? .unsupported : .malformed,
                    known
                        ? "tensor '\(r.name)' has dtype \(r.dtype), which this reader does not convert"
                        : "tensor '\(r.name)' has unknown dtype '\(r.dtype)'",
                    member: r.name)
            }
            // The product of the non-zero sizes bounds the contiguous strides: it must fit too, even
            // when a zero size makes the tensor empty.
            var count = 1
            var strideBound = 1
            for d in r.shape {
                let (c, o) = count.multipliedReportingOverflow(by: d)
                let (s, o2) = strideBound.multipliedReportingOverflow(by: max(d, 1))
                guard !o, !o2 else { throw CheckpointError(.limitExceeded, "tensor '\(r.name)' shape \(r.shape) overflows", member: r.name) }
                count = c
                strideBound = s
            }
            let (bytes, o) = count.multipliedReportingOverflow(by: dtype.byteSize)
            guard !o, bytes == r.end - r.begin else {
                throw CheckpointError(
                    .integrity,
                    "tensor '\(r.name)' of \(r.dtype) \(r.shape) needs \(o ? "overflow" : String(bytes)) bytes but its offsets span \(r.end - r.begin)",
                    offset: bufferStart + r.begin, member: r.name)
            }
            let window = try buffer.slice(r.begin, r.end - r.begin)
            let storage = try StorageData(key: r.name, dtype: dtype, elementCount: count, byteOrder: .little, bytes: window)
            let tensor = try TensorData(
                dtype: dtype, shape: r.shape, strides: TensorData.contiguousStrides(r.shape), storageOffset: 0, storage: storage)
            entries.append(PickleValue.DictEntry(key: .string(r.name), value: .tensor(tensor)))
        }
        var notes: [String] = []
        if !header.metadata.isEmpty {
            entries.append(
                PickleValue.DictEntry(
                    key: .string("__metadata__"),
                    value: .dict(header.metadata.map { PickleValue.DictEntry(key: .string($0.key), value: .string($0.value)) })))
            if let layout = header.metadata.first(where: { $0.key == "tensor_layout" })?.value { notes.append("tensor layout: \(layout)") }
        }
        return LoadedObject(
            root: .dict(entries), format: .safetensors, formatVersion: ["header bytes": String(headerSize)], byteOrder: .little,
            archivePrefix: nil, notes: notes)
    }
}

/// safetensors dtype names ↔ `DType`.
enum SafetensorsDType {
    /// Every dtype string of the specification (FORMATS.md §5), in its enum order (rising alignment).
    static let order: [String] = [
        "BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ",
        "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "C64", "F64", "I64", "U64",
    ]
    /// Every dtype string of the specification, converted or not.
    static let known = Set(order)

    static func dtype(_ name: String) -> DType? {
        switch name {
        case "BOOL": return .bool
        case "U8": return .uint8
        case "I8": return .int8
        case "I16": return .int16
        case "U16": return .uint16
        case "F16": return .float16
        case "BF16": return .bfloat16
        case "I32": return .int32
        case "U32": return .uint32
        case "F32": return .float32
        case "C64": return .complex64
        case "F64": return .float64
        case "I64": return .int64
        case "U64": return .uint64
        default: return nil
        }
    }

    /// The name for `dtype`; nil for types safetensors cannot hold (complex128, untyped).
    static func name(_ dtype: DType) -> String? {
        switch dtype {
        case .bool: return "BOOL"
        case .uint8: return "U8"
        case .int8: return "I8"
        case .int16: return "I16"
        case .uint16: return "U16"
        case .float16: return "F16"
        case .bfloat16: return "BF16"
        case .int32: return "I32"
        case .uint32: return "U32"
        case .float32: return "F32"
        case .complex64: return "C64"
        case .float64: return "F64"
        case .int64: return "I64"
        case .uint64: return "U64"
        case .complex128, .untyped: return nil
        }
    }
}

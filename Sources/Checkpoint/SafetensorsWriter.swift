/// The element type floating-point tensors are stored in when writing.
public enum FloatStorage: String, Sendable, CaseIterable {
    case float32 = "f32"
    case float16 = "f16"
    case bfloat16 = "bf16"

    /// The `DType` written.
    public var dtype: DType {
        switch self {
        case .float32: return .float32
        case .float16: return .float16
        case .bfloat16: return .bfloat16
        }
    }
}

/// Writes spec-compliant safetensors files (FORMATS.md §5), deterministically and byte for byte as the
/// reference library does: tensors are laid out by dtype in descending order of the specification's
/// dtype list (which rises with alignment, so each starts aligned to its size), then by name; the JSON lists
/// `__metadata__` first (keys sorted) and then the tensors in offset order, and the header is padded
/// with spaces to a multiple of 8 bytes (as the reference library does). Floating-point tensors are stored as `floatStorage`
/// (float64/float16/bfloat16 sources are converted, rounding to nearest even); integer and bool
/// tensors keep their type. Strided and big-endian tensors are written contiguous and little-endian.
public struct SafetensorsWriter {
    /// One tensor as it will be stored.
    public struct Planned: Sendable {
        public let name: String
        public let source: TensorData
        public let dtype: DType
        public let begin: Int
        public let end: Int
    }

    /// Tensors in file (offset) order.
    public let plan: [Planned]
    /// The header bytes, including the 8-byte size prefix and padding.
    public let header: [UInt8]
    /// Total file size.
    public var fileSize: Int { header.count + (plan.last?.end ?? 0) }

    /// Plans a file holding `entries` (names must be unique) with `metadata` in `__metadata__`.
    /// `floatStorage` nil keeps each floating-point tensor's own type.
    public init(_ entries: [(name: String, tensor: TensorData)], metadata: [String: String] = [:], floatStorage: FloatStorage? = .float32)
        throws(CheckpointError)
    {
        var seen = Set<String>()
        var items: [(name: String, tensor: TensorData, dtype: DType)] = []
        for e in entries {
            guard seen.insert(e.name).inserted else {
                throw CheckpointError(.malformed, "tensor name '\(e.name)' appears twice", member: e.name)
            }
            guard e.name != "__metadata__" else {
                throw CheckpointError(.malformed, "'__metadata__' cannot be a tensor name", member: e.name)
            }
            let dtype: DType
            switch e.tensor.dtype {
            case .float64, .float32, .float16, .bfloat16: dtype = floatStorage?.dtype ?? e.tensor.dtype
            default: dtype = e.tensor.dtype
            }
            guard SafetensorsDType.name(dtype) != nil else {
                throw CheckpointError(.unsupported, "safetensors cannot hold a \(dtype.name) tensor", member: e.name)
            }
            items.append((e.name, e.tensor, dtype))
        }
        // As the reference writer: by dtype, in the specification's enum order (which rises with
        // alignment) from last to first, then by name.
        func rank(_ d: DType) -> Int { SafetensorsDType.order.firstIndex(of: SafetensorsDType.name(d) ?? "") ?? -1 }
        items.sort { a, b in
            rank(a.dtype) != rank(b.dtype)
                ? rank(a.dtype) > rank(b.dtype) : Array(a.name.utf8).lexicographicallyPrecedes(Array(b.name.utf8))
        }
        var plan: [Planned] = []
        var offset = 0
        for item in items {
            let size = item.tensor.elementCount * item.dtype.byteSize
            plan.append(Planned(name: item.name, source: item.tensor, dtype: item.dtype, begin: offset, end: offset + size))
            offset += size
        }
        self.plan = plan

        var json = "{"
        var first = true
        if !metadata.isEmpty {
            json += Self.quoted("__metadata__") + ":{"
            json += metadata.sorted { Array($0.key.utf8).lexicographicallyPrecedes(Array($1.key.utf8)) }
                .map { Self.quoted($0.key) + ":" + Self.quoted($0.value) }.joined(separator: ",")
            json += "}"
            first = false
        }
        for p in plan {
            if !first { json += "," }
            first = false
            json += Self.quoted(p.name) + ":{\"dtype\":\"\(SafetensorsDType.name(p.dtype)!)\",\"shape\":["
            json += p.source.shape.map(String.init).joined(separator: ",")
            json += "],\"data_offsets\":[\(p.begin),\(p.end)]}"
        }
        json += "}"
        var body = Array(json.utf8)
        while body.count % 8 != 0 { body.append(0x20) }
        var header: [UInt8] = []
        header.reserveCapacity(8 + body.count)
        let n = UInt64(body.count)
        for i in 0..<8 { header.append(UInt8(truncatingIfNeeded: n >> (8 * UInt64(i)))) }
        header += body
        self.header = header
    }

    /// Writes the file atomically (temporary file beside `path`, renamed into place when complete).
    /// `progress` is called after each tensor with the bytes written so far and the total.
    public func write(to path: String, overwrite: Bool, progress: ((Int, Int) -> Void)? = nil) throws(CheckpointError) {
        let file = try AtomicFile(path: path, overwrite: overwrite)
        do throws(CheckpointError) {
            try file.write(header)
            for p in plan {
                do throws(CheckpointError) {
                    try Self.encode(p.source, as: p.dtype) { (raw) throws(CheckpointError) in try file.write(raw) }
                } catch {
                    throw error.inMember(p.name)
                }
                progress?(file.bytesWritten, fileSize)
            }
            try file.commit()
        } catch {
            file.abandon()
            throw error.inFile(path)
        }
    }

    /// The whole file in memory (for tests and small outputs).
    public func bytes() throws(CheckpointError) -> [UInt8] {
        var out = header
        out.reserveCapacity(fileSize)
        for p in plan {
            try Self.encode(p.source, as: p.dtype) { (raw) throws(CheckpointError) in out += raw }
        }
        return out
    }

    /// Hands `tensor`'s elements, converted to `dtype`, little-endian, row-major, to `sink` (one or more calls).
    static func encode(_ tensor: TensorData, as dtype: DType, _ sink: (UnsafeRawBufferPointer) throws(CheckpointError) -> Void)
        throws(CheckpointError)
    {
        if dtype == tensor.dtype {
            let bytes = try tensor.contiguousBytes()
            try sink(bytes.raw)
            withExtendedLifetime(bytes) {}
            return
        }
        let values = try tensor.floats()
        switch dtype {
        case .float32:
            try withRawBytes(values, sink)
        case .float16, .bfloat16:
            let chunk = 1 << 16
            var out = [UInt16](repeating: 0, count: min(chunk, max(values.count, 1)))
            var start = 0
            while start < values.count {
                let n = min(chunk, values.count - start)
                if dtype == .float16 {
                    for i in 0..<n { out[i] = FloatBits.half(values[start + i]).littleEndian }
                } else {
                    for i in 0..<n { out[i] = FloatBits.bfloat(values[start + i]).littleEndian }
                }
                try withRawBytes(out[0..<n], sink)
                start += n
            }
        default:
            throw CheckpointError(.unsupported, "cannot convert \(tensor.dtype.name) to \(dtype.name)")
        }
    }

    /// A JSON string literal.
    static func quoted(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    let hex = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}

/// float32 to half / bfloat16 bit patterns, rounding to nearest even (portable: no `Float16` type).
enum FloatBits {
    static func half(_ f: Float) -> UInt16 {
        let x = f.bitPattern
        let sign = UInt16((x >> 16) & 0x8000)
        let exponent = Int((x >> 23) & 0xFF)
        let mantissa = x & 0x7F_FFFF
        if exponent == 0xFF {  // inf, nan (kept quiet)
            return sign | 0x7C00 | (mantissa != 0 ? UInt16(0x200 | (mantissa >> 13)) : 0)
        }
        let e = exponent - 127 + 15
        if e >= 0x1F { return sign | 0x7C00 }
        if e <= 0 {
            if e < -10 { return sign }
            let m = mantissa | 0x80_0000
            let shift = UInt32(14 - e)
            var h = m >> shift
            let rest = m & ((1 << shift) - 1)
            let halfway: UInt32 = 1 << (shift - 1)
            if rest > halfway || (rest == halfway && (h & 1) == 1) { h += 1 }
            return sign | UInt16(h)
        }
        var h = UInt32(e << 10) | (mantissa >> 13)
        let rest = mantissa & 0x1FFF
        if rest > 0x1000 || (rest == 0x1000 && (h & 1) == 1) { h += 1 }
        return sign | UInt16(h)
    }

    static func bfloat(_ f: Float) -> UInt16 {
        let x = f.bitPattern
        if f.isNaN { return UInt16(x >> 16) | 0x40 }
        let rounded = x &+ 0x7FFF &+ ((x >> 16) & 1)
        return UInt16(rounded >> 16)
    }
}

/// Calls `body` with the raw bytes of `values` (Array's own `withUnsafeBytes` only rethrows untyped errors).
func withRawBytes<C: ContiguousCollection>(_ values: C, _ body: (UnsafeRawBufferPointer) throws(CheckpointError) -> Void)
    throws(CheckpointError)
{
    var failure: CheckpointError?
    values.withUnsafeBytes { raw in
        do throws(CheckpointError) { try body(raw) } catch { failure = error }
    }
    if let failure { throw failure }
}

/// Collections stored contiguously.
protocol ContiguousCollection {
    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R
}
extension Array: ContiguousCollection {}
extension ArraySlice: ContiguousCollection {}

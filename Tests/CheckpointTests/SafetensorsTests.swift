import Foundation
import Testing

@testable import Checkpoint

/// The safetensors reader and writer against the specification (FORMATS.md §5) and files written by
/// the reference library (safetensors 0.8, tools/make_hdf5_fixtures.py).
@Suite("safetensors")
struct SafetensorsTests {
    static let dir = Fixtures.root.appendingPathComponent("safetensors")
    static func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    /// A file from a header string and data bytes.
    static func file(_ header: String, _ data: [UInt8] = [], headerSize: UInt64? = nil) -> ByteSlice {
        let h = Array(header.utf8)
        let n = headerSize ?? UInt64(h.count)
        var bytes: [UInt8] = (0..<8).map { UInt8(truncatingIfNeeded: n >> (8 * UInt64($0))) }
        bytes += h + data
        return ByteBuffer(copying: bytes).all
    }

    static func tensor(_ values: [Float], _ shape: [Int]) throws -> TensorData { try TensorData(float32: values, shape: shape) }

    @Test("reads the reference library's file: every dtype, 0-d and empty tensors")
    func readsPythonFile() throws {
        let data = try Data(contentsOf: Self.dir.appendingPathComponent("expected.json"))
        let expected = try #require(try JSONSerialization.jsonObject(with: data) as? [String: [String: Any]])
        let buffer = try ByteBuffer(mapping: Self.path("python_plain.safetensors"))
        let sd = try CheckpointReader.read(buffer.all, name: "python_plain.safetensors")
        #expect(sd.provenance.format == .safetensors)
        #expect(Set(sd.names) == Set(expected.keys))
        for (name, e) in expected {
            let t = try #require(sd[name])
            #expect(t.shape == (e["shape"] as? [Int] ?? [-1]), "\(name)")
            #expect(t.dtype.name == (e["dtype"] as? String), "\(name)")
            #expect(try t.floats() == (e["values"] as? [Double] ?? []).map { Float($0) }, "\(name)")
            #expect(t.storage.bytes.buffer === buffer, "\(name) is a zero-copy window")
        }
        let meta = try CheckpointReader.read(Self.path("python_metadata.safetensors"))
        let m = try #require(meta.extras.first { $0.name == "__metadata__" }?.value)
        #expect(m["format"]?.stringValue == "pt")
        #expect(m["note"]?.stringValue == "quote \" backslash \\ unicode \u{e9}")
    }

    @Test("the writer reproduces the reference library's bytes exactly (layout order, header, padding)")
    func writerMatchesPython() throws {
        let original = try Data(contentsOf: Self.dir.appendingPathComponent("python_plain.safetensors"))
        let sd = try CheckpointReader.read(Self.path("python_plain.safetensors"))
        // Floats keep their stored types (floatStorage nil), so the tensors are exactly Python's.
        let ours = try SafetensorsWriter(sd.entries, floatStorage: nil).bytes()
        #expect(ours == Array(original))
    }

    @Test("writer: header padded to 8 with spaces, data sorted by element size then name, metadata first")
    func writerLayout() throws {
        let entries: [(name: String, tensor: TensorData)] = [
            ("b", try Self.tensor([1, 2, 3], [3])),
            ("a", try Self.tensor([4, 5], [1, 2])),
            ("c.scalar", try Self.tensor([6], [])),
        ]
        let writer = try SafetensorsWriter(entries, metadata: ["z": "last", "a": "first \"quoted\""], floatStorage: .float16)
        let bytes = try writer.bytes()
        let n = Int(bytes[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        #expect((8 + n) % 8 == 0)
        let header = String(decoding: bytes[8..<(8 + n)], as: UTF8.self)
        #expect(header.hasPrefix("{\"__metadata__\":{\"a\":\"first \\\"quoted\\\"\",\"z\":\"last\"},\"a\":{\"dtype\":\"F16\""))
        #expect(header.hasSuffix(" ") || header.hasSuffix("}"))
        #expect(writer.plan.map(\.name) == ["a", "b", "c.scalar"])
        #expect(bytes.count == writer.fileSize)
        let back = try CheckpointReader.read(ByteBuffer(copying: bytes).all, name: "w.safetensors")
        #expect(try back["b"]?.floats() == [1, 2, 3])
        #expect(back["c.scalar"]?.shape == [])
        // Deterministic.
        #expect(
            try SafetensorsWriter(entries.reversed(), metadata: ["a": "first \"quoted\"", "z": "last"], floatStorage: .float16).bytes()
                == bytes)
    }

    @Test("float16 / bfloat16 rounding to nearest even, overflow, subnormals, NaN")
    func floatRounding() {
        #expect(FloatBits.half(1) == 0x3C00)
        #expect(FloatBits.half(-2) == 0xC000)
        #expect(FloatBits.half(65504) == 0x7BFF)
        #expect(FloatBits.half(65520) == 0x7C00)  // rounds up to infinity
        #expect(FloatBits.half(65519) == 0x7BFF)
        #expect(FloatBits.half(Float(bitPattern: 0x3380_0000)) == 0x0001)  // 2^-24, smallest subnormal
        #expect(FloatBits.half(Float(bitPattern: 0x3300_0000)) == 0x0000)  // 2^-25 ties to even (zero)
        #expect(FloatBits.half(1 + 1.0 / 2048) == 0x3C00)  // halfway, ties to even
        #expect(FloatBits.half(1 + 3.0 / 2048) == 0x3C02)
        #expect(FloatBits.half(.infinity) == 0x7C00)
        #expect(FloatBits.half(.nan) & 0x7C00 == 0x7C00 && FloatBits.half(.nan) & 0x3FF != 0)
        #expect(FloatBits.bfloat(1) == 0x3F80)
        #expect(FloatBits.bfloat(Float(bitPattern: 0x3F80_8000)) == 0x3F80)  // tie to even
        #expect(FloatBits.bfloat(Float(bitPattern: 0x3F81_8000)) == 0x3F82)
        #expect(FloatBits.bfloat(.nan) & 0x7F80 == 0x7F80 && FloatBits.bfloat(.nan) & 0x7F != 0)
        // Every half value survives float32 -> half.
        for h in UInt16(0)...UInt16(0x7BFF) {
            #expect(FloatBits.half(Float16Bits.toFloat(h)) == h)
        }
    }

    struct Bad: CustomStringConvertible, Sendable {
        let description: String
        let header: String
        let data: [UInt8]
        let kind: CheckpointError.Kind
        var headerSize: UInt64? = nil
    }

    static let bad: [Bad] = [
        Bad(description: "header size beyond the file", header: "{}", data: [], kind: .truncated, headerSize: 50),
        Bad(description: "header size over the 100 MB cap", header: "{}", data: [], kind: .limitExceeded, headerSize: 100_000_001),
        Bad(
            description: "gap between tensors",
            header: #"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}}"#,
            data: [1, 2, 3], kind: .malformed),
        Bad(
            description: "overlapping tensors",
            header: #"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}"#,
            data: [1, 2, 3], kind: .malformed),
        Bad(
            description: "bytes not covered by the header", header: #"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#,
            data: [1, 2], kind: .malformed),
        Bad(
            description: "tensor beyond the buffer", header: #"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}"#, data: [1, 2],
            kind: .truncated),
        Bad(
            description: "size does not match dtype x shape", header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#,
            data: [0, 0, 0, 0], kind: .integrity),
        Bad(
            description: "duplicate tensor name",
            header: #"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#,
            data: [1, 2], kind: .malformed),
        Bad(description: "unknown dtype", header: #"{"a":{"dtype":"F13","shape":[1],"data_offsets":[0,1]}}"#, data: [1], kind: .malformed),
        Bad(
            description: "a float8 dtype is known but not converted",
            header: #"{"a":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}"#, data: [1], kind: .unsupported),
        Bad(description: "metadata value not a string", header: #"{"__metadata__":{"n":1}}"#, data: [], kind: .malformed),
        Bad(description: "negative size", header: #"{"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}}"#, data: [], kind: .malformed),
        Bad(
            description: "fractional offset", header: #"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1.0]}}"#, data: [1],
            kind: .malformed),
        Bad(description: "missing field", header: #"{"a":{"dtype":"U8","shape":[1]}}"#, data: [], kind: .malformed),
        Bad(
            description: "unknown field", header: #"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":1}}"#, data: [1],
            kind: .malformed),
        Bad(description: "bytes after the JSON object", header: #"{} x"#, data: [], kind: .malformed),
        Bad(description: "unterminated JSON", header: #"{"a":{"dtype":"U8""#, data: [], kind: .malformed),
        Bad(description: "invalid UTF-8 in a name", header: "{\"\u{1}\":1}", data: [], kind: .malformed),
        Bad(
            description: "shape product overflows", header: #"{"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,0]}}"#,
            data: [], kind: .limitExceeded),
        Bad(
            description: "end before begin", header: #"{"a":{"dtype":"U8","shape":[0],"data_offsets":[1,0]}}"#, data: [0], kind: .malformed),
    ]

    @Test("invalid files are refused with typed errors", arguments: bad)
    func refused(_ bad: Bad) {
        #expect {
            try CheckpointReader.read(Self.file(bad.header, bad.data, headerSize: bad.headerSize), name: "bad.safetensors")
        } throws: { error in
            guard let e = error as? CheckpointError else { return false }
            if e.kind != bad.kind { Issue.record("\(bad): got \(e.description)") }
            return e.kind == bad.kind && e.file == "bad.safetensors"
        }
    }

    @Test("padding spaces and empty tensors are accepted")
    func accepted() throws {
        let sd = try CheckpointReader.read(
            Self.file(
                #"{"e":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]},"s":{"dtype":"I64","shape":[],"data_offsets":[0,8]}}    "#,
                [7, 0, 0, 0, 0, 0, 0, 0]), name: "ok")
        #expect(sd["e"]?.shape == [0, 3])
        #expect(try sd["s"]?.floats() == [7])
    }

    @Test("random corruption of a valid file gives typed errors or a valid read, never a crash")
    func fuzz() throws {
        let original = Array(try Data(contentsOf: Self.dir.appendingPathComponent("python_plain.safetensors")))
        var rng = SplitMix64(seed: 0x5AFE)
        for _ in 0..<300 {
            var bytes = original
            for _ in 0..<Int(1 + rng.next() % 4) {
                let at = Int(rng.next() % UInt64(min(bytes.count, 600)))
                bytes[at] = UInt8(truncatingIfNeeded: rng.next())
            }
            if rng.next() % 4 == 0 { bytes = Array(bytes.prefix(Int(rng.next() % UInt64(bytes.count)))) }
            if let sd = try? CheckpointReader.read(ByteBuffer(copying: bytes).all, name: "fuzz") {
                for e in sd.entries { _ = try? e.tensor.floats() }
            }
        }
    }

    @Test("atomic file: refuses to overwrite, leaves nothing behind when abandoned, replaces only with overwrite")
    func atomicFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("atomic-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let target = dir.appendingPathComponent("out.bin").path
        let a = try AtomicFile(path: target, overwrite: false)
        try a.write([1, 2, 3])
        #expect(!FileManager.default.fileExists(atPath: target))
        a.abandon()
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
        let b = try AtomicFile(path: target, overwrite: false)
        try b.write([4, 5])
        try b.commit()
        #expect(try Data(contentsOf: URL(fileURLWithPath: target)) == Data([4, 5]))
        #expect {
            try AtomicFile(path: target, overwrite: false)
        } throws: { ($0 as? CheckpointError)?.message.contains("refusing to overwrite") == true }
        let c = try AtomicFile(path: target, overwrite: true)
        try c.write([6])
        #expect(try Data(contentsOf: URL(fileURLWithPath: target)) == Data([4, 5]))
        try c.commit()
        #expect(try Data(contentsOf: URL(fileURLWithPath: target)) == Data([6]))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["out.bin"])
        // A writer dropped without commit leaves nothing.
        do {
            let d = try AtomicFile(path: dir.appendingPathComponent("dropped.bin").path, overwrite: false)
            try d.write([9])
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["out.bin"])
    }
}

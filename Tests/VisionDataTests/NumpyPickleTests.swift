import Checkpoint
import Foundation
import Testing

/// numpy arrays in plain pickles, reconstructed as inert tensors by the Checkpoint unpickler
/// (`numpy.core.multiarray._reconstruct` + `numpy.ndarray` + `numpy.dtype` + BUILD), and what it refuses.
@Suite("numpy arrays in pickles")
struct NumpyPickleTests {
    static func variant(_ name: String) -> String { Fixtures.cifar.appendingPathComponent("variants/\(name)").path }

    nonisolated(unsafe) static let arrays: [String: Any] = {
        guard let data = try? Data(contentsOf: Fixtures.cifar.appendingPathComponent("expected.json")),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return [:] }
        return object["arrays"] as? [String: Any] ?? [:]
    }()

    @Test("dtypes, byte orders, Fortran order, 0-d and empty arrays", arguments: [2, 4])
    func arrays(_ protocolNumber: Int) throws {
        let root = try CheckpointReader.readPickle(Self.variant("arrays_protocol\(protocolNumber).pkl"))
        #expect(Self.arrays.count == 7)
        for (name, value) in Self.arrays {
            let want = try #require(value as? [String: Any])
            guard case .object("numpy.ndarray", _, .tensor(let t)?)? = root[name] else {
                Issue.record("\(name): not an array: \(root[name]?.render() ?? "missing")")
                continue
            }
            #expect(t.shape == want["shape"] as? [Int], "\(name)")
            let values = try t.floats().map(Double.init)
            let expected = try #require(want["values"] as? [Double])
            if name == "f8" {
                #expect(
                    values.count == 3 && values[0] == 1.5 && values[1] == -2.25 && values[2].isInfinite, "f8 1e100 becomes inf in float32")
            } else {
                #expect(values == expected, "\(name)")
            }
        }
    }

    @Test(
        "refused: object arrays, structured dtypes, protocol-5 _frombuffer",
        arguments: [
            ("refuse_object_array.pkl", CheckpointError.Kind.unsupported),
            ("refuse_structured.pkl", CheckpointError.Kind.unsupported),
            ("refuse_frombuffer_protocol5.pkl", CheckpointError.Kind.disallowedGlobal),
        ])
    func refusals(_ file: String, _ kind: CheckpointError.Kind) throws {
        let e = try #require(throws: CheckpointError.self) { try CheckpointReader.readPickle(Self.variant(file)) }
        #expect(e.kind == kind, "\(e)")
        #expect(e.file == Self.variant(file))
    }

    /// The bytes of `s`, one per character (all below U+0100), as a pickle's text is written here.
    static func latin1(_ s: String) -> [UInt8] { s.unicodeScalars.map { UInt8(truncatingIfNeeded: $0.value) } }

    static let reconstructHead: [UInt8] = latin1(
        "\u{80}\u{02}cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\u{00}\u{85}U\u{01}b\u{87}R")

    /// A protocol-2 array pickle with the given shape, dtype code and raw data, BUILD included.
    static func arrayPickle(shape: [UInt8], code: String, data: [UInt8], byteOrder: String = "<") -> [UInt8] {
        var p = reconstructHead
        p += latin1("(K\u{01}(") + shape.flatMap { [0x4B, $0] } + [0x74]  // MARK 1 MARK shape... TUPLE
        p += latin1("cnumpy\ndtype\n") + [0x55, UInt8(code.utf8.count)] + Array(code.utf8) + [0x4B, 0, 0x4B, 1, 0x87, 0x52]
        p +=
            [0x28, 0x4B, 3, 0x55, 1] + Array(byteOrder.utf8) + [
                0x4E, 0x4E, 0x4E, 0x4A, 0xFF, 0xFF, 0xFF, 0xFF, 0x4A, 0xFF, 0xFF, 0xFF, 0xFF, 0x4B, 0, 0x74, 0x62,
            ]
        p += [0x89, 0x54] + withUnsafeBytes(of: Int32(data.count).littleEndian, Array.init) + data + [0x74, 0x62, 0x2E]
        return p
    }

    static func read(_ bytes: [UInt8]) throws(CheckpointError) -> PickleValue {
        try CheckpointReader.readPickle(ByteBuffer(copying: bytes).all, name: "inline.pkl")
    }

    @Test("inline array pickle: uint8 [2, 3]")
    func inlineArray() throws {
        let v = try Self.read(Self.arrayPickle(shape: [2, 3], code: "u1", data: [1, 2, 3, 4, 5, 6]))
        guard case .object("numpy.ndarray", _, .tensor(let t)?) = v else { Issue.record("\(v.render())"); return }
        #expect(t.shape == [2, 3] && t.dtype == .uint8)
        #expect(try t.floats() == [1, 2, 3, 4, 5, 6])
    }

    @Test("refused: data size that does not match the shape, negative and overflowing shapes")
    func sizeMismatch() throws {
        let short = try #require(throws: CheckpointError.self) {
            try Self.read(Self.arrayPickle(shape: [2, 3], code: "u1", data: [1, 2, 3]))
        }
        #expect(short.kind == .malformed && short.message.contains("needs 6 bytes"))
        let wide = try #require(throws: CheckpointError.self) {
            try Self.read(Self.arrayPickle(shape: [2, 3], code: "f4", data: [UInt8](repeating: 0, count: 6)))
        }
        #expect(wide.kind == .malformed)
        let unknown = try #require(throws: CheckpointError.self) {
            try Self.read(Self.arrayPickle(shape: [1], code: "U4", data: [0, 0, 0, 0]))
        }
        #expect(unknown.kind == .unsupported)
    }

    @Test("refused: _reconstruct of anything but numpy.ndarray, and ndarray called directly")
    func reconstructOtherClass() throws {
        // _reconstruct(collections.OrderedDict, (0,), b'b')
        let p1 = Self.latin1("\u{80}\u{02}cnumpy.core.multiarray\n_reconstruct\nccollections\nOrderedDict\nK\u{00}\u{85}U\u{01}b\u{87}R.")
        let e1 = try #require(throws: CheckpointError.self) { try Self.read(p1) }
        #expect(e1.kind == .disallowedGlobal)
        // numpy.ndarray((3,)) via REDUCE: would run the constructor.
        let p2 = Self.latin1("\u{80}\u{02}cnumpy\nndarray\nK\u{03}\u{85}\u{85}R.")
        let e2 = try #require(throws: CheckpointError.self) { try Self.read(p2) }
        #expect(e2.kind == .disallowedGlobal)
        // Other numpy functions stay off the allow-list.
        let p3 = Self.latin1("\u{80}\u{02}cnumpy\nload\nU\u{01}x\u{85}R.")
        #expect((try? Self.read(p3)) == nil)
        // A second BUILD on an array is refused (its data is set once).
        var p4 = Self.arrayPickle(shape: [1], code: "u1", data: [9])
        p4.removeLast()  // STOP
        p4 += [0x28, 0x4B, 1, 0x4B, 1, 0x85, 0x4E, 0x89, 0x55, 1, 7, 0x74, 0x62, 0x2E]
        let e4 = try #require(throws: CheckpointError.self) { try Self.read(p4) }
        #expect(e4.kind == .malformed)
    }

    @Test("caps still hold: a deeply nested pickle around an array is refused")
    func depthCap() throws {
        var options = ReadOptions()
        options.limits.maxDepth = 4
        var p: [UInt8] = [0x80, 0x02]
        for _ in 0..<10 { p += [0x5D] }  // ten nested empty lists
        for _ in 0..<9 { p += [0x61] }  // APPEND each into the one below
        p += [0x2E]
        #expect(throws: CheckpointError.self) {
            try CheckpointReader.readPickle(ByteBuffer(copying: p).all, name: "deep.pkl", options: options)
        }
    }
}

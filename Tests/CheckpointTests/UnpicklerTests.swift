import Foundation
import Testing

@testable import Checkpoint

/// Inline-byte tests of the allow-list pickle machine: what it decodes, what it refuses, and the
/// caps that keep hostile pickles bounded.
@Suite("Unpickler")
struct UnpicklerTests {
    /// Runs `bytes` as one pickle and freezes the result.
    static func unpickle(_ bytes: [UInt8], opaque: Bool = false, limits: PickleLimits = PickleLimits()) throws(CheckpointError) -> PickleValue {
        var options = ReadOptions()
        options.limits = limits
        let buffer = ByteBuffer(copying: bytes)
        let (node, _) = try TorchPickle.run(buffer.all, options: options, allowOpaque: opaque)
        return try TorchPickle.freeze(node, pickleLength: bytes.count, options: options)
    }

    static func refusal(_ bytes: [UInt8], opaque: Bool = false, limits: PickleLimits = PickleLimits()) -> CheckpointError? {
        do {
            _ = try unpickle(bytes, opaque: opaque, limits: limits)
            return nil
        } catch {
            return error
        }
    }

    static func text(_ s: String) -> [UInt8] { Array(s.utf8) }

    @Test("scalars: ints of every width, floats, strings, bools, None")
    func scalars() throws {
        // (None, True, False, 7, 300, -2, 2**40, -1 (LONG1), 1.5 (BINFLOAT), 'hé', b'ab' (SHORT_BINSTRING))
        var p: [UInt8] = [0x80, 0x02, 0x28, 0x4E, 0x88, 0x89, 0x4B, 7, 0x4D, 0x2C, 0x01, 0x4A, 0xFE, 0xFF, 0xFF, 0xFF]
        p += [0x8A, 0x06, 0, 0, 0, 0, 0, 0x01]  // LONG1 2**40
        p += [0x8A, 0x01, 0xFF]  // LONG1 -1
        p += [0x47, 0x3F, 0xF8, 0, 0, 0, 0, 0, 0]  // BINFLOAT 1.5 big-endian
        p += [0x58, 3, 0, 0, 0, 0x68, 0xC3, 0xA9]  // BINUNICODE 'hé'
        p += [0x55, 2, 0x61, 0x62]  // SHORT_BINSTRING b'ab'
        p += [0x74, 0x2E]  // TUPLE, STOP
        let v = try Self.unpickle(p)
        guard case .tuple(let items) = v else { Issue.record("not a tuple: \(v.render())"); return }
        #expect(items.count == 11)
        #expect(v.render() == "(None, True, False, 7, 300, -2, 1099511627776, -1, 1.5, 'hé', b<2 bytes>)")
        #expect(items[10].stringValue == "ab")
    }

    @Test("memo is by reference: a dict filled after BINPUT is seen filled through BINGET")
    func memoByReference() throws {
        // d = {}; memo[0] = d; l = [d]; d['k'] = 1 ; result (l, memo[0])
        let p: [UInt8] = [
            0x80, 0x02, 0x7D, 0x71, 0x00,  // EMPTY_DICT BINPUT 0
            0x5D, 0x68, 0x00, 0x61,  // EMPTY_LIST BINGET 0 APPEND  -> stack: d, [d]
            0x68, 0x00, 0x58, 1, 0, 0, 0, 0x6B, 0x4B, 1, 0x73, 0x30,  // BINGET 0 'k' 1 SETITEM POP
            0x86, 0x2E,  // TUPLE2 (d, [d]) STOP
        ]
        let v = try Self.unpickle(p)
        #expect(v.render() == "({'k': 1}, [{'k': 1}])")
    }

    @Test("OrderedDict via REDUCE, BUILD sets attributes (not items)")
    func orderedDictAndBuild() throws {
        var p: [UInt8] = [0x80, 0x02] + Self.text("ccollections\nOrderedDict\n") + [0x29, 0x52]
        p += [0x58, 1, 0, 0, 0, 0x61, 0x4B, 5, 0x73]  // ['a'] = 5
        p += [0x7D, 0x58, 9, 0, 0, 0] + Self.text("_metadata") + [0x7D, 0x73, 0x62, 0x2E]  // BUILD {'_metadata': {}}
        let v = try Self.unpickle(p)
        #expect(v.render() == "{'a': 5}")
    }

    @Test("disallowed globals are named with their offset, and nothing runs", arguments: [
        ("posix", "system"), ("os", "system"), ("builtins", "eval"), ("builtins", "exec"), ("subprocess", "Popen"),
        ("torch", "load"), ("collections", "defaultdict"), ("numpy", "load"),
    ])
    func disallowedGlobal(_ module: String, _ name: String) throws {
        let p: [UInt8] = [0x80, 0x02] + Self.text("c\(module)\n\(name)\n") + [0x58, 4, 0, 0, 0] + Self.text("true") + [0x85, 0x52, 0x2E]
        let e = try #require(Self.refusal(p))
        #expect(e.kind == .disallowedGlobal)
        #expect(e.message.contains("'\(module).\(name)'"))
        #expect(e.offset == 2)
        // Opaque-class mode (module pickles) still refuses REDUCE of anything it does not model.
        let e2 = try #require(Self.refusal(p, opaque: true))
        #expect(e2.kind == .disallowedGlobal)
    }

    @Test("STACK_GLOBAL goes through the same allow-list")
    func stackGlobal() throws {
        let p: [UInt8] = [0x80, 0x04, 0x8C, 8] + Self.text("builtins") + [0x8C, 4] + Self.text("eval") + [0x93, 0x8C, 1, 0x31, 0x85, 0x52, 0x2E]
        let e = try #require(Self.refusal(p))
        #expect(e.kind == .disallowedGlobal)
        #expect(e.message.contains("builtins.eval"))
        #expect(e.offset == 18)
    }

    @Test("INST and OBJ are refused")
    func instAndObj() throws {
        let inst: [UInt8] = [0x28] + Self.text("S'ls'\n") + Self.text("ios\nsystem\n") + [0x2E]
        let e = try #require(Self.refusal(inst))
        #expect(e.kind == .disallowedGlobal)
        #expect(e.message.contains("os.system"))
        let obj: [UInt8] = [0x80, 0x02, 0x28] + Self.text("ccollections\nOrderedDict\n") + [0x6F, 0x2E]
        let e2 = try #require(Self.refusal(obj))
        #expect(e2.kind == .disallowedGlobal)
        #expect(e2.message.contains("OBJ"))
    }

    @Test("a module-mode opaque class can be instantiated but never called")
    func opaqueClass() throws {
        let newobj: [UInt8] = [0x80, 0x02] + Self.text("cmypkg.models\nNet\n") + [0x29, 0x81, 0x7D, 0x58, 1, 0, 0, 0, 0x78, 0x4B, 3, 0x73, 0x62, 0x2E]
        let v = try Self.unpickle(newobj, opaque: true)
        #expect(v.render() == "mypkg.models.Net(x=3)")
        #expect(Self.refusal(newobj)?.kind == .disallowedGlobal)
        let blocked: [UInt8] = [0x80, 0x02] + Self.text("cos\nPathLike\n") + [0x29, 0x81, 0x2E]
        #expect(Self.refusal(blocked, opaque: true)?.kind == .disallowedGlobal)
    }

    @Test("SETITEM on a list and APPEND on a dict are refused (CVE-2026-24747 class)")
    func containerTypeChecks() throws {
        let setitem: [UInt8] = [0x80, 0x02, 0x5D, 0x4B, 0, 0x4B, 1, 0x73, 0x2E]
        #expect(Self.refusal(setitem)?.kind == .malformed)
        let append: [UInt8] = [0x80, 0x02, 0x7D, 0x4B, 0, 0x61, 0x2E]
        #expect(Self.refusal(append)?.kind == .malformed)
    }

    @Test("deep nesting is capped")
    func deepNesting() throws {
        let depth = 5000
        let p: [UInt8] = [0x80, 0x02] + [UInt8](repeating: 0x5D, count: depth) + [UInt8](repeating: 0x61, count: depth - 1) + [0x2E]
        let e = try #require(Self.refusal(p))
        #expect(e.kind == .limitExceeded)
        #expect(e.message.contains("deeper than 200"))
    }

    @Test("shared references cannot blow up (billion laughs)")
    func billionLaughs() throws {
        // l0 = []; l(i+1) = [li, li] repeated 40 times: 2^40 values if expanded.
        var p: [UInt8] = [0x80, 0x02, 0x5D]
        for _ in 0..<40 { p += [0x32, 0x86] }  // DUP TUPLE2
        p += [0x2E]
        let e = try #require(Self.refusal(p))
        #expect(e.kind == .limitExceeded)
    }

    @Test("memo entries are capped")
    func memoCap() throws {
        var limits = PickleLimits()
        limits.maxMemoEntries = 10
        var p: [UInt8] = [0x80, 0x02, 0x4E]
        for i in 0..<11 { p += [0x72, UInt8(i), 0, 0, 0] }
        p += [0x2E]
        let e = try #require(Self.refusal(p, limits: limits))
        #expect(e.kind == .limitExceeded)
    }

    @Test("declared lengths beyond the data are truncation errors, not allocations", arguments: [
        [0x80, 0x02, 0x58, 0xFF, 0xFF, 0xFF, 0x7F] as [UInt8],  // BINUNICODE 2 GB
        [0x80, 0x04, 0x8D, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F],  // BINUNICODE8
        [0x80, 0x02, 0x8E, 0, 0, 0, 0, 1, 0, 0, 0],  // BINBYTES8 4 GB
        [0x80, 0x02, 0x54, 0xFF, 0xFF, 0xFF, 0x7F],  // BINSTRING
    ])
    func hugeDeclaredLengths(_ p: [UInt8]) throws {
        let e = try #require(Self.refusal(p))
        #expect(e.kind == .truncated)
    }

    @Test("integers longer than the cap are refused")
    func longIntegers() throws {
        let p: [UInt8] = [0x80, 0x02, 0x8B, 0x00, 0x00, 0x10, 0x00] + [UInt8](repeating: 1, count: 64) + [0x2E]
        #expect(Self.refusal(p)?.kind == .limitExceeded)
        // A big integer that fits the cap is kept as bytes.
        let big: [UInt8] = [0x80, 0x02, 0x8A, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0x2E]
        guard case .bigInt(let bytes) = try Self.unpickle(big) else { Issue.record("not a big int"); return }
        #expect(bytes == [1, 2, 3, 4, 5, 6, 7, 8, 9])
    }

    @Test("stack underflow, unknown opcodes and a missing STOP are typed errors", arguments: [
        [0x80, 0x02, 0x2E] as [UInt8],  // STOP on an empty stack
        [0x80, 0x02, 0x4E, 0xFF],  // unknown opcode
        [0x80, 0x02, 0x4E],  // no STOP
        [0x80, 0x02, 0x52, 0x2E],  // REDUCE with nothing
        [0x80, 0x02, 0x68, 0x05, 0x2E],  // BINGET of an undefined memo slot
        [0x80, 0x02, 0x4E, 0x4E, 0x2E],  // two values at STOP
    ])
    func malformedPrograms(_ p: [UInt8]) throws {
        let e = try #require(Self.refusal(p))
        #expect(e.kind == .malformed || e.kind == .truncated)
    }

    @Test("argparse.Namespace and numpy scalars become inert values")
    func trainingExtras() throws {
        // Namespace via NEWOBJ + BUILD {'lr': 0.1}
        var p: [UInt8] = [0x80, 0x02, 0x28] + Self.text("cargparse\nNamespace\n") + [0x29, 0x81, 0x7D]
        p += [0x58, 2, 0, 0, 0] + Self.text("lr") + [0x47, 0x3F, 0xB9, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9A, 0x73, 0x62]
        // numpy.core.multiarray.scalar(numpy.dtype('f8', False, True) BUILD state, bytes of 0.875)
        p += Self.text("cnumpy.core.multiarray\nscalar\n") + Self.text("cnumpy\ndtype\n")
        p += [0x58, 2, 0, 0, 0] + Self.text("f8") + [0x89, 0x88, 0x87, 0x52]
        p += [0x28, 0x4B, 3, 0x58, 1, 0, 0, 0, 0x3C, 0x4E, 0x4E, 0x4E, 0x4A, 0xFF, 0xFF, 0xFF, 0xFF, 0x4A, 0xFF, 0xFF, 0xFF, 0xFF, 0x4B, 0, 0x74, 0x62]
        p += [0x43, 8, 0, 0, 0, 0, 0, 0, 0xEC, 0x3F, 0x86, 0x52]  // SHORT_BINBYTES 0.875 LE, TUPLE2, REDUCE
        p += [0x74, 0x2E]
        let v = try Self.unpickle(p)
        #expect(v.render() == "(argparse.Namespace(lr=0.1), 0.875)")
    }
}

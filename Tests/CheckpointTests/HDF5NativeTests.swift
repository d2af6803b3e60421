import Foundation
import Testing

@testable import Checkpoint

/// The Swift HDF5 parser (`HDF5NativeFile`) on its own: every dataset of every HDF5 fixture
/// bit-exact against h5py, newer-format files (superblock 2/3, version-2 object headers, dense
/// links and attributes, layout 4), hand-made hostile files refused with their exact typed error,
/// and seeded byte mutations of every fixture each read or refused in-process (a crash fails the run).
/// Fixtures and expectations: tools/make_hdf5_hostile.py.
@Suite("HDF5 native parser")
struct HDF5NativeTests {
    static let hostileDir = Fixtures.root.appendingPathComponent("hdf5-hostile")
    static let fixtureDir = Fixtures.root.appendingPathComponent("hdf5")

    static func json(_ name: String) -> [String: [String: Any]] {
        guard let data = try? Data(contentsOf: hostileDir.appendingPathComponent(name)),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: [String: Any]]
        else { return [:] }
        return object
    }

    /// digests.json: file -> dataset path -> dtype / shape / SHA-256 of its bytes, as h5py read them.
    nonisolated(unsafe) static let digests = json("digests.json")
    /// expected.json: file -> the error the reader must give (or "ok").
    nonisolated(unsafe) static let expected = json("expected.json")

    static func path(of file: String) -> String {
        let hostile = hostileDir.appendingPathComponent(file).path
        return FileManager.default.fileExists(atPath: hostile) ? hostile : fixtureDir.appendingPathComponent(file).path
    }

    /// Every dataset reachable through hard links, by path, read by the native parser. Each object
    /// is visited once (a mutated file can link a group into itself). With `attributes`, also reads
    /// every attribute of every object, and the strings of the string-valued ones.
    static func datasets(_ file: HDF5NativeFile, attributes: Bool = false) throws -> [String: TensorData] {
        var out: [String: TensorData] = [:]
        var seen = Set<Int>()
        func walk(_ group: HDF5ObjectHeader, _ prefix: String) throws {
            for link in try file.links(ofGroupAt: group.address, path: prefix) {
                guard case .hard(let address) = link.target, seen.insert(address).inserted else { continue }
                let name = prefix.isEmpty ? link.name : prefix + "/" + link.name
                let header = try file.objectHeader(at: address, path: name)
                if attributes {
                    for a in try file.attributes(of: header, path: name) where HDF5NativeFile.isString(a.type) {
                        _ = try file.strings(a, path: name)
                    }
                }
                switch file.kind(of: header) {
                case .group: try walk(header, name)
                case .dataset: out[name] = try file.tensor(header, path: name).tensor
                case .other: continue
                }
            }
        }
        let root = try file.root()
        seen.insert(root.address)
        if attributes { _ = try file.attributes(of: root, path: "") }
        try walk(root, "")
        return out
    }

    /// numpy's dtype string for a tensor (`<f4`, `>f2`, `|b1`, ...).
    static func numpyName(_ t: TensorData) -> String {
        let order = t.storage.byteOrder == .big ? ">" : "<"
        switch t.dtype {
        case .float32: return order + "f4"
        case .float64: return order + "f8"
        case .float16: return order + "f2"
        case .int64: return order + "i8"
        case .int32: return order + "i4"
        case .int16: return order + "i2"
        case .uint16: return order + "u2"
        case .uint32: return order + "u4"
        case .uint64: return order + "u8"
        case .int8: return "|i1"
        case .uint8: return "|u1"
        case .bool: return "|b1"
        case .bfloat16: return "|V2"
        default: return "?"
        }
    }

    @Test("every dataset of every HDF5 fixture is bit-exact against h5py (dtype, shape, SHA-256)", arguments: digests.keys.sorted())
    func bitExact(_ name: String) throws {
        let expected = try #require(Self.digests[name] as? [String: [String: Any]])
        let buffer = try ByteBuffer(mapping: Self.path(of: name))
        let file = try HDF5NativeFile(buffer.all)
        let got = try Self.datasets(file)
        #expect(got.keys.sorted() == expected.keys.sorted())
        for (key, e) in expected {
            let t = try #require(got[key], "\(name): \(key)")
            #expect(Self.numpyName(t) == e["dtype"] as? String, "\(name): \(key) dtype")
            #expect(t.shape == e["shape"] as? [Int], "\(name): \(key) shape")
            #expect(sha256Hex(t.storage.bytes) == e["sha256"] as? String, "\(name): \(key) bytes")
        }
    }

    @Test("newer formats read through the whole reader: superblock 2 behind a userblock, superblock 3 with dense links")
    func newerFormats() throws {
        let latest = try CheckpointReader.read(Self.path(of: "latest_features.h5"))
        #expect(latest.provenance.format == .hdf5)
        #expect(latest.names.count == 30)
        #expect(latest.names.contains("many/d19") && latest.names.contains("few/x2") && latest.names.contains("implicit"))
        #expect(try latest["compact"]?.floats() == [5, -4, 3, -2, 1])
        #expect(try latest["implicit"]?.floats() == (0..<15).map { Float($0) * 0.25 })
        #expect(try latest["chunked_single"]?.floats() == (0..<60).map { Float($0) * 0.25 })
        #expect(try latest["many/d19"]?.floats() == (0..<22).map { Float($0) * 0.25 - 19 })
        #expect(try latest["fixed_array"]?.floats() == (0..<20).map { Float($0) * 0.25 })
        #expect(try latest["fixed_array_gzip"]?.floats() == (0..<105).map { Float($0) * 0.25 })
        let extras = Dictionary(latest.extras.map { ($0.name, $0.value.stringValue ?? "") }, uniquingKeysWith: { a, _ in a })
        #expect(extras == ["source": "tools/make_hdf5_hostile.py", "fixed": "fixed-length"])
        // Twelve attributes on one dataset: dense attribute storage (fractal heap + v2 B-tree).
        let file = try HDF5NativeFile(try ByteBuffer(mapping: Self.path(of: "latest_features.h5")).all)
        let root = try file.root()
        let (dense, kind) = try #require(try file.resolve("attrs_dense", from: root, path: ""))
        #expect(kind == .dataset)
        #expect(dense.first(HDF5NativeFile.attributeInfoMessage) != nil)
        let attributes = try file.attributes(of: dense, path: "attrs_dense")
        #expect(attributes.map(\.name) == (0..<12).map { String(format: "a%02d", $0) })
        #expect(try attributes.map { try file.strings($0, path: "") } == (0..<12).map { ["value \($0)"] })
        #expect(file.superblockVersion == 3)

        let userblock = try CheckpointReader.read(Self.path(of: "v108_userblock.h5"))
        #expect(userblock.names.sorted() == ["g/i64", "w", "z"])
        #expect(try userblock["z"]?.floats() == (0..<40).map { Float($0) * 0.25 })
        #expect(userblock["g/i64"]?.dtype == .int64)
        #expect(userblock.extras.contains { $0.name == "note" && $0.value.stringValue == "behind a userblock" })
        let v2 = try HDF5NativeFile(try ByteBuffer(mapping: Self.path(of: "v108_userblock.h5")).all)
        #expect(v2.superblockVersion == 2 && v2.base == 512)
    }

    @Test("dense storage with indirect fractal heap blocks and v2 B-trees of depth 1: 300 links, 40 attributes")
    func denseStorage() throws {
        let sd = try CheckpointReader.read(Self.path(of: "dense_links.h5"))
        let names = ["data"] + (0..<300).map { String(format: "g/h%03d", $0) }
        #expect(sd.names.sorted() == names)
        for name in names { #expect(try sd[name]?.floats() == (0..<6).map { Float($0) * 0.25 }, "\(name)") }
        let extras = Dictionary(sd.extras.map { ($0.name, $0.value.stringValue ?? "") }, uniquingKeysWith: { a, _ in a })
        #expect(extras == Dictionary(uniqueKeysWithValues: (0..<40).map { (String(format: "attr%02d", $0), String(repeating: "v\($0)", count: 20)) }))
    }

    static var hostileFiles: [String] { expected.filter { $0.value["ok"] == nil }.map(\.key).sorted() }

    @Test("hand-made hostile files are refused with their exact typed error", arguments: hostileFiles)
    func hostile(_ name: String) throws {
        let e = try #require(Self.expected[name])
        let path = Self.path(of: name)
        do {
            let sd = try CheckpointReader.read(path)
            Issue.record("\(name) was read (\(sd.names.count) tensors); \(e["kind"] ?? "") expected")
        } catch {
            #expect(error.kind.rawValue == e["kind"] as? String, "\(name): \(error)")
            if let message = e["message"] as? String {
                #expect(error.message == message, "\(name)")
            } else {
                let prefix = try #require(e["message_prefix"] as? String)
                #expect(error.message.hasPrefix(prefix), "\(name): \(error.message)")
            }
            #expect(error.file == path)
        }
    }

    /// Signatures of HDF5's metadata structures: mutations aim at them, at the superblock and at
    /// the object headers a clean read parsed.
    static let signatures = ["TREE", "SNOD", "HEAP", "GCOL", "OHDR", "OCHK", "FRHP", "FHDB", "FHIB", "BTHD", "BTLF", "BTIN"]

    static func metadataOffsets(_ bytes: [UInt8], _ file: HDF5NativeFile) -> [Int] {
        var starts = Set(file.parsedHeaderAddresses)
        starts.insert(file.base)
        let patterns = signatures.map { Array($0.utf8) }
        if bytes.count >= 4 {
            for i in 0..<(bytes.count - 3) where bytes[i] >= 0x42 && bytes[i] <= 0x54 {
                for p in patterns where bytes[i] == p[0] && bytes[i + 1] == p[1] && bytes[i + 2] == p[2] && bytes[i + 3] == p[3] {
                    starts.insert(i)
                }
            }
        }
        return starts.sorted()
    }

    static var mutationFiles: [String] { digests.keys.sorted() }
    /// Mutants per file: 24 in the normal suite; `tools/fuzz_hdf5` raises it with HDF5_MUTANTS_PER_FILE.
    static let mutantsPerFile = Int(ProcessInfo.processInfo.environment["HDF5_MUTANTS_PER_FILE"] ?? "") ?? 24

    /// Each mutant goes through the whole reader (`CheckpointReader.read`, checksums verified) and
    /// through a walk of every object, attribute and dataset with checksums off, so that mutations
    /// of checksummed structures reach the parsing behind the checksum.
    @Test("seeded byte mutations of every HDF5 fixture are each read or refused with a typed error", arguments: mutationFiles)
    func mutations(_ name: String) throws {
        let original = Array(try Data(contentsOf: URL(fileURLWithPath: Self.path(of: name))))
        let clean = try HDF5NativeFile(original.withUnsafeBytes { ByteBuffer(copying: $0) }.all)
        _ = try Self.datasets(clean)
        let targets = Self.metadataOffsets(original, clean)
        #expect(targets.count >= 3)
        var rng = SplitMix64(seed: 0x4844_4635 &+ UInt64(name.utf8.reduce(0) { $0 &* 31 &+ Int($1) } & 0xFFFF))
        var ok = 0
        var refused: [CheckpointError.Kind: Int] = [:]
        var deepOK = 0
        var deepRefused = 0
        for m in 0..<Self.mutantsPerFile {
            var bytes = original
            let start = targets[Int(rng.next() % UInt64(targets.count))]
            let count = 1 + Int(rng.next() % 4)
            for _ in 0..<count {
                let at = start + Int(rng.next() % 96)
                guard at < bytes.count else { continue }
                switch rng.next() % 4 {
                case 0: bytes[at] = UInt8(truncatingIfNeeded: rng.next())
                case 1: bytes[at] = 0xFF
                case 2: bytes[at] ^= UInt8(1 << (rng.next() % 8))
                default: bytes[at] = bytes[at] &+ 1
                }
            }
            let label = "\(name)#\(m)"
            do {
                _ = try CheckpointReader.read(bytes.withUnsafeBytes { ByteBuffer(copying: $0) }.all, name: label)
                ok += 1
            } catch {
                #expect(error.file == label)
                refused[error.kind, default: 0] += 1
            }
            do {
                let unchecked = try HDF5NativeFile(bytes.withUnsafeBytes { ByteBuffer(copying: $0) }.all, verifyingChecksums: false)
                for t in try Self.datasets(unchecked, attributes: true).values { _ = try? t.floats() }
                deepOK += 1
            } catch {
                #expect(error is CheckpointError)
                deepRefused += 1
            }
        }
        let refusedTotal = refused.values.reduce(0, +)
        #expect(ok + refusedTotal == Self.mutantsPerFile)
        #expect(deepOK + deepRefused == Self.mutantsPerFile)
        print(
            "HDF5 mutations \(name): \(Self.mutantsPerFile) mutants, reader: \(ok) read, \(refusedTotal) refused "
                + "\(refused.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key.rawValue)=\($0.value)" }); "
                + "walk without checksums: \(deepOK) read, \(deepRefused) refused")
    }

    @Test("lookup3 matches Bob Jenkins' published hashlittle values")
    func lookup3() {
        // lookup3.c driver: hashlittle("", 0, 0) = 0xdeadbeef; "Four score and seven years ago" with 0 -> 0x17770551.
        #expect(HDF5Lookup3.hash(UnsafeRawBufferPointer(start: nil, count: 0)) == 0xdead_beef)
        let text = Array("Four score and seven years ago".utf8)
        #expect(text.withUnsafeBytes { HDF5Lookup3.hash($0) } == 0x1777_0551)
        #expect(text.withUnsafeBytes { HDF5Lookup3.hash($0, initval: 1) } == 0xcd62_8161)
    }
}

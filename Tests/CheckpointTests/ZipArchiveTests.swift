import CZlib
import Foundation
import Testing

@testable import Checkpoint

/// Tests for `ZipArchive`: Python-written fixtures (Tests/Fixtures/archive, made by
/// `python3 tools/make_archive_fixtures.py`), PyTorch-style ZIP64 archives built byte by byte below,
/// corruption, truncation and zip bombs.
@Suite struct ZipArchiveTests {
    // MARK: Expected contents (the same values tools/make_archive_fixtures.py writes)

    /// `STORED` in the fixture script.
    static let stored = Array("hello, stored member\n".utf8)
    /// `REPEATED` in the fixture script: `b"PretrainedVision " * 400`.
    static let repeated = Array(String(repeating: "PretrainedVision ", count: 400).utf8)
    /// `BINARY` in the fixture script: `bytes(range(256)) * 4`.
    static let binary: [UInt8] = (0..<4).flatMap { _ in (0...255).map { UInt8($0) } }

    static func fixture(_ name: String) throws -> ByteSlice {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        let path = root.appendingPathComponent("Fixtures/archive/\(name)").path
        return try ByteBuffer(mapping: path).all
    }

    static func slice(_ bytes: [UInt8]) -> ByteSlice { ByteBuffer(copying: bytes).all }

    /// Reads every member; returns name → contents.
    static func readAll(_ zip: ZipArchive, verifyCRC: Bool = true) throws(CheckpointError) -> [String: [UInt8]] {
        var out: [String: [UInt8]] = [:]
        for e in zip.entries { out[e.name] = try zip.contents(of: e, verifyCRC: verifyCRC).bytes }
        return out
    }

    /// Runs `body` and returns the `CheckpointError` it throws, recording an issue if it does not throw.
    static func error<T>(_ body: () throws(CheckpointError) -> T, sourceLocation: SourceLocation = #_sourceLocation) -> CheckpointError? {
        do {
            _ = try body()
            Issue.record("expected a CheckpointError", sourceLocation: sourceLocation)
            return nil
        } catch {
            return error
        }
    }

    // MARK: Python-written fixtures

    static let fixtureFiles = ["plain.zip", "streamed.zip", "force_zip64.zip"]

    @Test("Python zipfile fixtures read back byte-exact", arguments: fixtureFiles)
    func readsPythonFixture(file: String) throws {
        let zip = try ZipArchive(Self.fixture(file))
        let contents = try Self.readAll(zip)
        #expect(contents["archive/stored.txt"] == Self.stored)
        #expect(contents["archive/repeated.txt"] == Self.repeated)
        if file != "force_zip64.zip" {
            #expect(contents["archive/binary.bin"] == Self.binary)
        }
        let repeated = try #require(zip.entry(named: "archive/repeated.txt"))
        #expect(repeated.method == 8)
        #expect(repeated.uncompressedSize == 6800)
        #expect(repeated.crc32 == 0x1130_6B9F)
        #expect(zip.entry(named: "archive/stored.txt")?.method == 0)
        #expect(zip.entry(named: "missing") == nil)
        #expect(!zip.hasUnsafeNames)
    }

    @Test("Plain fixture: order, comment, directory, UTF-8 name, empty members, zero-copy stored data")
    func plainFixtureDetails() throws {
        let data = try Self.fixture("plain.zip")
        let zip = try ZipArchive(data)
        #expect(
            zip.entries.map(\.name) == [
                "archive/stored.txt", "archive/repeated.txt", "archive/binary.bin", "archive/empty_stored",
                "archive/empty_deflated", "archive/dir/", "archive/na\u{EF}ve-\u{FC}ber.txt",
            ])
        #expect(zip.comment == Array("fixture comment".utf8))
        #expect(!zip.isZip64)
        #expect(zip.entry(named: "archive/dir/")?.isDirectory == true)
        #expect(zip.entry(named: "archive/stored.txt")?.isDirectory == false)
        let unicode = try #require(zip.entry(named: "archive/na\u{EF}ve-\u{FC}ber.txt"))
        #expect(unicode.flags & 0x0800 != 0)
        #expect(try zip.contents(of: unicode).bytes == Self.stored)
        let emptyDeflated = try #require(zip.entry(named: "archive/empty_deflated"))
        #expect(emptyDeflated.method == 8 && emptyDeflated.compressedSize == 2)
        #expect(try zip.contents(of: emptyDeflated).count == 0)
        #expect(try zip.contents(of: #require(zip.entry(named: "archive/empty_stored"))).count == 0)
        // Stored data is a window into the input, not a copy.
        let storedEntry = try #require(zip.entry(named: "archive/stored.txt"))
        let stored = try zip.contents(of: storedEntry)
        #expect(stored.buffer === data.buffer)
        #expect(stored.offset == data.offset + storedEntry.dataOffset)
        #expect(storedEntry.dataOffset == 30 + "archive/stored.txt".utf8.count)
    }

    @Test("Streamed fixture: data descriptors, zero sizes in local headers")
    func streamedFixtureUsesDescriptors() throws {
        let data = try Self.fixture("streamed.zip")
        let zip = try ZipArchive(data)
        for e in zip.entries {
            #expect(e.flags & 0x0008 != 0)
            // Local header CRC and sizes are zero; the central directory has the real values.
            #expect(data.bytes[(e.localHeaderOffset + 14)..<(e.localHeaderOffset + 26)].allSatisfy { $0 == 0 })
            #expect(e.compressedSize > 0)
        }
    }

    // MARK: PyTorch-style archives built byte by byte

    @Test(
        "PyTorch-style ZIP64 archive (data descriptors, 64-byte alignment, ZIP64 end records)",
        arguments: [false, true])
    func pytorchStyleZip64(forceExtras: Bool) throws {
        let members = Self.torchMembers()
        let built = ZipBuilder(zip64: true, forceZip64Extras: forceExtras).build(members)
        let archive = try ZipArchive(Self.slice(built.bytes))
        #expect(archive.isZip64)
        #expect(archive.centralDirectoryOffset == built.centralDirectoryOffset)
        #expect(archive.entries.map(\.name) == members.map(\.name))
        for (i, (entry, member)) in zip(archive.entries, members).enumerated() {
            #expect(entry.flags == 0x0808)
            #expect(entry.localHeaderOffset == built.localOffsets[i])
            #expect(entry.dataOffset == built.dataOffsets[i])
            #expect(entry.dataOffset % 64 == 0)
            #expect(entry.compressedSize == member.payload.count)
            #expect(entry.uncompressedSize == member.content.count)
            #expect(try archive.contents(of: entry).bytes == member.content)
        }
    }

    @Test("ZIP64 values replace 0xFFFFFFFF central fields; the classic end record may hold real values")
    func zip64FieldsApplied() throws {
        var builder = ZipBuilder(zip64: true, forceZip64Extras: true)
        builder.classicSentinels = false
        let members = Self.torchMembers()
        let built = builder.build(members)
        // Central entries really carry sentinels.
        let c = built.centralOffsets[2]
        #expect(Array(built.bytes[(c + 20)..<(c + 28)]) == [UInt8](repeating: 0xFF, count: 8))
        #expect(Array(built.bytes[(c + 42)..<(c + 46)]) == [UInt8](repeating: 0xFF, count: 4))
        let zip = try ZipArchive(Self.slice(built.bytes))
        #expect(zip.entries[2].localHeaderOffset == built.localOffsets[2])
        #expect(zip.entries[2].compressedSize == members[2].payload.count)
        #expect(try Self.readAll(zip)["archive/data/1"] == members[2].content)
    }

    @Test("Classic (non-ZIP64) archive built byte by byte, with deflate and a comment")
    func classicArchive() throws {
        var builder = ZipBuilder(zip64: false)
        builder.comment = Array("PK\u{5}\u{6} lookalike in the comment".utf8)
        let built = builder.build(Self.torchMembers())
        let zip = try ZipArchive(Self.slice(built.bytes))
        #expect(!zip.isZip64)
        #expect(zip.comment == builder.comment)
        #expect(try Self.readAll(zip) == Dictionary(uniqueKeysWithValues: Self.torchMembers().map { ($0.name, $0.content) }))
    }

    @Test("An archive with no entries")
    func emptyArchive() throws {
        for zip64 in [false, true] {
            let zip = try ZipArchive(Self.slice(ZipBuilder(zip64: zip64).build([]).bytes))
            #expect(zip.entries.isEmpty)
            #expect(zip.isZip64 == zip64)
        }
    }

    // MARK: Integrity

    @Test("CRC mismatch is an integrity error naming the member; verifyCRC false and CRC 0 skip the check")
    func crcMismatch() throws {
        var members = Self.torchMembers()
        let built = ZipBuilder(zip64: true).build(members)
        var bytes = built.bytes
        bytes[built.dataOffsets[1] + 3] ^= 0x01
        let zip = try ZipArchive(Self.slice(bytes))
        let entry = zip.entries[1]
        let e = Self.error { () throws(CheckpointError) in try zip.contents(of: entry) }
        #expect(e?.kind == .integrity)
        #expect(e?.member == "archive/data/0")
        #expect(e?.offset == built.dataOffsets[1])
        #expect(e?.message.contains("CRC-32") == true)
        #expect(try zip.contents(of: entry, verifyCRC: false).count == members[1].content.count)

        // A deflated member with a corrupted CRC.
        let deflated = zip.entries[3]
        #expect(deflated.method == 8)
        var crcBytes = built.bytes
        crcBytes[built.centralOffsets[3] + 16] ^= 0x80
        let zip2 = try ZipArchive(Self.slice(crcBytes))
        #expect(Self.error { () throws(CheckpointError) in try zip2.contents(of: zip2.entries[3]) }?.kind == .integrity)

        // CRC 0 means "not recorded" (torch.serialization.set_crc32_options(False)).
        members[1].crc = 0
        var zeroCRC = ZipBuilder(zip64: true).build(members).bytes
        zeroCRC[built.dataOffsets[1] + 3] ^= 0x01
        let zip3 = try ZipArchive(Self.slice(zeroCRC))
        #expect(try zip3.contents(of: zip3.entries[1]).count == members[1].content.count)
    }

    @Test("CRC-32 helper matches the standard check value")
    func crc32CheckValue() {
        #expect(Inflate.crc32(Self.slice(Array("123456789".utf8))) == 0xCBF4_3926)
        #expect(Inflate.crc32(Self.slice([])) == 0)
        #expect(Inflate.crc32(Self.slice(Self.repeated)) == 0x1130_6B9F)
    }

    // MARK: Truncation and corruption

    enum TruncationSource: String, CaseIterable, Sendable {
        case plain = "plain.zip", streamed = "streamed.zip", forceZip64 = "force_zip64.zip"
        case torchZip64 = "built: PyTorch-style ZIP64"
        case torchZip64Extras = "built: ZIP64 extra fields"

        func bytes() throws -> [UInt8] {
            switch self {
            case .plain, .streamed, .forceZip64: try ZipArchiveTests.fixture(rawValue).bytes
            case .torchZip64: ZipBuilder(zip64: true).build(ZipArchiveTests.torchMembers()).bytes
            case .torchZip64Extras: ZipBuilder(zip64: true, forceZip64Extras: true).build(ZipArchiveTests.torchMembers()).bytes
            }
        }
    }

    @Test(
        "Truncating an archive at every offset gives a CheckpointError, never a crash",
        arguments: TruncationSource.allCases)
    func truncationAtEveryOffset(source: TruncationSource) throws {
        let full = try source.bytes()
        let buffer = ByteBuffer(copying: full)
        #expect(try Self.readAll(ZipArchive(buffer.all)).count > 0)
        var kinds: Set<CheckpointError.Kind> = []
        for n in 0..<full.count {
            let prefix = try buffer.all.slice(0, n)
            do {
                let zip = try ZipArchive(prefix)
                _ = try Self.readAll(zip)
                Issue.record("truncation at \(n) of \(full.count) was not detected")
            } catch {
                kinds.insert(error.kind)
            }
        }
        #expect(kinds.isSubset(of: [.truncated, .malformed]))
    }

    /// One corruption of a built archive and the error kind it must produce.
    struct Corruption: Sendable, CustomTestStringConvertible {
        let testDescription: String
        let expected: CheckpointError.Kind
        var builder = ZipBuilder(zip64: true)
        /// Changes the built archive.
        let mutate: @Sendable (inout [UInt8], ZipBuilder.Built) -> Void

        static let all: [Corruption] = [
            Corruption(testDescription: "central entry signature", expected: .malformed) { b, l in
                b[l.centralOffsets[1]] ^= 0xFF
            },
            Corruption(testDescription: "entry count larger than the directory holds", expected: .malformed) { b, l in
                b.zipPut64(1000, at: l.zip64RecordOffset! + 24)
                b.zipPut64(1000, at: l.zip64RecordOffset! + 32)
            },
            Corruption(testDescription: "entry count above the cap", expected: .limitExceeded) { b, l in
                b.zipPut64(1 << 21, at: l.zip64RecordOffset! + 24)
                b.zipPut64(1 << 21, at: l.zip64RecordOffset! + 32)
            },
            Corruption(testDescription: "entry count smaller than the directory", expected: .malformed) { b, l in
                b.zipPut64(3, at: l.zip64RecordOffset! + 24)
                b.zipPut64(3, at: l.zip64RecordOffset! + 32)
            },
            Corruption(testDescription: "central directory offset past the end", expected: .malformed) { b, l in
                b.zipPut64(UInt64(b.count) + 100, at: l.zip64RecordOffset! + 48)
            },
            Corruption(testDescription: "central directory offset near UInt64.max", expected: .malformed) { b, l in
                b.zipPut64(UInt64.max - 3, at: l.zip64RecordOffset! + 48)
            },
            Corruption(testDescription: "central directory size too large", expected: .malformed) { b, l in
                b.zipPut64(UInt64(l.zip64RecordOffset! - l.centralDirectoryOffset + 1), at: l.zip64RecordOffset! + 40)
            },
            Corruption(testDescription: "name length runs past the central directory", expected: .truncated) { b, l in
                b.zipPut16(60000, at: l.centralOffsets.last! + 28)
            },
            Corruption(testDescription: "local header offset inside the central directory", expected: .malformed) { b, l in
                b.zipPut32(UInt32(l.centralDirectoryOffset + 4), at: l.centralOffsets[0] + 42)
            },
            Corruption(testDescription: "local header signature", expected: .malformed) { b, l in
                b[l.localOffsets[2] + 2] = 0x07
            },
            Corruption(testDescription: "local name differs from central name", expected: .malformed) { b, l in
                b[l.localOffsets[2] + 30] = UInt8(ascii: "X")
            },
            Corruption(testDescription: "local method differs from central method", expected: .malformed) { b, l in
                b.zipPut16(8, at: l.localOffsets[1] + 8)
            },
            Corruption(testDescription: "compressed size runs into the central directory", expected: .malformed) { b, l in
                b.zipPut32(UInt32(l.centralDirectoryOffset), at: l.centralOffsets.last! + 20)
            },
            Corruption(testDescription: "compressed size overlaps the next member", expected: .malformed) { b, l in
                b.zipPut32(UInt32(l.localOffsets[2] - l.dataOffsets[1] + 1), at: l.centralOffsets[1] + 20)
                b.zipPut32(UInt32(l.localOffsets[2] - l.dataOffsets[1] + 1), at: l.centralOffsets[1] + 24)
            },
            Corruption(testDescription: "two entries point at the same local header", expected: .malformed) { b, l in
                // Same name too, so only the duplicate/overlap checks can catch it.
                let n = l.centralOffsets[2]
                let name = "archive/data/0".utf8
                b.replaceSubrange((n + 46)..<(n + 46 + name.count), with: name)
                b.zipPut32(UInt32(l.localOffsets[1]), at: n + 42)
            },
            Corruption(testDescription: "duplicate names", expected: .malformed) { b, l in
                for offset in [l.centralOffsets[2] + 46, l.localOffsets[2] + 30] {
                    b[offset + "archive/data/".utf8.count] = UInt8(ascii: "0")
                }
            },
            Corruption(testDescription: "ZIP64 locator points at the wrong offset", expected: .malformed) { b, l in
                b.zipPut64(UInt64(l.zip64RecordOffset! + 1), at: l.locatorOffset! + 8)
            },
            Corruption(testDescription: "ZIP64 locator offset absurd", expected: .malformed) { b, l in
                b.zipPut64(UInt64.max, at: l.locatorOffset! + 8)
            },
            Corruption(testDescription: "ZIP64 record size absurd", expected: .malformed) { b, l in
                b.zipPut64(UInt64.max, at: l.zip64RecordOffset! + 4)
            },
            Corruption(
                testDescription: "ZIP64 extra field missing", expected: .malformed,
                builder: ZipBuilder(zip64: true, forceZip64Extras: true)
            ) { b, l in
                b.zipPut16(0x9999, at: l.centralOffsets[1] + 46 + "archive/data/0".utf8.count)
            },
            Corruption(
                testDescription: "ZIP64 extra field too short", expected: .malformed,
                builder: ZipBuilder(zip64: true, forceZip64Extras: true)
            ) { b, l in
                // Shrink the field to 16 bytes; the remaining 8 become a junk 4-byte-header field.
                let field = l.centralOffsets[1] + 46 + "archive/data/0".utf8.count
                b.zipPut16(16, at: field + 2)
                b.zipPut16(0x7777, at: field + 20)
                b.zipPut16(4, at: field + 22)
                b.zipPut16(0xFFFF, at: l.centralOffsets[1] + 34)  // disk start now also needs ZIP64
            },
            Corruption(
                testDescription: "classic end record disagrees with ZIP64", expected: .malformed,
                builder: {
                    var z = ZipBuilder(zip64: true); z.classicSentinels = false; return z
                }()
            ) { b, l in
                b.zipPut16(3, at: l.eocdOffset + 10)
            },
            Corruption(
                testDescription: "classic end record defers to a missing ZIP64 record", expected: .malformed,
                builder: ZipBuilder(zip64: false)
            ) { b, l in
                b.zipPut32(0xFFFF_FFFF, at: l.eocdOffset + 16)
            },
            Corruption(testDescription: "multi-disk archive", expected: .unsupported, builder: ZipBuilder(zip64: false)) { b, l in
                b.zipPut16(1, at: l.eocdOffset + 4)
            },
            Corruption(testDescription: "no end-of-central-directory record", expected: .malformed) { b, l in
                b[l.eocdOffset + 3] = 0
            },
            Corruption(testDescription: "UTF-8 flag on a name that is not UTF-8", expected: .malformed) { b, l in
                b.zipPut16(0x0808, at: l.centralOffsets[0] + 8)
                b[l.centralOffsets[0] + 46] = 0xFF
                b[l.localOffsets[0] + 30] = 0xFF
            },
        ]
    }

    @Test("A corrupted central directory or end record gives a typed error", arguments: Corruption.all)
    func corruptedArchive(corruption: Corruption) throws {
        let built = corruption.builder.build(Self.torchMembers())
        #expect(try ZipArchive(Self.slice(built.bytes)).entries.count == 4)
        var bytes = built.bytes
        corruption.mutate(&bytes, built)
        let e = Self.error { () throws(CheckpointError) in
            let zip = try ZipArchive(Self.slice(bytes))
            return try Self.readAll(zip)
        }
        #expect(e?.kind == corruption.expected, "\(e.map(String.init(describing:)) ?? "no error")")
    }

    @Test("Errors name the member and the archive offset")
    func errorContext() throws {
        let built = ZipBuilder(zip64: true).build(Self.torchMembers())
        var bytes = built.bytes
        bytes[built.localOffsets[2]] = 0
        let e = Self.error { () throws(CheckpointError) in try ZipArchive(Self.slice(bytes)) }
        #expect(e?.member == "archive/data/1")
        #expect(e?.offset == built.localOffsets[2])
        #expect(e?.description.contains("[archive/data/1]:\(built.localOffsets[2]): error: malformed") == true)
    }

    @Test("Not a zip, or too short for an end record")
    func notAZip() {
        #expect(Self.error { () throws(CheckpointError) in try ZipArchive(Self.slice([])) }?.kind == .truncated)
        #expect(
            Self.error { () throws(CheckpointError) in try ZipArchive(Self.slice(Array(repeating: 0x41, count: 21))) }?.kind == .truncated)
        #expect(
            Self.error { () throws(CheckpointError) in try ZipArchive(Self.slice(Array(repeating: 0x41, count: 70_000))) }?.kind
                == .malformed)
    }

    // MARK: Methods, encryption, bombs

    @Test(
        "Unsupported methods and encryption are reported by name",
        arguments: [
            (UInt16(12), UInt16(0x0808), "bzip2"), (UInt16(9), UInt16(0x0808), "deflate64"), (UInt16(93), UInt16(0), "zstd"),
            (UInt16(0), UInt16(0x0809), "encrypted"), (UInt16(8), UInt16(0x0001), "encrypted"),
        ])
    func unsupported(method: UInt16, flags: UInt16, word: String) throws {
        let member = ZipBuilder.Member(name: "archive/x", content: Self.stored, method: method, flags: flags)
        let zip = try ZipArchive(Self.slice(ZipBuilder(zip64: true).build([member]).bytes))
        let e = Self.error { () throws(CheckpointError) in try zip.contents(of: zip.entries[0]) }
        #expect(e?.kind == .unsupported)
        #expect(e?.member == "archive/x")
        #expect(e?.message.contains(word) == true)
        if method != 0 && method != 8 { #expect(e?.message.contains("\(method)") == true) }
    }

    /// Deflate streams built by hand (fixed Huffman codes): one literal zero then `matches` copies of
    /// 258 bytes at distance 1, i.e. `1 + 258 * matches` zero bytes from about `matches * 13 / 8` bytes.
    static func zerosDeflate(matches: Int) -> [UInt8] {
        var w = BitWriter()
        w.bits(1, 1)  // BFINAL
        w.bits(1, 2)  // BTYPE = 01, fixed Huffman
        w.code(0x30, 8)  // literal 0
        for _ in 0..<matches {
            w.code(0xC5, 8)  // length symbol 285 = 258 bytes
            w.code(0, 5)  // distance symbol 0 = distance 1
        }
        w.code(0, 7)  // end of block
        return w.bytes
    }

    @Test("A hand-made deflate stream inflates byte-exact")
    func handMadeDeflate() throws {
        let stream = Self.zerosDeflate(matches: 1000)
        let content = [UInt8](repeating: 0, count: 1 + 258 * 1000)
        let member = ZipBuilder.Member(name: "archive/zeros", payload: stream, content: content)
        let zip = try ZipArchive(Self.slice(ZipBuilder(zip64: true).build([member]).bytes))
        #expect(try zip.contents(of: zip.entries[0]).bytes == content)
    }

    @Test(
        "Zip bombs: more data than declared, absurd declared sizes, fewer bytes than declared",
        arguments: [
            // (declared uncompressed size, expected kind)
            (1000, CheckpointError.Kind.integrity),  // stream makes 1 MiB; only 1001 bytes are ever allocated
            (0, .integrity),
            (1 << 40, .limitExceeded),  // above the 16 GiB cap
            (3 << 30, .limitExceeded),  // below the cap but beyond 1032 × the compressed size
            (1 + 258 * 4096 + 1, .integrity),  // within the ratio, but the stream ends one byte short
        ])
    func zipBomb(declared: Int, expected: CheckpointError.Kind) throws {
        let stream = Self.zerosDeflate(matches: 4096)  // 1 056 769 zero bytes from ~6.6 KB
        let content = [UInt8](repeating: 0, count: 1 + 258 * 4096)
        var member = ZipBuilder.Member(name: "archive/bomb", payload: stream, content: content)
        member.uncompressedSize = declared
        member.crc = 0
        let zip = try ZipArchive(Self.slice(ZipBuilder(zip64: true, forceZip64Extras: true).build([member]).bytes))
        #expect(zip.entries[0].uncompressedSize == declared)
        let e = Self.error { () throws(CheckpointError) in try zip.contents(of: zip.entries[0]) }
        #expect(e?.kind == expected)
        #expect(e?.member == "archive/bomb")
    }

    @Test("A stored member whose sizes disagree is malformed")
    func storedSizeMismatch() throws {
        var member = ZipBuilder.Member(name: "archive/s", content: Self.stored)
        member.uncompressedSize = 5
        let zip = try ZipArchive(Self.slice(ZipBuilder(zip64: true).build([member]).bytes))
        #expect(Self.error { () throws(CheckpointError) in try zip.contents(of: zip.entries[0]) }?.kind == .malformed)
    }

    @Test("Invalid or cut deflate data")
    func badDeflateData() throws {
        // Block type 11 is reserved.
        let bad = ZipBuilder.Member(name: "archive/bad", payload: [0x07, 0x00, 0x00], content: [1, 2, 3])
        let zip = try ZipArchive(Self.slice(ZipBuilder(zip64: true).build([bad]).bytes))
        #expect(Self.error { () throws(CheckpointError) in try zip.contents(of: zip.entries[0]) }?.kind == .malformed)
        // The stream is cut short: the compressed size ends inside it.
        let full = Self.zerosDeflate(matches: 100)
        var cut = ZipBuilder.Member(name: "archive/cut", payload: Array(full.prefix(full.count / 2)), content: [])
        cut.uncompressedSize = 1 + 258 * 100
        let zip2 = try ZipArchive(Self.slice(ZipBuilder(zip64: true).build([cut]).bytes))
        #expect(Self.error { () throws(CheckpointError) in try zip2.contents(of: zip2.entries[0]) }?.kind == .truncated)
    }

    // MARK: Names

    @Test(
        "Unsafe names are recorded, not rejected",
        arguments: [
            ("../evil", true), ("/etc/passwd", true), ("archive/../../x", true), ("C:/x", true), ("a\\b", true),
            ("archive/data.pkl", false), ("archive/..data", false), ("archive/data/0", false),
        ])
    func unsafeNames(name: String, unsafe: Bool) throws {
        let member = ZipBuilder.Member(name: name, content: Self.stored)
        let zip = try ZipArchive(Self.slice(ZipBuilder(zip64: false).build([member]).bytes))
        #expect(zip.hasUnsafeNames == unsafe)
        #expect(zip.entries[0].hasUnsafeName == unsafe)
        #expect(try zip.contents(of: zip.entries[0]).bytes == Self.stored)
    }

    @Test("Names without the UTF-8 flag are code page 437")
    func cp437Names() throws {
        var member = ZipBuilder.Member(name: "x", content: Self.stored, flags: 0)
        member.rawName = [0x80, 0x81, 0x2E, 0xE1, 0xFF]
        let zip = try ZipArchive(Self.slice(ZipBuilder(zip64: false).build([member]).bytes))
        #expect(zip.entries[0].name == "\u{C7}\u{FC}.\u{DF}\u{A0}")
        #expect(zip.entries[0].rawName == [0x80, 0x81, 0x2E, 0xE1, 0xFF])
        #expect(zip.entry(named: "\u{C7}\u{FC}.\u{DF}\u{A0}") != nil)
    }

    // MARK: Test support

    /// The records of a small PyTorch checkpoint, plus one deflated member.
    static func torchMembers() -> [ZipBuilder.Member] {
        let storage = (0..<100).map { UInt8($0 * 7 & 0xFF) }
        let zeros = [UInt8](repeating: 0, count: 1 + 258 * 10)
        return [
            ZipBuilder.Member(name: "archive/data.pkl", content: [0x80, 0x02, 0x7D, 0x71, 0x00, 0x2E]),
            ZipBuilder.Member(name: "archive/data/0", content: storage),
            ZipBuilder.Member(name: "archive/data/1", content: Self.binary),
            ZipBuilder.Member(name: "archive/zeros", payload: zerosDeflate(matches: 10), content: zeros),
        ]
    }
}

extension ZipArchiveTests {
    /// Writes zip archives the way PyTorch's writer (miniz) does: flags 0x0808, zero CRC and sizes in
    /// local headers, data descriptors, `FB` padding extra fields aligning data to 64 bytes, and (with
    /// `zip64`) a ZIP64 end record and locator before the classic end record.
    struct ZipBuilder: Sendable {
        /// One member: `payload` is what is stored in the archive, `content` what it decompresses to.
        struct Member: Sendable {
            var name: String
            var rawName: [UInt8]
            var payload: [UInt8]
            var content: [UInt8]
            var method: UInt16
            var flags: UInt16
            var crc: UInt32
            var uncompressedSize: Int

            /// A stored member (or, with another method, one whose payload is `content` as is).
            init(name: String, content: [UInt8], method: UInt16 = 0, flags: UInt16 = 0x0808) {
                self.init(name: name, payload: content, content: content, method: method, flags: flags)
            }

            /// A member whose stored bytes differ from its contents (deflate).
            init(name: String, payload: [UInt8], content: [UInt8], method: UInt16 = 8, flags: UInt16 = 0x0808) {
                self.name = name
                rawName = Array(name.utf8)
                self.payload = payload
                self.content = content
                self.method = method
                self.flags = flags
                crc = testCRC32(content)
                uncompressedSize = content.count
            }
        }

        /// Where things ended up.
        struct Built: Sendable {
            var bytes: [UInt8] = []
            var localOffsets: [Int] = []
            var dataOffsets: [Int] = []
            var centralOffsets: [Int] = []
            var centralDirectoryOffset = 0
            var zip64RecordOffset: Int?
            var locatorOffset: Int?
            var eocdOffset = 0
        }

        var zip64: Bool
        /// Write 0xFFFFFFFF sizes and offsets in the central directory and the real values in ZIP64 extra fields.
        var forceZip64Extras = false
        /// With `zip64`, write 0xFFFF / 0xFFFFFFFF in the classic end record (else the real values).
        var classicSentinels = true
        var alignment = 64
        var comment: [UInt8] = []

        func build(_ members: [Member]) -> Built {
            var out = Built()
            var b: [UInt8] = []
            for m in members {
                let local = b.count
                out.localOffsets.append(local)
                b.zipPut32(0x0403_4B50)
                b.zipPut16(0)  // version needed: miniz writes 0
                b.zipPut16(m.flags)
                b.zipPut16(m.method)
                b.zipPut16(0)
                b.zipPut16(0x21)
                b.zipPut32(0)  // CRC, sizes: in the data descriptor
                b.zipPut32(0)
                b.zipPut32(0)
                b.zipPut16(UInt16(m.rawName.count))
                let unpadded = local + 30 + m.rawName.count
                var padding = (alignment - unpadded % alignment) % alignment
                if padding > 0 && padding < 4 { padding += alignment }
                b.zipPut16(UInt16(padding))
                b += m.rawName
                if padding > 0 {
                    b.zipPut16(0x4246)  // "FB"
                    b.zipPut16(UInt16(padding - 4))
                    b += [UInt8](repeating: UInt8(ascii: "Z"), count: padding - 4)
                }
                out.dataOffsets.append(b.count)
                b += m.payload
                b.zipPut32(0x0807_4B50)
                b.zipPut32(m.crc)
                if zip64 {
                    b.zipPut64(UInt64(m.payload.count))
                    b.zipPut64(UInt64(m.uncompressedSize))
                } else {
                    b.zipPut32(UInt32(m.payload.count))
                    b.zipPut32(UInt32(m.uncompressedSize))
                }
            }
            out.centralDirectoryOffset = b.count
            for (m, local) in zip(members, out.localOffsets) {
                out.centralOffsets.append(b.count)
                var extra: [UInt8] = []
                if forceZip64Extras {
                    extra.zipPut16(0x0001)
                    extra.zipPut16(24)
                    extra.zipPut64(UInt64(m.uncompressedSize))
                    extra.zipPut64(UInt64(m.payload.count))
                    extra.zipPut64(UInt64(local))
                }
                b.zipPut32(0x0201_4B50)
                b.zipPut16(0)
                b.zipPut16(0)
                b.zipPut16(m.flags)
                b.zipPut16(m.method)
                b.zipPut16(0)
                b.zipPut16(0x21)
                b.zipPut32(m.crc)
                b.zipPut32(forceZip64Extras ? 0xFFFF_FFFF : UInt32(m.payload.count))
                b.zipPut32(forceZip64Extras ? 0xFFFF_FFFF : UInt32(truncatingIfNeeded: m.uncompressedSize))
                b.zipPut16(UInt16(m.rawName.count))
                b.zipPut16(UInt16(extra.count))
                b.zipPut16(0)
                b.zipPut16(0)
                b.zipPut16(0)
                b.zipPut32(0)
                b.zipPut32(forceZip64Extras ? 0xFFFF_FFFF : UInt32(local))
                b += m.rawName
                b += extra
            }
            let cdSize = b.count - out.centralDirectoryOffset
            if zip64 {
                out.zip64RecordOffset = b.count
                b.zipPut32(0x0606_4B50)
                b.zipPut64(44)
                b.zipPut16(45)
                b.zipPut16(45)
                b.zipPut32(0)
                b.zipPut32(0)
                b.zipPut64(UInt64(members.count))
                b.zipPut64(UInt64(members.count))
                b.zipPut64(UInt64(cdSize))
                b.zipPut64(UInt64(out.centralDirectoryOffset))
                out.locatorOffset = b.count
                b.zipPut32(0x0706_4B50)
                b.zipPut32(0)
                b.zipPut64(UInt64(out.zip64RecordOffset!))
                b.zipPut32(1)
            }
            let sentinel = zip64 && classicSentinels
            out.eocdOffset = b.count
            b.zipPut32(0x0605_4B50)
            b.zipPut16(0)
            b.zipPut16(0)
            b.zipPut16(sentinel ? 0xFFFF : UInt16(members.count))
            b.zipPut16(sentinel ? 0xFFFF : UInt16(members.count))
            b.zipPut32(sentinel ? 0xFFFF_FFFF : UInt32(cdSize))
            b.zipPut32(sentinel ? 0xFFFF_FFFF : UInt32(out.centralDirectoryOffset))
            b.zipPut16(UInt16(comment.count))
            b += comment
            out.bytes = b
            return out
        }
    }

}

/// Writes bits least-significant first, as deflate packs them.
private struct BitWriter {
    var bytes: [UInt8] = []
    var used = 0

    mutating func bit(_ b: UInt32) {
        if used == 0 { bytes.append(0) }
        bytes[bytes.count - 1] |= UInt8(b & 1) << UInt8(used)
        used = (used + 1) % 8
    }

    /// A value, least-significant bit first (header fields, extra bits).
    mutating func bits(_ value: UInt32, _ count: Int) {
        for i in 0..<count { bit(value >> UInt32(i)) }
    }

    /// A Huffman code, most-significant bit first.
    mutating func code(_ value: UInt32, _ count: Int) {
        for i in (0..<count).reversed() { bit(value >> UInt32(i)) }
    }
}

/// A bitwise CRC-32 independent of zlib, for building archives.
private func testCRC32(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for b in bytes {
        crc ^= UInt32(b)
        for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    }
    return ~crc
}

extension [UInt8] {
    fileprivate mutating func zipPut16(_ v: UInt16) { append(UInt8(v & 0xFF)); append(UInt8(v >> 8)) }
    fileprivate mutating func zipPut32(_ v: UInt32) { for i in 0..<4 { append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
    fileprivate mutating func zipPut64(_ v: UInt64) { for i in 0..<8 { append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
    fileprivate mutating func zipPut16(_ v: UInt16, at o: Int) { self[o] = UInt8(v & 0xFF); self[o + 1] = UInt8(v >> 8) }
    fileprivate mutating func zipPut32(_ v: UInt32, at o: Int) { for i in 0..<4 { self[o + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) } }
    fileprivate mutating func zipPut64(_ v: UInt64, at o: Int) { for i in 0..<8 { self[o + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) } }
}

/// The CRC-32 used for zip records: the carry-less multiplication path against zlib's byte-wise one.
@Suite("CRC-32")
struct CRC32Tests {
    @Test("equals zlib's crc32 for every length 0 ... 700 at 3 offsets, and for 1 MiB + 13 bytes")
    func matchesZlib() throws {
        var state: UInt64 = 7
        let bytes = (0..<(1 << 20) + 16).map { _ -> UInt8 in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 56)
        }
        let buffer = ByteBuffer(copying: bytes)
        func zlib(_ s: ByteSlice) -> UInt32 {
            UInt32(truncatingIfNeeded: CZlib.crc32(0, s.base.assumingMemoryBound(to: UInt8.self), uInt(s.count)))
        }
        var mismatches = 0
        for length in 0...700 {
            for offset in 0..<3 {
                let s = try buffer.all.slice(offset, length)
                if Inflate.crc32(s) != zlib(s) { mismatches += 1 }
            }
        }
        #expect(mismatches == 0)
        let big = try buffer.all.slice(3, (1 << 20) + 13)
        #expect(Inflate.crc32(big) == zlib(big))
        #expect(Inflate.crc32(ByteBuffer(copying: Array("123456789".utf8)).all) == 0xCBF4_3926)
    }
}

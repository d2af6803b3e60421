import Foundation
import Testing

@testable import Checkpoint

/// Tests for `TarArchive`: Python-written PAX, GNU and ustar fixtures (Tests/Fixtures/archive, made by
/// `python3 tools/make_archive_fixtures.py`), hand-built headers, corruption and truncation.
@Suite struct TarArchiveTests {
    // MARK: Expected contents (the same values tools/make_archive_fixtures.py writes)

    static let stored = Array("hello, stored member\n".utf8)
    static let repeated = Array(String(repeating: "PretrainedVision ", count: 400).utf8)
    static let binary: [UInt8] = (0..<4).flatMap { _ in (0...255).map { UInt8($0) } }
    static let longName = "archive/" + String(repeating: "very_long_directory_name/", count: 6) + "tensor_data.bin"
    static let unicodeName = "archive/na\u{EF}ve-\u{FC}ber.txt"
    static let ustarPrefixed = "prefix/" + String(repeating: "p", count: 100) + "/file.txt"

    static func fixture(_ name: String) throws -> ByteSlice {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        return try ByteBuffer(mapping: root.appendingPathComponent("Fixtures/archive/\(name)").path).all
    }

    static func slice(_ bytes: [UInt8]) -> ByteSlice { ByteBuffer(copying: bytes).all }

    /// The regular files each fixture holds, in order (the directory and the symlink are skipped).
    static func expectedMembers(_ file: String) -> [(String, [UInt8])] {
        [
            ("storages", repeated), ("tensors", binary), ("pickle", stored), ("empty", []), (longName, stored),
            (file == "ustar.tar" ? ustarPrefixed : unicodeName, Array(binary.prefix(100))),
        ]
    }

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

    @Test("Python tarfile fixtures read back byte-exact", arguments: ["pax.tar", "gnu.tar", "ustar.tar"])
    func readsPythonFixture(file: String) throws {
        let data = try Self.fixture(file)
        let tar = try TarArchive(data)
        let expected = Self.expectedMembers(file)
        #expect(tar.entries.map(\.name) == expected.map(\.0))
        for (entry, (name, content)) in zip(tar.entries, expected) {
            #expect(entry.data.bytes == content, "\(name)")
            #expect(entry.data.buffer === data.buffer)  // zero-copy
            #expect(entry.data.offset == entry.headerOffset + 512)
            #expect(tar.member(named: name)?.data.bytes == content)
        }
        #expect(tar.member(named: "dir") == nil)
        #expect(tar.member(named: "link") == nil)
        #expect(tar.member(named: "missing") == nil)
        #expect(tar.member(named: "pickle/")?.data.bytes == Self.stored)
        #expect(!tar.hasUnsafeNames)
    }

    @Test("PAX fixture: long and non-ASCII names come from PAX path records")
    func paxLongNames() throws {
        let data = try Self.fixture("pax.tar")
        let tar = try TarArchive(data)
        let long = try #require(tar.member(named: Self.longName))
        // The member's own header follows a PAX header and its data block.
        let paxHeader = long.headerOffset - 1024
        #expect(data.bytes[paxHeader + 156] == UInt8(ascii: "x"))
        #expect(long.data.bytes == Self.stored)
        #expect(tar.member(named: Self.unicodeName)?.data.bytes == Array(Self.binary.prefix(100)))
    }

    // MARK: Hand-built archives

    @Test("PAX size and path override the header; GNU long names; ustar prefix")
    func extendedHeaders() throws {
        var b: [UInt8] = []
        // A PAX header whose size (5) overrides the header's size field (0).
        let records = paxRecords([("path", "pax/renamed"), ("size", "5"), ("mtime", "1.5")])
        b += tarHeader(name: "PaxHeaders/x", size: records.count, type: "x")
        b += tarPadded(records)
        b += tarHeader(name: "short", size: 0)
        b += tarPadded(Array("abcde".utf8))
        // A GNU long name.
        let gnuName = String(repeating: "g", count: 150)
        b += tarHeader(name: "././@LongLink", size: gnuName.utf8.count + 1, type: "L", magic: .gnu)
        b += tarPadded(Array(gnuName.utf8) + [0])
        b += tarHeader(name: String(gnuName.prefix(99)), size: 3, magic: .gnu)
        b += tarPadded([1, 2, 3])
        // A ustar prefix.
        b += tarHeader(name: "name.bin", size: 2, prefix: "some/prefix")
        b += tarPadded([9, 8])
        // A global PAX header changes nothing.
        b += tarHeader(name: "global", size: paxRecords([("comment", "hi")]).count, type: "g")
        b += tarPadded(paxRecords([("comment", "hi")]))
        b += tarHeader(name: "plain", size: 1)
        b += tarPadded([7])
        b += [UInt8](repeating: 0, count: 1024)
        let tar = try TarArchive(Self.slice(b))
        #expect(tar.entries.map(\.name) == ["pax/renamed", gnuName, "some/prefix/name.bin", "plain"])
        #expect(tar.entries.map(\.data.bytes) == [Array("abcde".utf8), [1, 2, 3], [9, 8], [7]])
    }

    @Test("GNU base-256 sizes")
    func base256Size() throws {
        var header = tarHeader(name: "big", size: 0)
        // 0x80 marker, then 11 bytes big-endian: 300.
        let field: [UInt8] = [0x80] + [UInt8](repeating: 0, count: 9) + [0x01, 0x2C]
        header.replaceSubrange(124..<136, with: field)
        tarFixChecksum(&header)
        let content = (0..<300).map { UInt8($0 & 0xFF) }
        let tar = try TarArchive(Self.slice(header + tarPadded(content)))
        #expect(tar.entries.count == 1)
        #expect(tar.member(named: "big")?.data.bytes == content)

        // Negative (0xFF) and overflowing base-256 sizes are errors.
        var negative = header
        negative[124] = 0xFF
        tarFixChecksum(&negative)
        #expect(Self.error { () throws(CheckpointError) in try TarArchive(Self.slice(negative + tarPadded(content))) }?.kind == .malformed)
        var huge = header
        huge.replaceSubrange(125..<136, with: [UInt8](repeating: 0xFF, count: 11))
        tarFixChecksum(&huge)
        #expect(Self.error { () throws(CheckpointError) in try TarArchive(Self.slice(huge + tarPadded(content))) }?.kind == .limitExceeded)
    }

    @Test("Directories (including V7 trailing-slash ones), links and devices are skipped")
    func skipsNonRegular() throws {
        var b: [UInt8] = []
        b += tarHeader(name: "v7dir/", size: 0, type: "\0")
        b += tarHeader(name: "dir", size: 0, type: "5")
        // Python's tarfile gives links no data, whatever their size field says.
        b += tarHeader(name: "hardlink", size: 1000, type: "1")
        b += tarHeader(name: "fifo", size: 0, type: "6")
        b += tarHeader(name: "v7file", size: 4, type: "\0")
        b += tarPadded([1, 2, 3, 4])
        b += tarHeader(name: "contiguous", size: 1, type: "7")
        b += tarPadded([5])
        b += tarHeader(name: "unknown", size: 3, type: "Q")
        b += tarPadded([0, 0, 0])
        let tar = try TarArchive(Self.slice(b))  // no end-of-archive blocks: ends at the end of the data
        #expect(tar.entries.map(\.name) == ["v7file", "contiguous"])
        #expect(tar.member(named: "v7file")?.data.bytes == [1, 2, 3, 4])
    }

    @Test("Duplicate names: member(named:) returns the last, like Python's tarfile")
    func duplicateNamesLastWins() throws {
        let b = tarHeader(name: "pickle", size: 1) + tarPadded([1]) + tarHeader(name: "pickle", size: 1) + tarPadded([2])
        let tar = try TarArchive(Self.slice(b))
        #expect(tar.entries.count == 2)
        #expect(tar.member(named: "pickle")?.data.bytes == [2])
    }

    @Test("Stops at the first zero block; the old signed checksum is accepted")
    func endMarkerAndSignedChecksum() throws {
        var header = tarHeader(name: "\u{E9}t\u{E9}", size: 1)  // bytes >= 0x80 make the sums differ
        var signed = 0
        for (i, b) in header.enumerated() { signed += (148..<156).contains(i) ? 32 : Int(Int8(bitPattern: b)) }
        var unsigned = 0
        for (i, b) in header.enumerated() { unsigned += (148..<156).contains(i) ? 32 : Int(b) }
        #expect(signed != unsigned)
        let digits = String(signed, radix: 8)
        header.replaceSubrange(148..<156, with: Array((String(repeating: "0", count: 6 - digits.count) + digits).utf8) + [0, 0x20])
        let b = header + tarPadded([42]) + [UInt8](repeating: 0, count: 512) + tarHeader(name: "after", size: 0)
        let tar = try TarArchive(Self.slice(b))
        #expect(tar.entries.map(\.name) == ["\u{E9}t\u{E9}"])
    }

    // MARK: Corruption

    @Test("A corrupted header checksum is malformed", arguments: [0, 100, 148, 156, 300, 511])
    func checksumCorruption(byte: Int) throws {
        var b = try Self.fixture("pax.tar").bytes
        let tensors = 8192  // header of "tensors" (after storages and the directory)
        #expect(b[tensors + 156] == UInt8(ascii: "0"))
        b[tensors + byte] ^= 0x01
        let e = Self.error { () throws(CheckpointError) in try TarArchive(Self.slice(b)) }
        #expect(e?.kind == .malformed)
        #expect(e?.offset == tensors)
        // Corrupting data (not a header) is not detected by tar.
        var d = try Self.fixture("pax.tar").bytes
        d[tensors + 512 + 10] ^= 0xFF
        #expect(try TarArchive(Self.slice(d)).entries.count == 6)
    }

    @Test("Malformed headers and extended headers", arguments: TarMalformation.allCases)
    func malformed(_ m: TarMalformation) {
        let e = Self.error { () throws(CheckpointError) in try TarArchive(Self.slice(m.bytes)) }
        #expect(e?.kind == m.expected, "\(e.map(String.init(describing:)) ?? "no error")")
    }

    enum TarMalformation: String, CaseIterable, Sendable {
        case nonOctalSize, paxBadLength, paxNoNewline, paxNoEquals, paxSizeNotDecimal, paxThenEndMarker, paxAtEnd
        case memberDataPastEnd, paxTooLarge, tooShort, partialHeader

        var expected: CheckpointError.Kind {
            switch self {
            case .paxAtEnd, .memberDataPastEnd, .tooShort, .partialHeader: .truncated
            case .paxTooLarge: .limitExceeded
            default: .malformed
            }
        }

        var bytes: [UInt8] {
            func pax(_ body: [UInt8]) -> [UInt8] {
                tarHeader(name: "PaxHeaders/x", size: body.count, type: "x") + tarPadded(body)
            }
            let member = tarHeader(name: "m", size: 1) + tarPadded([1])
            switch self {
            case .nonOctalSize:
                var h = tarHeader(name: "m", size: 1)
                h[124] = UInt8(ascii: "9")
                tarFixChecksum(&h)
                return h + tarPadded([1])
            case .paxBadLength: return pax(Array("99 path=x\n".utf8)) + member
            case .paxNoNewline: return pax(Array("10 path=xy".utf8)) + member
            case .paxNoEquals: return pax(Array("8 pathx\n".utf8)) + member
            case .paxSizeNotDecimal: return pax(Array("11 size=1a\n".utf8)) + member
            case .paxThenEndMarker: return pax(paxRecords([("path", "x")])) + [UInt8](repeating: 0, count: 1024)
            case .paxAtEnd: return pax(paxRecords([("path", "x")]))
            case .memberDataPastEnd: return tarHeader(name: "m", size: 5000) + tarPadded([1, 2, 3])
            case .paxTooLarge: return tarHeader(name: "PaxHeaders/x", size: 2 << 20, type: "x") + [UInt8](repeating: 0x20, count: 2 << 20)
            case .tooShort: return [UInt8](repeating: 0, count: 100)
            case .partialHeader: return member + Array(tarHeader(name: "n", size: 0).prefix(300))
            }
        }
    }

    // MARK: Truncation

    @Test(
        "Truncating a tar: .truncated inside any header or member data, else a prefix of the members",
        arguments: ["pax.tar", "gnu.tar", "ustar.tar"])
    func truncation(file: String) throws {
        let data = try Self.fixture(file)
        let full = try TarArchive(data)
        let expected = full.entries.map { ($0.name, $0.data.bytes) }
        let bytes = data.bytes
        // Cutting strictly inside a member (its extended header, its own header or its data) must
        // fail; cutting between members leaves a shorter archive whose members are a prefix.
        let inside: [Range<Int>] = full.entries.map { e in
            var start = e.headerOffset
            if start >= 1024, [UInt8(ascii: "x"), UInt8(ascii: "L")].contains(bytes[start - 1024 + 156]) { start -= 1024 }
            return (start + 1)..<(e.headerOffset + 512 + e.data.count)
        }
        let lastDataEnd = inside.last!.upperBound
        // Every offset up to the end of the last member's data, then every 61st through the end blocks.
        let offsets = Array(0...lastDataEnd) + Array(stride(from: lastDataEnd + 1, to: data.count, by: 61))
        var cleanCuts = 0
        for n in offsets {
            let prefix = try data.slice(0, n)
            do {
                let tar = try TarArchive(prefix)
                let got = tar.entries.map { ($0.name, $0.data.bytes) }
                #expect(got.count <= expected.count)
                #expect(zip(got, expected).allSatisfy { $0 == $1 }, "cut at \(n)")
                #expect(!inside.contains { $0.contains(n) }, "cut at \(n) inside a member was accepted")
                cleanCuts += 1
            } catch {
                #expect(error.kind == .truncated, "cut at \(n): \(error)")
            }
        }
        #expect(cleanCuts > 0)
    }
}

// MARK: - Tar building helpers (file-private)

private enum TarMagic { case posix, gnu }

/// A 512-byte header with a valid checksum.
private func tarHeader(
    name: String, size: Int, type: Character = "0", prefix: String = "", magic: TarMagic = .posix
) -> [UInt8] {
    var h = [UInt8](repeating: 0, count: 512)
    func put(_ bytes: [UInt8], at offset: Int) { h.replaceSubrange(offset..<(offset + bytes.count), with: bytes) }
    let nameBytes = Array(name.utf8)
    put(Array(nameBytes.prefix(100)), at: 0)
    func octal(_ v: Int, width: Int) -> [UInt8] {
        let s = String(v, radix: 8)
        return Array((String(repeating: "0", count: max(0, width - 1 - s.count)) + s).utf8) + [0]
    }
    put(octal(0o644, width: 8), at: 100)
    put(octal(0, width: 8), at: 108)
    put(octal(0, width: 8), at: 116)
    put(octal(size, width: 12), at: 124)
    put(octal(1_577_934_246, width: 12), at: 136)
    h[156] = type.asciiValue!
    switch magic {
    case .posix: put(Array("ustar\u{0}00".utf8), at: 257)
    case .gnu: put(Array("ustar  \u{0}".utf8), at: 257)
    }
    put(Array(prefix.utf8), at: 345)
    tarFixChecksum(&h)
    return h
}

/// Recomputes the (unsigned) header checksum in the format Python writes: six octal digits, NUL, space.
private func tarFixChecksum(_ h: inout [UInt8]) {
    var sum = 0
    for i in 0..<512 { sum += (148..<156).contains(i) ? 32 : Int(h[i]) }
    let s = String(sum, radix: 8)
    let field = Array((String(repeating: "0", count: max(0, 6 - s.count)) + s).utf8) + [0, 0x20]
    h.replaceSubrange(148..<156, with: field)
}

/// `bytes` padded with zeros to a multiple of 512.
private func tarPadded(_ bytes: [UInt8]) -> [UInt8] {
    bytes + [UInt8](repeating: 0, count: (512 - bytes.count % 512) % 512)
}

/// PAX records `"<len> key=value\n"`, where `len` counts the whole record including itself.
private func paxRecords(_ pairs: [(String, String)]) -> [UInt8] {
    var out: [UInt8] = []
    for (k, v) in pairs {
        let body = " \(k)=\(v)\n"
        var length = body.utf8.count + 1
        while String(length).count + body.utf8.count != length { length += 1 }
        out += Array((String(length) + body).utf8)
    }
    return out
}

import Foundation
import Testing

@testable import Checkpoint

/// Bad input over every fixture: truncation at many offsets, single-byte corruption, a corrupted
/// central directory, wrong magic, sizes beyond the file. Each must end in a typed error (or, where
/// the damage only touched bytes no reader needs, in exactly the original contents) — never a crash,
/// a hang or an unbounded allocation.
@Suite("Bad input")
struct BadInputTests {
    /// Offsets to cut at: every one of the first and last 96 bytes, and ~150 spread between.
    static func cutPoints(_ n: Int) -> [Int] {
        var cuts = Set(0..<min(n, 96))
        cuts.formUnion(max(0, n - 96)..<n)
        let step = max(1, n / 150)
        cuts.formUnion(stride(from: 0, to: n, by: step))
        return cuts.sorted()
    }

    static func read(_ bytes: [UInt8], _ name: String) throws(CheckpointError) -> StateDict {
        try CheckpointReader.read(ByteBuffer(copying: bytes).all, name: name, options: Fixtures.options(for: name))
    }

    @Test("truncation at many offsets of every fixture gives a typed error", arguments: Fixtures.allFiles)
    func truncation(_ name: String) throws {
        let full = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Fixtures.path(name))))
        let original = try? fingerprint(Self.read(full, name))
        var errors = 0
        for cut in Self.cutPoints(full.count) {
            do {
                let sd = try Self.read(Array(full[..<cut]), name)
                // Only trailing bytes no reader needs (tar end blocks) may be cut without an error.
                #expect(try fingerprint(sd) == original, "\(name) cut at \(cut) of \(full.count) read different contents")
            } catch {
                errors += 1
                #expect(error.file == name)
                #expect(error.kind != .io)
            }
        }
        #expect(errors > 0)
    }

    @Test("single-byte corruption of every fixture gives a typed error or the original contents", arguments: Fixtures.allFiles)
    func corruption(_ name: String) throws {
        let full = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Fixtures.path(name))))
        var rng = SplitMix64(seed: 0xC0FFEE ^ UInt64(full.count))
        for _ in 0..<200 {
            var bytes = full
            let at = Int(rng.next() % UInt64(full.count))
            bytes[at] ^= UInt8(truncatingIfNeeded: rng.next() | 1)
            do {
                // A flip in tensor data of a CRC-less format reads "fine"; CRC-protected data fails on use.
                let sd = try Self.read(bytes, name)
                _ = try fingerprint(sd)
            } catch {
                #expect(error.file == name)
            }
        }
    }

    static func zipFixture() throws -> (String, [UInt8]) {
        let name = try #require(Fixtures.readable.first { Fixtures.expected[$0]?["format"] as? String == "pytorch-zip" })
        return (name, try [UInt8](Data(contentsOf: URL(fileURLWithPath: Fixtures.path(name)))))
    }

    /// Offset of the central directory's first entry.
    static func centralDirectory(_ bytes: [UInt8]) -> Int? {
        (0..<(bytes.count - 4)).first { bytes[$0] == 0x50 && bytes[$0 + 1] == 0x4B && bytes[$0 + 2] == 0x01 && bytes[$0 + 3] == 0x02 }
    }

    @Test("a corrupted central directory is a typed error")
    func corruptCentralDirectory() throws {
        let (name, full) = try Self.zipFixture()
        let cd = try #require(Self.centralDirectory(full))
        // signature, compressed size, local header offset, name length of the first entry
        for (field, width) in [(0, 4), (20, 4), (42, 4), (28, 2)] {
            var bytes = full
            for i in 0..<width { bytes[cd + field + i] = 0xFF }
            #expect(throws: CheckpointError.self, "field at +\(field)") { _ = try Self.read(bytes, name) }
        }
    }

    @Test("a flipped byte in a stored storage record fails its CRC-32 on first use, or at read when not deferred")
    func deferredChecksum() throws {
        let name = "toynet_zip.pth"
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Fixtures.path(name))))
        let clean = try Self.read(bytes, name)
        let victim = try #require(clean.entries.first { $0.tensor.byteCount >= 16 })
        bytes[victim.tensor.storage.bytes.offset + 3] ^= 0x40
        let sd = try Self.read(bytes, name)  // reading maps; no storage bytes are touched yet
        let damaged = try #require(sd[victim.name])
        #expect(throws: CheckpointError.self) { _ = try damaged.floats() }
        do {
            try sd.verifyChecksums()
            Issue.record("verifyChecksums passed on a damaged record")
        } catch {
            #expect(error.kind == .integrity)
            #expect(error.file == name)
            #expect(error.member == "toynet_zip/data/\(victim.tensor.storage.key)")
        }
        // an undamaged tensor of another storage still reads
        let other = try #require(sd.entries.first { $0.tensor.storage.key != victim.tensor.storage.key })
        #expect(try other.tensor.floats() == clean[other.name]!.floats())
        var eager = ReadOptions()
        eager.deferStorageChecksums = false
        #expect(throws: CheckpointError.self) { _ = try CheckpointReader.read(ByteBuffer(copying: bytes).all, name: name, options: eager) }
        var off = ReadOptions()
        off.verifyChecksums = false
        #expect(try CheckpointReader.read(ByteBuffer(copying: bytes).all, name: name, options: off)[victim.name]!.floats() != clean[victim.name]!.floats())
    }

    @Test("a wrong magic number is unknownFormat")
    func wrongMagic() throws {
        for name in Fixtures.readable {
            var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Fixtures.path(name))))
            guard bytes.count > 300, (bytes[0] == 0x50 || bytes[0] == 0x80) else { continue }
            bytes[0] = 0x51
            bytes[257] = 0
            do {
                _ = try Self.read(bytes, name)
                Issue.record("\(name) read with a broken magic")
            } catch {
                #expect(error.kind == .unknownFormat, "\(name): \(error)")
            }
        }
    }

    @Test("a storage size beyond the file is refused before any allocation")
    func storageBeyondFile() throws {
        // A legacy stream whose one storage declares 2^60 elements.
        let name = try #require(Fixtures.readable.first { Fixtures.expected[$0]?["format"] as? String == "pytorch-legacy-stream" })
        let full = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Fixtures.path(name))))
        let sd = try Self.read(full, name)
        let t = try #require(sd.entries.first?.tensor)
        // find the 8-byte count just before the first storage's bytes
        let countOffset = t.storage.bytes.offset - 8
        var bytes = full
        for i in 0..<8 { bytes[countOffset + i] = i == 7 ? 0x10 : 0 }
        #expect(throws: CheckpointError.self) { _ = try Self.read(bytes, name) }
    }

    @Test("empty and tiny files are typed errors", arguments: [[], [0x50], [0x50, 0x4B, 0x03, 0x04], [0x80, 0x02], Array("<html>".utf8)] as [[UInt8]])
    func tiny(_ bytes: [UInt8]) throws {
        do {
            _ = try CheckpointReader.read(ByteBuffer(copying: bytes).all, name: "tiny.pth")
            Issue.record("read")
        } catch {
            #expect(error.kind == .unknownFormat || error.kind == .truncated || error.kind == .malformed, "\(error)")
        }
    }
}

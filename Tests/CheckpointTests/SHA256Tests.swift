import Foundation
import Testing

@testable import Checkpoint

/// SHA-256 against the NIST example vectors (FIPS 180-4 examples, "SHA256.pdf" and the
/// "Secure Hash Standard" test vectors of the CAVP short-message set).
@Suite("SHA256")
struct SHA256Tests {
    static let vectors: [(message: String, digest: String)] = [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        (
            "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        ),
        (
            "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"
        ),
    ]

    @Test("NIST example messages", arguments: SHA256Tests.vectors.indices)
    func nistVector(_ index: Int) {
        let (message, expected) = Self.vectors[index]
        #expect(SHA256.hex(SHA256.hash(Array(message.utf8))) == expected)
        #expect(SHA256.hex(SHA256.hash(message.utf8)) == expected)
        let viaRaw = Array(message.utf8).withUnsafeBytes { SHA256.hash($0) }
        #expect(SHA256.hex(viaRaw) == expected)
    }

    @Test("message lengths are as NIST states them (0, 24, 448 and 896 bits)")
    func vectorLengths() {
        #expect(Self.vectors.map { $0.message.utf8.count * 8 } == [0, 24, 448, 896])
    }

    @Test("one million 'a'")
    func millionA() {
        let message = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        let expected = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        #expect(SHA256.hex(SHA256.hash(message)) == expected)

        // The same in uneven chunks, to cross block boundaries in every way.
        var hasher = SHA256()
        var offset = 0
        var step = 1
        message.withUnsafeBytes { raw in
            while offset < raw.count {
                let n = min(step, raw.count - offset)
                hasher.update(UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + n)]))
                offset += n
                step = step * 7 % 997 + 1
            }
        }
        #expect(SHA256.hex(hasher.finalize()) == expected)
    }

    @Test("padding boundaries: lengths 55, 56, 63, 64, 65 bytes")
    func paddingBoundaries() {
        // Digests from Python's hashlib.sha256(b"a" * n).hexdigest().
        let expected: [Int: String] = [
            55: "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318",
            56: "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a",
            63: "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34",
            64: "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb",
            65: "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0",
        ]
        for (n, digest) in expected {
            let message = [UInt8](repeating: UInt8(ascii: "a"), count: n)
            #expect(SHA256.hex(SHA256.hash(message)) == digest, "length \(n)")
        }
    }

    @Test("two updates split at every offset of a 200-byte message equal one shot")
    func incrementalSplits() {
        let message = (0..<200).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let oneShot = SHA256.hash(message)
        message.withUnsafeBytes { raw in
            for split in 0...raw.count {
                var hasher = SHA256()
                hasher.update(UnsafeRawBufferPointer(rebasing: raw[0..<split]))
                hasher.update(UnsafeRawBufferPointer(rebasing: raw[split...]))
                #expect(hasher.finalize() == oneShot, "split at \(split)")
            }
            // Three pieces, split at every pair of offsets on a coarser grid.
            for first in stride(from: 0, through: raw.count, by: 13) {
                for second in stride(from: first, through: raw.count, by: 11) {
                    var hasher = SHA256()
                    hasher.update(UnsafeRawBufferPointer(rebasing: raw[0..<first]))
                    hasher.update(UnsafeRawBufferPointer(rebasing: raw[first..<second]))
                    hasher.update(UnsafeRawBufferPointer(rebasing: raw[second...]))
                    #expect(hasher.finalize() == oneShot, "splits at \(first), \(second)")
                }
            }
        }
    }

    @Test("hex renders lower case, two digits a byte")
    func hexRendering() {
        #expect(SHA256.hex([0x00, 0x0f, 0xa0, 0xff]) == "000fa0ff")
        #expect(SHA256.hex([]) == "")
    }

    @Test("hashFile equals hashing the bytes; empty file; missing file is an io error")
    func hashFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sha256-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }

        let bytes = (0..<100_003).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }
        let file = dir.appendingPathComponent("data.bin")
        try Data(bytes).write(to: file)
        #expect(try SHA256.hashFile(path: file.path) == SHA256.hex(SHA256.hash(bytes)))

        let empty = dir.appendingPathComponent("empty.bin")
        try Data().write(to: empty)
        #expect(try SHA256.hashFile(path: empty.path) == Self.vectors[0].digest)

        let missing = dir.appendingPathComponent("missing.bin").path
        #expect(throws: CheckpointError.self) { try SHA256.hashFile(path: missing) }
        do {
            _ = try SHA256.hashFile(path: missing)
        } catch {
            #expect(error.kind == .io)
            #expect(error.file == missing)
        }
    }
}

import Foundation
import Testing

@testable import VisionData

/// Bad image input gives typed errors naming the file, never a crash.
@Suite("Image decoder errors")
struct DecoderErrorTests {
    static func bytes(_ name: String) throws -> Data { try Data(contentsOf: Fixtures.images.appendingPathComponent(name)) }

    @Test(
        "truncated files are refused",
        arguments: ["jpeg_baseline_420.jpg", "jpeg_progressive_444.jpg", "png_rgb.png", "png_interlaced.png"])
    func truncated(_ name: String) throws {
        let data = try Self.bytes(name)
        for cut in [4, 20, data.count / 2, data.count - 30] {
            let e = try #require(throws: VisionDataError.self) { try ImageDecoder.decode(data.prefix(cut), name: name) }
            #expect([.truncated, .malformed].contains(e.kind), "\(name) cut at \(cut): \(e)")
            #expect(e.file == name)
        }
    }

    @Test("a PNG without IEND still decodes (as PIL loads it)")
    func missingIEND() throws {
        let data = try Self.bytes("png_rgb.png")
        let full = try ImageDecoder.decode(data)
        let cut = try ImageDecoder.decode(data.prefix(data.count - 12))
        #expect(cut == full)
    }

    @Test("corrupt data: flipped bytes in a PNG's IDAT give an error, unknown formats name themselves")
    func corrupt() throws {
        var png = try Self.bytes("png_rgb.png")
        png[60] ^= 0xFF  // inside the first chunk after IHDR: CRC mismatch
        #expect(throws: VisionDataError.self) { try ImageDecoder.decode(png, name: "bad.png") }
        let gif = Data("GIF89a....".utf8)
        let e = try #require(throws: VisionDataError.self) { try ImageDecoder.decode(gif, name: "x.gif") }
        #expect(e.kind == .unknownFormat && e.message.contains("GIF"))
        let empty = try #require(throws: VisionDataError.self) { try ImageDecoder.decode(Data(), name: "empty.jpg") }
        #expect(empty.kind == .unknownFormat && empty.message.contains("empty"))
        var jpeg = try Self.bytes("jpeg_baseline_420.jpg")
        jpeg[2] = 0x00  // not a JPEG marker after SOI
        #expect(throws: VisionDataError.self) { try ImageDecoder.decode(jpeg, name: "bad.jpg") }
        // SOF with zero width.
        var zero = try Self.bytes("jpeg_gray.jpg")
        if let sof = (0..<(zero.count - 9)).first(where: { zero[$0] == 0xFF && zero[$0 + 1] == 0xC0 }) {
            zero[sof + 7] = 0
            zero[sof + 8] = 0
            #expect(throws: VisionDataError.self) { try ImageDecoder.decode(zero, name: "zero.jpg") }
        }
    }

    @Test(
        "seeded random corruption never crashes: every mutant decodes or throws",
        arguments: [
            "jpeg_baseline_420.jpg", "jpeg_progressive_444.jpg", "jpeg_cmyk_adobe.jpg", "png_interlaced.png", "png_palette_trns.png",
            "png_gray16.png",
        ])
    func mutants(_ name: String) throws {
        let original = try Self.bytes(name)
        var rng = SplitMix64(seed: 42)
        var decoded = 0, refused = 0
        for _ in 0..<150 {
            var data = original
            for _ in 0..<(1 + Int(rng.next(below: 4))) {
                let i = Int(rng.next(below: UInt64(data.count)))
                data[i] = UInt8(truncatingIfNeeded: rng.next())
            }
            if rng.next(below: 4) == 0 { data = data.prefix(Int(rng.next(below: UInt64(data.count)))) }
            do {
                let image = try ImageDecoder.decode(data, name: name)
                #expect(image.pixels.count == image.width * image.height * 3)
                decoded += 1
            } catch {
                refused += 1
            }
        }
        #expect(decoded + refused == 150)
    }

    @Test("the pixel cap refuses large images before allocating")
    func pixelCap() throws {
        var options = ImageDecoder.Options()
        options.maxPixels = 100
        for name in ["jpeg_baseline_420.jpg", "png_rgb.png"] {
            let e = try #require(throws: VisionDataError.self) {
                try ImageDecoder.decode(try Self.bytes(name), name: name, options: options)
            }
            #expect(e.kind == .limitExceeded)
        }
    }

    @Test("a missing file is an io error naming it")
    func missing() {
        let e = try? #require(throws: VisionDataError.self) { try ImageDecoder.load("/nonexistent/cat.jpg") }
        #expect(e?.kind == .io)
        #expect(e?.description.hasPrefix("/nonexistent/cat.jpg: error: io:") == true)
    }
}

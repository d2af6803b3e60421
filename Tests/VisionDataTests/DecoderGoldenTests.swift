import Foundation
import Testing

@testable import VisionData

/// Every decoder fixture (tools/make_image_goldens.py) decodes to exactly what PIL's
/// `Image.open(f).convert("RGB")` gives: the SHA-256 of the pixels must match (bound: exact).
@Suite("Image decoding against PIL")
struct DecoderGoldenTests {
    @Test("decoded pixels equal PIL's convert('RGB')", arguments: Fixtures.decodeNames)
    func decodesLikePIL(_ file: String) throws {
        let c = try #require(Fixtures.decodeCase(file))
        let image = try Fixtures.image(file)
        let size = try #require(c["size"] as? [Int])
        #expect([image.width, image.height] == size)
        let expected = try #require(c["sha256"] as? String)
        if sha256Hex(image.pixels) != expected {
            let reference = try Fixtures.image(try #require(c["decoded_png"] as? String))
            let d = pixelDifference(image, reference)
            Issue.record(
                "\(file) (PIL mode \(c["pil_mode"] ?? "?")): pixels differ from PIL: max |diff| \(d?.max ?? -1), \(d?.count ?? -1) bytes")
        }
    }

    @Test(
        "EXIF orientation: ignored by default, applied like ImageOps.exif_transpose on request",
        arguments: Fixtures.decodeNames.filter { $0.hasPrefix("jpeg_exif") })
    func exifOrientation(_ file: String) throws {
        let c = try #require(Fixtures.decodeCase(file))
        var options = ImageDecoder.Options()
        options.applyEXIFOrientation = true
        let upright = try ImageDecoder.load(Fixtures.images.appendingPathComponent(file).path, options: options)
        #expect([upright.width, upright.height] == c["exif_transposed_size"] as? [Int])
        #expect(sha256Hex(upright.pixels) == c["exif_transposed_sha256"] as? String, "\(file)")
    }

    @Test("EXIF orientation tag parser: both byte orders, absent and malformed tags")
    func exifParser() {
        // Little endian: II*\0, IFD at 8, one entry: tag 0x0112 type 3 count 1 value 6.
        let le: [UInt8] = [0x49, 0x49, 0x2A, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0]
        let be: [UInt8] = [0x4D, 0x4D, 0, 0x2A, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 3, 0, 0, 0, 0, 0, 0]
        #expect(le.withUnsafeBytes { EXIFOrientation(tiff: $0) } == .rotatedClockwise)
        #expect(be.withUnsafeBytes { EXIFOrientation(tiff: $0) } == .rotated180)
        var truncated = le
        truncated.removeLast(10)
        #expect(truncated.withUnsafeBytes { EXIFOrientation(tiff: $0) } == nil)
        var outOfRange = le
        outOfRange[18] = 9
        #expect(outOfRange.withUnsafeBytes { EXIFOrientation(tiff: $0) } == nil)
        var hugeOffset = le
        hugeOffset[4] = 0xFF
        hugeOffset[7] = 0x7F
        #expect(hugeOffset.withUnsafeBytes { EXIFOrientation(tiff: $0) } == nil)
        #expect([UInt8]().withUnsafeBytes { EXIFOrientation(tiff: $0) } == nil)
    }

    @Test("the shipped sample photos decode like PIL")
    func samplePhotos() throws {
        for name in ["chelsea", "coffee", "rocket"] {
            let image = try Fixtures.input("weights/examples/images/\(name).jpg")
            #expect(image.width == 451 || image.width == 450)
            #expect(image.height == 300)
        }
    }
}

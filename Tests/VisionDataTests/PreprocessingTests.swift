import NeuralNet
import Testing

@testable import VisionData

/// The `Preprocessing` value: validation, output shapes, channel order, sizes torchvision computes.
@Suite("Preprocessing")
struct PreprocessingTests {
    static func gradient(_ w: Int, _ h: Int) throws -> RGBImage {
        var px = [UInt8]()
        for y in 0..<h { for x in 0..<w { px += [UInt8(x % 256), UInt8(y % 256), UInt8((x + y) % 256)] } }
        return try RGBImage(width: w, height: h, pixels: px)
    }

    @Test("output size of Resize(int) as torchvision computes it (truncation, portrait and landscape)")
    func resizedSize() {
        #expect(RGBImage.resizedSize(width: 451, height: 300, shorterSide: 256) == (384, 256))
        #expect(RGBImage.resizedSize(width: 300, height: 451, shorterSide: 256) == (256, 384))
        #expect(RGBImage.resizedSize(width: 500, height: 375, shorterSide: 232) == (309, 232))
        #expect(RGBImage.resizedSize(width: 1000, height: 100, shorterSide: 50, maxSize: 200) == (200, 20))
    }

    @Test("center crop origin uses round-half-to-even")
    func cropOrigin() {
        #expect(RGBImage.centerCropOrigin(width: 341, height: 256, cropWidth: 224, cropHeight: 224) == (58, 16))  // 58.5 -> 58
        #expect(RGBImage.centerCropOrigin(width: 343, height: 256, cropWidth: 224, cropHeight: 224) == (60, 16))  // 59.5 -> 60
        #expect(RGBImage.centerCropOrigin(width: 10, height: 7, cropWidth: 13, cropHeight: 4) == (-1, 2))  // padded; 1.5 -> 2
    }

    @Test("apply gives [1, 3, 224, 224]; BGR reverses the planes; batch stacks")
    func shapesAndOrder() throws {
        let img = try Self.gradient(300, 240)
        let t = try Preprocessing.imageClassification().apply(img)
        #expect(t.shape == [1, 3, 224, 224])
        let rgb = Preprocessing(name: "rgb", resize: .none, crop: nil, divisor: nil, mean: [0, 0, 0], std: [1, 1, 1])
        var bgr = rgb
        bgr.channelOrder = .bgr
        let a = try rgb.apply(img), b = try bgr.apply(img)
        let plane = 300 * 240
        #expect(Array(a.data[0..<plane]) == Array(b.data[(2 * plane)..<(3 * plane)]))
        #expect(a.data[1] == 1)  // R of pixel (1, 0), 0...255 range kept
        let batch = try Preprocessing.imageClassification().batch([img, img])
        #expect(batch.shape == [2, 3, 224, 224])
        #expect(Array(batch.data[0..<(3 * 224 * 224)]) == t.data)
        #expect(Preprocessing.kerasCaffe().valueRange == 0...255)
        #expect(Preprocessing.imageClassification().valueRange == 0...1)
    }

    @Test("invalid descriptions and mismatched batches are errors")
    func invalid() throws {
        let img = try Self.gradient(20, 10)
        var p = Preprocessing.imageClassification()
        p.std = [0.2, 0, 0.2]
        #expect(throws: VisionDataError.self) { try p.apply(img) }
        p = .imageClassification(cropSize: 0)
        #expect(throws: VisionDataError.self) { try p.apply(img) }
        p = .imageClassification()
        p.mean = [0.5]
        #expect(throws: VisionDataError.self) { try p.apply(img) }
        let noCrop = Preprocessing(name: "resize only", resize: .shorterSide(8), crop: nil, divisor: 255, mean: [0, 0, 0], std: [1, 1, 1])
        #expect(throws: VisionDataError.self) { try noCrop.batch([img, try Self.gradient(10, 20)]) }
        #expect(throws: VisionDataError.self) { try noCrop.batch([]) }
        #expect(throws: VisionDataError.self) { try img.resized(width: 0, height: 5) }
        #expect(throws: VisionDataError.self) { try img.cropped(left: 0, top: 0, width: -1, height: 2) }
        #expect(throws: VisionDataError.self) { try RGBImage(width: 2, height: 2, pixels: [1, 2, 3]) }
    }

    @Test("ImageNet categories: 1000 unique names in torchvision's order")
    func categories() {
        #expect(ImageNet.categories.count == 1000)
        #expect(Set(ImageNet.categories).count == 1000)
        #expect(ImageNet.categories[0] == "tench" && ImageNet.categories[999] == "toilet tissue")
        #expect(ImageNet.categories[134] == "crane bird" && ImageNet.categories[517] == "crane")
    }
}

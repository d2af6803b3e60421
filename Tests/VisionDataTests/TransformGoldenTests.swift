import Foundation
import NeuralNet
import Testing

@testable import VisionData

/// The preprocessing pipelines against torchvision / PIL / Keras outputs (tools/make_image_goldens.py).
///
/// Bound, per stage: resize equals PIL's `Image.resize` exactly (the path torchvision takes for PIL
/// images); center crop exact; to-tensor and normalise bit-exact in float32. The difference to
/// torchvision's tensor path (`F.resize` on a uint8 tensor, antialias=True) is measured and must stay
/// within 1/255 per pixel for bilinear (it is a different implementation of the same filter).
@Suite("Transforms against torchvision, PIL and Keras")
struct TransformGoldenTests {
    static func preprocessing(_ p: [String: Any]) throws -> Preprocessing {
        switch p["kind"] as? String {
        case "imageClassification":
            let interp = Interpolation(rawValue: p["interpolation"] as? String ?? "") ?? .bilinear
            return .imageClassification(cropSize: p["crop"] as? Int ?? 224, resizeSize: p["resize"] as? Int ?? 256, interpolation: interp)
        case "kerasCaffe": return .kerasCaffe(size: p["size"] as? Int ?? 224)
        case "kerasTorch": return .kerasTorch(size: p["size"] as? Int ?? 224)
        default: throw VisionDataError(.invalidArgument, "unknown preprocessing \(p)")
        }
    }

    @Test("each stage of each pipeline", arguments: Fixtures.transformNames)
    func pipeline(_ name: String) throws {
        let c = try #require(Fixtures.transformCase(name))
        let input = try Fixtures.input(try #require(c["input"] as? String))
        let p = try Self.preprocessing(try #require(c["preprocessing"] as? [String: Any]))
        // Resize.
        var resized = input
        switch p.resize {
        case .none: break
        case .shorterSide(let s): resized = try input.resized(shorterSide: s, interpolation: p.interpolation)
        case .exact(let w, let h): resized = try input.resized(width: w, height: h, interpolation: p.interpolation)
        }
        #expect([resized.width, resized.height] == c["resized_size"] as? [Int])
        var resizeDiff = 0
        if sha256Hex(resized.pixels) != c["resized_sha256"] as? String {
            resizeDiff = 255
            Issue.record("\(name): resize differs from PIL's Image.resize (SHA-256 of the pixels)")
        }
        // Crop.
        let cropped = p.crop.map { try? resized.centerCropped(width: $0.width, height: $0.height) } ?? resized
        let croppedImage = try #require(cropped)
        #expect([croppedImage.width, croppedImage.height] == c["cropped_size"] as? [Int])
        #expect(sha256Hex(croppedImage.pixels) == c["cropped_sha256"] as? String, "\(name): crop")
        // Whole pipeline: float32 tensor.
        let tensor = try p.apply(input)
        #expect(Array(tensor.shape.dropFirst()) == c["tensor_shape"] as? [Int])
        var maxTensorDiff: Float = 0
        for sample in try #require(c["tensor_samples"] as? [[Any]]) {
            let i = try #require(sample[0] as? Int), v = try #require((sample[1] as? NSNumber)?.floatValue)
            maxTensorDiff = max(maxTensorDiff, abs(tensor.data[i] - v))
        }
        #expect(
            sha256Hex(floatBytes(tensor.data)) == c["tensor_sha256"] as? String,
            "\(name): tensor not bit-exact (max |diff| over samples \(maxTensorDiff))")
        // torchvision's tensor path, for the record.
        var tensorPath = "-"
        if let tp = c["tensor_path_resized_png"] as? String {
            let reference = try Fixtures.image(tp)
            let d = try #require(pixelDifference(resized, reference))
            tensorPath = "\(d.max)/255 (\(d.count) of \(resized.pixels.count) bytes)"
            if p.interpolation == .bilinear { #expect(d.max <= 1, "\(name): tensor-path resize differs by \(d.max)/255") }
        }
        print(
            "transform-table | \(name) | resize vs PIL \(resizeDiff)/255 | crop exact | tensor max|diff| \(maxTensorDiff) | vs tensor path \(tensorPath)"
        )
    }

    @Test("PIL Image.resize to awkward sizes, up and down, each filter", arguments: Fixtures.resizeNames)
    func resizeOnly(_ name: String) throws {
        let c = try #require(Fixtures.resizeCase(name))
        let input = try Fixtures.input(try #require(c["input"] as? String))
        let size = try #require(c["size"] as? [Int])
        let filter = try #require(Interpolation(rawValue: c["filter"] as? String ?? ""))
        let out = try input.resized(width: size[0], height: size[1], interpolation: filter)
        if sha256Hex(out.pixels) != c["sha256"] as? String {
            if let png = c["png"] as? String {
                let d = pixelDifference(out, try Fixtures.image(png))
                Issue.record("\(name): differs from PIL, max |diff| \(d?.max ?? -1), \(d?.count ?? -1) bytes")
            } else {
                Issue.record("\(name): differs from PIL (SHA-256 of the pixels)")
            }
        }
    }

    @Test("a center crop larger than the image pads with black like torchvision")
    func paddedCrop() throws {
        let pad = try #require(Fixtures.expected["pad_crop"] as? [String: Any])
        let input = try Fixtures.input(try #require(pad["input"] as? String))
        let crop = try #require(pad["crop"] as? [Int])
        let out = try input.centerCropped(width: crop[0], height: crop[1])
        #expect(sha256Hex(out.pixels) == pad["sha256"] as? String)
    }
}

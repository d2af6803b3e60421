import Checkpoint
import Foundation
import Testing

@testable import VisionData

/// Paths and small helpers shared by the VisionData tests.
enum Fixtures {
    /// `Tests/Fixtures`.
    static let root: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")
    /// The repository root.
    static let repo: URL = root.deletingLastPathComponent().deletingLastPathComponent()
    /// `Tests/Fixtures/images`.
    static let images = root.appendingPathComponent("images")
    /// `Tests/Fixtures/cifar10`.
    static let cifar = root.appendingPathComponent("cifar10")

    /// `Tests/Fixtures/images/expected.json`, parsed.
    nonisolated(unsafe) static let expected: [String: Any] = {
        guard let data = try? Data(contentsOf: images.appendingPathComponent("expected.json")),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return [:] }
        return object
    }()

    static func cases(_ key: String) -> [[String: Any]] { expected[key] as? [[String: Any]] ?? [] }

    /// Names of the decode cases (test arguments).
    static var decodeNames: [String] { cases("decode").compactMap { $0["file"] as? String } }
    /// Names of the transform cases.
    static var transformNames: [String] { cases("transforms").compactMap { $0["name"] as? String } }
    /// Names of the resize-only cases.
    static var resizeNames: [String] { cases("resize").compactMap { $0["name"] as? String } }

    static func decodeCase(_ file: String) -> [String: Any]? { cases("decode").first { $0["file"] as? String == file } }
    static func transformCase(_ name: String) -> [String: Any]? { cases("transforms").first { $0["name"] as? String == name } }
    static func resizeCase(_ name: String) -> [String: Any]? { cases("resize").first { $0["name"] as? String == name } }

    /// An input named relative to the repository root.
    static func input(_ relative: String) throws -> RGBImage {
        try ImageDecoder.load(repo.appendingPathComponent(relative).path)
    }

    static func image(_ relativeToImages: String) throws -> RGBImage {
        try ImageDecoder.load(images.appendingPathComponent(relativeToImages).path)
    }
}

func sha256Hex(_ bytes: [UInt8]) -> String { SHA256.hex(SHA256.hash(bytes)) }

/// Little-endian float32 bytes of `values`.
func floatBytes(_ values: [Float]) -> [UInt8] {
    var out = [UInt8]()
    out.reserveCapacity(values.count * 4)
    for v in values {
        let b = v.bitPattern
        out += [UInt8(b & 0xFF), UInt8((b >> 8) & 0xFF), UInt8((b >> 16) & 0xFF), UInt8(b >> 24)]
    }
    return out
}

/// Max |a - b| over two images of the same size (nil when the sizes differ), and how many bytes differ.
func pixelDifference(_ a: RGBImage, _ b: RGBImage) -> (max: Int, count: Int)? {
    guard a.width == b.width, a.height == b.height else { return nil }
    var m = 0, n = 0
    for (x, y) in zip(a.pixels, b.pixels) where x != y {
        m = max(m, abs(Int(x) - Int(y)))
        n += 1
    }
    return (m, n)
}

/// An 8-bit RGB image: `height` rows of `width` pixels, each three bytes R, G, B, no padding.
///
/// This is what PIL's `Image.convert("RGB")` holds, and what every transform in this module takes and
/// returns. A value type: copies are cheap until written.
public struct RGBImage: Sendable, Equatable {
    /// Width in pixels.
    public let width: Int
    /// Height in pixels.
    public let height: Int
    /// `height * width * 3` bytes, row-major, interleaved R, G, B.
    public let pixels: [UInt8]

    /// Wraps `pixels`; throws unless there are exactly `width * height * 3` of them.
    public init(width: Int, height: Int, pixels: [UInt8]) throws(VisionDataError) {
        guard width >= 0, height >= 0 else {
            throw VisionDataError(.invalidArgument, "image size \(width)x\(height) is negative")
        }
        let (area, o1) = width.multipliedReportingOverflow(by: height)
        let (count, o2) = area.multipliedReportingOverflow(by: 3)
        guard !o1, !o2, count == pixels.count else {
            throw VisionDataError(
                .invalidArgument, "a \(width)x\(height) RGB image needs \(o1 || o2 ? "too many" : String(count)) bytes, got \(pixels.count)"
            )
        }
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// Internal: the caller guarantees `pixels.count == width * height * 3`.
    init(unchecked width: Int, _ height: Int, _ pixels: [UInt8]) {
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// The pixel at column `x`, row `y` (no bounds check beyond the array's).
    public subscript(x: Int, y: Int) -> (r: UInt8, g: UInt8, b: UInt8) {
        let i = (y * width + x) * 3
        return (pixels[i], pixels[i + 1], pixels[i + 2])
    }
}

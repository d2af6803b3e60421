/// The EXIF orientation tag (0x0112) and the transform that displays the image upright, as
/// `PIL.ImageOps.exif_transpose` and `torchvision.io.decode_image(apply_exif_orientation=True)` apply it.
public enum EXIFOrientation: Int, Sendable, Equatable, CaseIterable {
    case up = 1, mirrored = 2, rotated180 = 3, flippedVertically = 4
    case transposed = 5, rotatedClockwise = 6, transversed = 7, rotatedCounterClockwise = 8

    /// Reads the orientation from an EXIF TIFF structure (`II*\0` or `MM\0*` header, IFD0); nil when
    /// absent, malformed or out of range. Every offset is checked against the bytes present.
    public init?(tiff: UnsafeRawBufferPointer) {
        let n = tiff.count
        guard n >= 8 else { return nil }
        let little: Bool
        if tiff[0] == 0x49, tiff[1] == 0x49 {
            little = true
        } else if tiff[0] == 0x4D, tiff[1] == 0x4D {
            little = false
        } else {
            return nil
        }
        func u16(_ o: Int) -> Int? {
            guard o >= 0, o + 2 <= n else { return nil }
            return little ? Int(tiff[o]) | Int(tiff[o + 1]) << 8 : Int(tiff[o]) << 8 | Int(tiff[o + 1])
        }
        func u32(_ o: Int) -> Int? {
            guard let a = u16(o), let b = u16(o + 2) else { return nil }
            return little ? a | b << 16 : a << 16 | b
        }
        guard u16(2) == 42, let ifd = u32(4), let entries = u16(ifd), entries <= 1024 else { return nil }
        for i in 0..<entries {
            let e = ifd + 2 + 12 * i
            guard let tag = u16(e) else { return nil }
            if tag == 0x0112 {
                guard let type = u16(e + 2), type == 3, let value = u16(e + 8) else { return nil }
                self.init(rawValue: value)
                return
            }
        }
        return nil
    }

    /// The upright image.
    public func apply(to image: RGBImage) -> RGBImage {
        let w = image.width, h = image.height
        if self == .up { return image }
        let swaps = rawValue >= 5
        let ow = swaps ? h : w, oh = swaps ? w : h
        var out = [UInt8](repeating: 0, count: image.pixels.count)
        image.pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        // Source pixel shown at (ox, oy).
                        let sx: Int, sy: Int
                        switch self {
                        case .up: (sx, sy) = (ox, oy)
                        case .mirrored: (sx, sy) = (w - 1 - ox, oy)
                        case .rotated180: (sx, sy) = (w - 1 - ox, h - 1 - oy)
                        case .flippedVertically: (sx, sy) = (ox, h - 1 - oy)
                        case .transposed: (sx, sy) = (oy, ox)
                        case .rotatedClockwise: (sx, sy) = (oy, h - 1 - ox)
                        case .transversed: (sx, sy) = (w - 1 - oy, h - 1 - ox)
                        case .rotatedCounterClockwise: (sx, sy) = (w - 1 - oy, ox)
                        }
                        let s = (sy * w + sx) * 3, d = (oy * ow + ox) * 3
                        dst[d] = src[s]
                        dst[d + 1] = src[s + 1]
                        dst[d + 2] = src[s + 2]
                    }
                }
            }
        }
        return RGBImage(unchecked: ow, oh, out)
    }
}

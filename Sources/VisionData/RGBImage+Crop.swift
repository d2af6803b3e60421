/// Cropping as torchvision does it to PIL images.
extension RGBImage {
    /// The `width` x `height` region whose top-left corner is at (`left`, `top`); pixels outside the
    /// image are black (PIL's `Image.crop` and torchvision's padding both fill with 0).
    public func cropped(left: Int, top: Int, width cropWidth: Int, height cropHeight: Int) throws(VisionDataError) -> RGBImage {
        guard cropWidth >= 0, cropHeight >= 0 else {
            throw VisionDataError(.invalidArgument, "crop: size \(cropWidth)x\(cropHeight) is negative")
        }
        let (area, overflow) = cropWidth.multipliedReportingOverflow(by: cropHeight)
        guard !overflow, area <= ImageDecoder.Options().maxPixels else {
            throw VisionDataError(.limitExceeded, "crop: size \(cropWidth)x\(cropHeight) is too large")
        }
        return croppedUnchecked(left: left, top: top, width: cropWidth, height: cropHeight)
    }

    /// Internal: `cropped` for sizes already validated.
    func croppedUnchecked(left: Int, top: Int, width cropWidth: Int, height cropHeight: Int) -> RGBImage {
        if left == 0, top == 0, cropWidth == width, cropHeight == height { return self }
        var out = [UInt8](repeating: 0, count: cropWidth * cropHeight * 3)
        // Columns of the crop that fall inside the image.
        let x0 = max(0, -left), x1 = min(cropWidth, width - left)
        guard x1 > x0 else { return RGBImage(unchecked: cropWidth, cropHeight, out) }
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for y in 0..<cropHeight {
                    let sy = y + top
                    guard sy >= 0, sy < height else { continue }
                    let s = (sy * width + left + x0) * 3, d = (y * cropWidth + x0) * 3
                    for i in 0..<(x1 - x0) * 3 { dst[d + i] = src[s + i] }
                }
            }
        }
        return RGBImage(unchecked: cropWidth, cropHeight, out)
    }

    /// torchvision's `center_crop`: the top-left corner is `round((size - crop) / 2)` with Python's
    /// round-half-to-even; a crop larger than the image pads it with black, `(crop - size) / 2` on
    /// the left/top (rounded down) and the rest on the right/bottom.
    public func centerCropped(width cropWidth: Int, height cropHeight: Int) throws(VisionDataError) -> RGBImage {
        guard cropWidth > 0, cropHeight > 0 else {
            throw VisionDataError(.invalidArgument, "center crop: size \(cropWidth)x\(cropHeight) must be positive")
        }
        let (left, top) = Self.centerCropOrigin(width: width, height: height, cropWidth: cropWidth, cropHeight: cropHeight)
        return try cropped(left: left, top: top, width: cropWidth, height: cropHeight)
    }

    /// The crop's top-left corner in image coordinates (negative when the image is padded).
    static func centerCropOrigin(width: Int, height: Int, cropWidth: Int, cropHeight: Int) -> (left: Int, top: Int) {
        func origin(_ size: Int, _ crop: Int) -> Int {
            if crop > size { return -((crop - size) / 2) }
            let d = size - crop
            let half = d / 2
            // d / 2 is exact, or ends in .5 and rounds to the even neighbour.
            if d % 2 == 0 { return half }
            return half % 2 == 0 ? half : half + 1
        }
        return (origin(width, cropWidth), origin(height, cropHeight))
    }
}

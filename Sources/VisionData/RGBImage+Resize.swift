/// Resizing that reproduces PIL's `Image.resize` on 8-bit RGB images, which is what torchvision's
/// `Resize` / `ImageClassification` do to PIL images.
///
/// Bilinear and bicubic are separable convolutions whose filter is widened by the reduction factor
/// (antialiasing). Weights are computed in double precision, normalised to sum 1 and quantised to
/// 22-bit fixed point; the horizontal pass runs first and its output is rounded to 8 bits before the
/// vertical pass, as in PIL. Nearest picks the source pixel under each output pixel's centre.
extension RGBImage {
    /// The output size torchvision's `resize(img, size)` computes for an `Int` size: the shorter side
    /// becomes `shorterSide`, the longer side `Int(shorterSide * long / short)` (truncated), capped by
    /// `maxSize` as torchvision caps it.
    public static func resizedSize(width: Int, height: Int, shorterSide: Int, maxSize: Int? = nil) -> (width: Int, height: Int) {
        guard width > 0, height > 0 else { return (width, height) }
        let (short, long) = width <= height ? (width, height) : (height, width)
        var newShort = shorterSide
        var newLong = Int(Double(shorterSide) * Double(long) / Double(short))
        if let maxSize, newLong > maxSize {
            newShort = Int(Double(maxSize) * Double(newShort) / Double(newLong))
            newLong = maxSize
        }
        return width <= height ? (newShort, newLong) : (newLong, newShort)
    }

    /// The image resized so that its shorter side is `shorterSide` (torchvision `Resize(int)`).
    /// Returns the image unchanged when it already has that size.
    public func resized(shorterSide: Int, interpolation: Interpolation = .bilinear, maxSize: Int? = nil) throws(VisionDataError) -> RGBImage
    {
        guard shorterSide > 0 else {
            throw VisionDataError(.invalidArgument, "resize: the shorter side must be positive, got \(shorterSide)")
        }
        if let maxSize, maxSize <= shorterSide {
            throw VisionDataError(.invalidArgument, "resize: maxSize \(maxSize) must be greater than the shorter side \(shorterSide)")
        }
        let size = Self.resizedSize(width: width, height: height, shorterSide: shorterSide, maxSize: maxSize)
        return try resized(width: size.width, height: size.height, interpolation: interpolation)
    }

    /// The image resized to exactly `width` x `height` (PIL `Image.resize((width, height), filter)`).
    public func resized(width newWidth: Int, height newHeight: Int, interpolation: Interpolation = .bilinear) throws(VisionDataError)
        -> RGBImage
    {
        guard newWidth > 0, newHeight > 0 else {
            throw VisionDataError(.invalidArgument, "resize: output size \(newWidth)x\(newHeight) must be positive")
        }
        guard width > 0, height > 0 else {
            throw VisionDataError(.invalidArgument, "resize: cannot resize an empty \(width)x\(height) image")
        }
        let (area, overflow) = newWidth.multipliedReportingOverflow(by: newHeight)
        guard !overflow, area <= ImageDecoder.Options().maxPixels else {
            throw VisionDataError(.limitExceeded, "resize: output size \(newWidth)x\(newHeight) is too large")
        }
        if newWidth == width && newHeight == height { return self }
        if interpolation == .nearest { return nearest(newWidth, newHeight) }
        var image = self
        if newWidth != width {
            let k = Resampler(inSize: width, outSize: newWidth, filter: interpolation)
            image = k.horizontal(image)
        }
        if newHeight != height {
            let k = Resampler(inSize: height, outSize: newHeight, filter: interpolation)
            image = k.vertical(image)
        }
        return image
    }

    private func nearest(_ newWidth: Int, _ newHeight: Int) -> RGBImage {
        // PIL maps output pixel centres back by accumulating the scale in double precision (its
        // affine "scale" path), which can differ by one source pixel from (x + 0.5) * scale.
        let sx = Double(width) / Double(newWidth), sy = Double(height) / Double(newHeight)
        func positions(_ count: Int, _ scale: Double, _ limit: Int) -> [Int] {
            var out = [Int](repeating: 0, count: count)
            var p = scale * 0.5
            for i in 0..<count {
                out[i] = min(max(Int(p), 0), limit - 1)
                p += scale
            }
            return out
        }
        let xs = positions(newWidth, sx, width), ys = positions(newHeight, sy, height)
        var out = [UInt8](repeating: 0, count: newWidth * newHeight * 3)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for y in 0..<newHeight {
                    let row = ys[y] * width * 3
                    for x in 0..<newWidth {
                        let s = row + xs[x] * 3, d = (y * newWidth + x) * 3
                        dst[d] = src[s]
                        dst[d + 1] = src[s + 1]
                        dst[d + 2] = src[s + 2]
                    }
                }
            }
        }
        return RGBImage(unchecked: newWidth, newHeight, out)
    }
}

/// Precomputed fixed-point filter taps for one axis.
struct Resampler {
    static let precisionBits = 22
    let outSize: Int
    /// First source index of each output sample.
    let starts: [Int]
    /// Number of taps of each output sample.
    let counts: [Int]
    /// `taps` weights per output sample, row-major, fixed point.
    let weights: [Int32]
    let taps: Int

    init(inSize: Int, outSize: Int, filter: Interpolation) {
        let scale = Double(inSize) / Double(outSize)
        let filterScale = max(scale, 1)
        let support = filter.support * filterScale
        let taps = Int(support.rounded(.up)) * 2 + 1
        var starts = [Int](repeating: 0, count: outSize)
        var counts = [Int](repeating: 0, count: outSize)
        var weights = [Int32](repeating: 0, count: outSize * taps)
        var k = [Double](repeating: 0, count: taps)
        let one = Double(1 << Self.precisionBits)
        for i in 0..<outSize {
            let center = (Double(i) + 0.5) * scale
            let inverse = 1 / filterScale
            let lo = max(Int(center - support + 0.5), 0)
            let hi = min(Int(center + support + 0.5), inSize)
            let n = max(min(hi - lo, taps), 0)
            var sum = 0.0
            for j in 0..<n {
                let w = filter.weight((Double(j + lo) - center + 0.5) * inverse)
                k[j] = w
                sum += w
            }
            for j in 0..<n {
                let w = sum != 0 ? k[j] / sum : k[j]
                weights[i * taps + j] = Int32(w < 0 ? (w * one - 0.5).rounded(.towardZero) : (w * one + 0.5).rounded(.towardZero))
            }
            starts[i] = lo
            counts[i] = n
        }
        self.outSize = outSize
        self.starts = starts
        self.counts = counts
        self.weights = weights
        self.taps = taps
    }

    @inline(__always)
    static func clip8(_ acc: Int) -> UInt8 {
        let v = acc >> precisionBits
        return v < 0 ? 0 : v > 255 ? 255 : UInt8(v)
    }

    /// Resamples every row to `outSize` columns.
    func horizontal(_ image: RGBImage) -> RGBImage {
        let w = image.width, h = image.height, ow = outSize
        var out = [UInt8](repeating: 0, count: ow * h * 3)
        let half = 1 << (Self.precisionBits - 1)
        image.pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                weights.withUnsafeBufferPointer { wt in
                    for y in 0..<h {
                        let row = y * w * 3
                        for x in 0..<ow {
                            var r = half, g = half, b = half
                            let start = starts[x], n = counts[x], base = x * taps
                            for j in 0..<n {
                                let k = Int(wt[base + j])
                                let s = row + (start + j) * 3
                                r += Int(src[s]) * k
                                g += Int(src[s + 1]) * k
                                b += Int(src[s + 2]) * k
                            }
                            let d = (y * ow + x) * 3
                            dst[d] = Self.clip8(r)
                            dst[d + 1] = Self.clip8(g)
                            dst[d + 2] = Self.clip8(b)
                        }
                    }
                }
            }
        }
        return RGBImage(unchecked: ow, h, out)
    }

    /// Resamples every column to `outSize` rows.
    func vertical(_ image: RGBImage) -> RGBImage {
        let w = image.width, oh = outSize
        let rowBytes = w * 3
        var out = [UInt8](repeating: 0, count: w * oh * 3)
        let half = 1 << (Self.precisionBits - 1)
        image.pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                weights.withUnsafeBufferPointer { wt in
                    var acc = [Int](repeating: 0, count: rowBytes)
                    for y in 0..<oh {
                        for i in 0..<rowBytes { acc[i] = half }
                        let start = starts[y], n = counts[y], base = y * taps
                        for j in 0..<n {
                            let k = Int(wt[base + j])
                            let s = (start + j) * rowBytes
                            for i in 0..<rowBytes { acc[i] += Int(src[s + i]) * k }
                        }
                        let d = y * rowBytes
                        for i in 0..<rowBytes { dst[d + i] = Self.clip8(acc[i]) }
                    }
                }
            }
        }
        return RGBImage(unchecked: w, oh, out)
    }
}

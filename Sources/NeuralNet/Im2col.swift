/// Lowering of one image's convolution input to the matrix a GEMM multiplies.
enum Im2col {
    /// `floor(a / b)` for `b > 0` and any sign of `a`.
    @inline(__always)
    static func floorDiv(_ a: Int, _ b: Int) -> Int { a >= 0 ? a / b : -((-a + b - 1) / b) }

    /// `ceil(a / b)` for `b > 0` and any sign of `a`.
    @inline(__always)
    static func ceilDiv(_ a: Int, _ b: Int) -> Int { a >= 0 ? (a + b - 1) / b : -((-a) / b) }

    /// Writes the column matrix of one image: `[channels * kernelH * kernelW, outH * outW]`, row
    /// `(c * kernelH + i) * kernelW + j` holding input channel `c` sampled at kernel tap `(i, j)` for every
    /// output position (zero where the tap falls into padding).
    ///
    /// Rows of one group's channels are contiguous, so group `g` is the row block starting at
    /// `g * (channels / groups) * kernelH * kernelW`.
    static func lower(
        _ src: UnsafePointer<Float>, channels: Int, h: Int, w: Int,
        config c: Conv2dConfig, outH: Int, outW: Int,
        into dst: UnsafeMutablePointer<Float>
    ) {
        let kh = c.kernelH, kw = c.kernelW, sh = c.strideH, sw = c.strideW
        let plane = h * w
        var row = dst
        for ch in 0..<channels {
            let input = src + ch * plane
            for i in 0..<kh {
                let dy = i * c.dilationH - c.padH
                for j in 0..<kw {
                    let dx = j * c.dilationW - c.padW
                    // Output columns whose tap lands inside the input: 0 <= x * sw + dx < w.
                    let lo = Swift.min(outW, Swift.max(0, ceilDiv(-dx, sw)))
                    let hi = Swift.max(lo, Swift.min(outW, floorDiv(w - 1 - dx, sw) + 1))
                    for y in 0..<outH {
                        let iy = y * sh + dy
                        if iy < 0 || iy >= h {
                            row.update(repeating: 0, count: outW)
                        } else {
                            if lo > 0 { row.update(repeating: 0, count: lo) }
                            let line = input + iy * w + dx
                            if sw == 1 {
                                (row + lo).update(from: line + lo, count: hi - lo)
                            } else {
                                for x in lo..<hi { row[x] = line[x * sw] }
                            }
                            if hi < outW { (row + hi).update(repeating: 0, count: outW - hi) }
                        }
                        row += outW
                    }
                }
            }
        }
    }

    /// Writes the strided samples `src[c, y * strideH, x * strideW]` of one image as `[channels, outH * outW]`
    /// (the input of an unpadded 1x1 convolution with stride > 1).
    static func subsample(
        _ src: UnsafePointer<Float>, channels: Int, h: Int, w: Int,
        strideH: Int, strideW: Int, outH: Int, outW: Int,
        into dst: UnsafeMutablePointer<Float>
    ) {
        var out = dst
        for ch in 0..<channels {
            let input = src + ch * h * w
            for y in 0..<outH {
                let line = input + y * strideH * w
                for x in 0..<outW { out[x] = line[x * strideW] }
                out += outW
            }
        }
    }
}

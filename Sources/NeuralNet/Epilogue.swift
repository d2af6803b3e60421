/// The single pass over a layer's output that adds a per-row bias and applies the activation.
///
/// `rows` rows of `rowLength` contiguous values (a channel's plane for the reference convolution).
enum Epilogue {
    /// Adds `bias[r]` to every value of row `r` and applies `activation`, in one pass.
    @inline(__always)
    static func rows(
        _ out: UnsafeMutablePointer<Float>, rows: Int, rowLength: Int, bias: UnsafePointer<Float>?,
        activation: Activation
    ) {
        switch (bias, activation) {
        case (nil, .none):
            return
        case (nil, .relu):
            relu(out, count: rows * rowLength)
        case (let b?, .none):
            for r in 0..<rows {
                let v = b[r]
                let p = out + r * rowLength
                for i in 0..<rowLength { p[i] += v }
            }
        case (let b?, .relu):
            for r in 0..<rows {
                let v = b[r]
                let p = out + r * rowLength
                for i in 0..<rowLength {
                    let y = p[i] + v
                    p[i] = y < 0 ? 0 : y
                }
            }
        }
    }

    /// In-place ReLU: negative values become 0; NaN stays NaN (as `torch.relu`).
    @inline(__always)
    static func relu(_ p: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count {
            let y = p[i]
            p[i] = y < 0 ? 0 : y
        }
    }
}

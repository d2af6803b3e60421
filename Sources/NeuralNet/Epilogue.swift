/// The single pass over a layer's output that adds a per-row bias and applies the activation.
///
/// `rows` rows of `rowLength` contiguous values (a channel's plane for a convolution, a sample's
/// features for `Linear` with `perColumn`).
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

    /// Adds `bias[j]` to column `j` of every row and applies `activation` (the layout of `Linear`'s output).
    @inline(__always)
    static func columns(
        _ out: UnsafeMutablePointer<Float>, rows: Int, rowLength: Int, bias: UnsafePointer<Float>?,
        activation: Activation
    ) {
        guard let b = bias else {
            if activation == .relu { relu(out, count: rows * rowLength) }
            return
        }
        for r in 0..<rows {
            let p = out + r * rowLength
            if activation == .relu {
                for i in 0..<rowLength {
                    let y = p[i] + b[i]
                    p[i] = y < 0 ? 0 : y
                }
            } else {
                for i in 0..<rowLength { p[i] += b[i] }
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

#if canImport(Darwin)
    import Darwin
#elseif canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Stateless operations on tensors.
///
/// Element-wise ops are here; pooling is in `Ops+Pooling.swift`, reshaping and concatenation in
/// `Ops+Shape.swift`. Every op is a pure function of its inputs.
public enum Ops {
    /// `max(x, 0)` element-wise, as `torch.relu` (NaN stays NaN).
    public static func relu(_ x: Tensor) -> Tensor {
        var y = x
        y.data.withUnsafeMutableBufferPointer { b in
            guard let p = b.baseAddress else { return }
            Epilogue.relu(p, count: b.count)
        }
        return y
    }

    /// `1 / (1 + exp(-x))` element-wise, as `torch.sigmoid`.
    public static func sigmoid(_ x: Tensor) -> Tensor {
        var y = x
        y.data.withUnsafeMutableBufferPointer { b in
            for i in 0..<b.count { b[i] = 1 / (1 + expf(-b[i])) }
        }
        return y
    }

    /// `a + b` (same shape), then the activation, in one pass.
    public static func add(_ a: Tensor, _ b: Tensor, activation: Activation = .none) throws(NeuralNetError) -> Tensor {
        guard a.shape == b.shape else {
            throw NeuralNetError("add: shapes differ: \(describe(a.shape)) and \(describe(b.shape))")
        }
        try a.checkStorage("add")
        try b.checkStorage("add")
        var y = a
        y.data.withUnsafeMutableBufferPointer { out in
            b.data.withUnsafeBufferPointer { rhs in
                if activation == .relu {
                    for i in 0..<out.count {
                        let v = out[i] + rhs[i]
                        out[i] = v < 0 ? 0 : v
                    }
                } else {
                    for i in 0..<out.count { out[i] += rhs[i] }
                }
            }
        }
        return y
    }

    /// `x [N, C, H, W]` times `gates [N, C, 1, 1]` (or `[N, C]`) per channel — squeeze-and-excitation's
    /// scaling. Throws unless the gates have one value per sample and channel of `x`.
    public static func scaleChannels(_ x: Tensor, by gates: Tensor) throws(NeuralNetError) -> Tensor {
        let (n, c, h, w) = try x.nchw("scaleChannels")
        guard gates.shape == [n, c, 1, 1] || gates.shape == [n, c] else {
            throw NeuralNetError(
                "scaleChannels: expected gates [\(n), \(c), 1, 1] or [\(n), \(c)] for input \(describe(x.shape)), found \(describe(gates.shape))"
            )
        }
        try gates.checkStorage("scaleChannels")
        let plane = h * w
        var y = x
        y.data.withUnsafeMutableBufferPointer { out in
            gates.data.withUnsafeBufferPointer { g in
                for i in 0..<(n * c) {
                    let s = g[i]
                    let base = i * plane
                    for j in base..<(base + plane) { out[j] *= s }
                }
            }
        }
        return y
    }
}

extension Ops {
    /// `[N, C, H, W]` (or any `[N, ...]`) -> `[N, C*H*W]`, as `torch.flatten(x, 1)`; the data is not copied.
    ///
    /// A 1-D `[N]` becomes `[N, 1]` and a scalar `[1, 1]`.
    public static func flatten(_ x: Tensor) -> Tensor {
        let n = x.shape.first ?? 1
        let rest = x.shape.dropFirst().reduce(1, *)
        return Tensor(unchecked: [n, rest], data: x.data)
    }

    /// Concatenation along channels (dim 1) of NCHW tensors with equal N, H, W.
    ///
    /// Throws for an empty list, a tensor that is not 4-D, or one whose N, H or W differ from the first.
    public static func concatChannels(_ xs: [Tensor]) throws(NeuralNetError) -> Tensor {
        guard let first = xs.first else { throw NeuralNetError("concatChannels: no tensors to concatenate") }
        let (n, _, h, w) = try first.nchw("concatChannels")
        var channels = 0
        for (i, t) in xs.enumerated() {
            let (tn, tc, th, tw) = try t.nchw("concatChannels")
            guard tn == n, th == h, tw == w else {
                throw NeuralNetError(
                    "concatChannels: tensor \(i) has shape \(describe(t.shape)), expected [\(n), C, \(h), \(w)] like tensor 0"
                )
            }
            channels += tc
        }
        if xs.count == 1 { return first }
        let plane = h * w
        let total = n * channels * plane
        let out = [Float](unsafeUninitializedCapacity: total) { buffer, count in
            count = 0
            guard total > 0, let dst = buffer.baseAddress else { return }
            var offset = 0  // channel offset of the current tensor
            for t in xs {
                let tc = t.shape[1]
                let block = tc * plane
                if block > 0 {
                    t.data.withUnsafeBufferPointer { src in
                        guard let s = src.baseAddress else { return }
                        for image in 0..<n {
                            (dst + (image * channels + offset) * plane).update(from: s + image * block, count: block)
                        }
                    }
                }
                offset += tc
            }
            count = total
        }
        return Tensor(unchecked: [n, channels, h, w], data: out)
    }
}

import CKernels

extension Conv2d {
    /// This convolution followed by `bn`, as one convolution (exact up to float rounding).
    ///
    /// `W'[o] = W[o] * scale[o]` and `b'[o] = (b[o] or 0) * scale[o] + shift[o]`, with
    /// `scale = gamma / sqrt(var + eps)` and `shift = beta - mean * scale` computed in Double and each
    /// result rounded once to Float. Throws unless `bn` has `outChannels` channels.
    public func folding(_ bn: BatchNorm2d) throws(NeuralNetError) -> Conv2d {
        let out = config.outChannels
        guard bn.channels == out else {
            throw NeuralNetError(
                "conv2d folding: batch norm has \(bn.channels) channels, the convolution has \(out) output channels")
        }
        let (scale, shift) = bn.doubleScaleShift
        let perChannel = weight.count / out
        var foldedBias = [Float](repeating: 0, count: out)
        let folded = [Float](unsafeUninitializedCapacity: weight.count) { f, count in
            weight.withUnsafeBufferPointer { w in
                scale.withUnsafeBufferPointer { s in
                    ck_scale_rows(w.baseAddress!, s.baseAddress!, out, perChannel, f.baseAddress!)
                }
            }
            count = weight.count
        }
        for o in 0..<out {
            let b = bias.map { Double($0[o]) } ?? 0
            foldedBias[o] = Float(b * scale[o] + shift[o])
        }
        return try Conv2d(config: config, weight: folded, bias: foldedBias)
    }
}

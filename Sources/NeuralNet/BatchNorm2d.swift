/// Batch norm in inference form: `y = (x - mean) / sqrt(var + eps) * weight + bias`, per channel.
///
/// Where a convolution precedes it, fold it into that convolution with `Conv2d.folding(_:)`; apply it
/// directly only where no convolution precedes it (e.g. DenseNet's pre-activation norms).
public struct BatchNorm2d: Sendable {
    /// Per-channel scale gamma (PyTorch `weight`).
    public let weight: [Float]
    /// Per-channel shift beta (PyTorch `bias`).
    public let bias: [Float]
    /// Per-channel running mean (PyTorch `running_mean`).
    public let runningMean: [Float]
    /// Per-channel running variance (PyTorch `running_var`).
    public let runningVar: [Float]
    /// The epsilon added to the variance.
    public let eps: Float

    /// The per-channel scale applied to inputs, `weight / sqrt(runningVar + eps)` rounded to Float.
    let scale: [Float]
    /// The per-channel shift, `bias - runningMean * scale` rounded to Float.
    let shift: [Float]

    /// Creates a batch norm, checking that all four vectors have the same non-zero length and that
    /// `runningVar + eps` is positive for every channel.
    public init(
        weight: [Float], bias: [Float], runningMean: [Float], runningVar: [Float], eps: Float = 1e-5
    ) throws(NeuralNetError) {
        let c = weight.count
        guard c > 0 else { throw NeuralNetError("batchnorm2d: weight is empty") }
        guard bias.count == c, runningMean.count == c, runningVar.count == c else {
            throw NeuralNetError(
                "batchnorm2d: expected \(c) values in weight, bias, running_mean and running_var, found \(c), \(bias.count), \(runningMean.count), \(runningVar.count)"
            )
        }
        guard eps.isFinite, eps >= 0 else { throw NeuralNetError("batchnorm2d: eps must be finite and >= 0, found \(eps)") }
        for (i, v) in runningVar.enumerated() where !(Double(v) + Double(eps) > 0) {
            throw NeuralNetError("batchnorm2d: running_var[\(i)] + eps must be positive, found \(v) + \(eps)")
        }
        self.weight = weight
        self.bias = bias
        self.runningMean = runningMean
        self.runningVar = runningVar
        self.eps = eps
        let (scale, shift) = Self.doubleScaleShift(
            weight: weight, bias: bias, runningMean: runningMean, runningVar: runningVar, eps: eps)
        self.scale = scale.map { Float($0) }
        self.shift = shift.map { Float($0) }
    }

    /// The number of channels.
    public var channels: Int { weight.count }

    /// Per-channel scale and shift equal to this batch norm (computed in Double, rounded once):
    /// `scale = weight / sqrt(runningVar + eps)`, `shift = bias - runningMean * scale`.
    public var scaleShift: (scale: [Float], shift: [Float]) { (scale, shift) }

    /// Scale and shift in Double, before rounding (what `Conv2d.folding(_:)` multiplies by).
    var doubleScaleShift: (scale: [Double], shift: [Double]) {
        Self.doubleScaleShift(weight: weight, bias: bias, runningMean: runningMean, runningVar: runningVar, eps: eps)
    }

    static func doubleScaleShift(
        weight: [Float], bias: [Float], runningMean: [Float], runningVar: [Float], eps: Float
    ) -> (scale: [Double], shift: [Double]) {
        var scale = [Double](repeating: 0, count: weight.count)
        var shift = [Double](repeating: 0, count: weight.count)
        for i in 0..<weight.count {
            let s = Double(weight[i]) / (Double(runningVar[i]) + Double(eps)).squareRoot()
            scale[i] = s
            shift[i] = Double(bias[i]) - Double(runningMean[i]) * s
        }
        return (scale, shift)
    }

    /// Applies to NCHW input (used where no convolution precedes it, e.g. DenseNet's pre-activation
    /// norms), with the activation fused into the same pass. Throws unless the input is `[N, channels, H, W]`.
    public func callAsFunction(_ x: Tensor, activation: Activation = .none) throws(NeuralNetError) -> Tensor {
        let (n, c, h, w) = try x.nchw("batchnorm2d")
        guard c == channels else {
            throw NeuralNetError("batchnorm2d: expected input [N, \(channels), H, W], found \(describe(x.shape))")
        }
        let plane = h * w
        let total = x.count
        let out = [Float](unsafeUninitializedCapacity: total) { buffer, count in
            count = 0
            guard total > 0, let dst = buffer.baseAddress else { return }
            x.data.withUnsafeBufferPointer { input in
                guard let src = input.baseAddress else { return }
                scale.withUnsafeBufferPointer { scale in
                    shift.withUnsafeBufferPointer { shift in
                        Self.apply(
                            src, dst, images: n, channels: c, plane: plane, scale: scale.baseAddress!,
                            shift: shift.baseAddress!, activation: activation)
                    }
                }
                count = total
            }
        }
        return Tensor(unchecked: x.shape, data: out)
    }

    /// `dst = activation(src * scale[c] + shift[c])` over `[images, channels, plane]`; `dst` may equal `src`.
    static func apply(
        _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, images: Int, channels: Int, plane: Int,
        scale: UnsafePointer<Float>, shift: UnsafePointer<Float>, activation: Activation
    ) {
        for image in 0..<images {
            for ch in 0..<channels {
                let offset = (image * channels + ch) * plane
                let s = scale[ch], b = shift[ch]
                let p = src + offset, q = dst + offset
                if activation == .relu {
                    for i in 0..<plane {
                        let y = p[i] * s + b
                        q[i] = y < 0 ? 0 : y
                    }
                } else {
                    for i in 0..<plane { q[i] = p[i] * s + b }
                }
            }
        }
    }
}

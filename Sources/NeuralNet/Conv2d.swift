/// A convolution with weights `[out, in/groups, kh, kw]` (OIHW) and an optional bias.
///
/// Forward lowers to GEMM through CBLAS, image by image and group by group: an unpadded stride-1 1x1
/// convolution multiplies the input directly, a strided unpadded 1x1 convolution subsamples first, and
/// every other geometry goes through an im2col buffer of one image. Bias and activation are applied in
/// one pass over the output. A `Conv2d` is an immutable value: calling it from several tasks at once is safe.
public struct Conv2d: Sendable {
    /// The geometry.
    public let config: Conv2dConfig
    /// Weights in PyTorch's OIHW order, `config.weightShape`.
    public let weight: [Float]
    /// One value per output channel, or nil for a convolution without bias.
    public let bias: [Float]?

    /// Creates a convolution, checking the configuration and that `weight` has
    /// `out * in/groups * kh * kw` values and `bias` (if any) has `out` values.
    public init(config: Conv2dConfig, weight: [Float], bias: [Float]?) throws(NeuralNetError) {
        try config.validate()
        var expected = 1
        for d in config.weightShape {
            let (p, overflow) = expected.multipliedReportingOverflow(by: d)
            guard !overflow else {
                throw NeuralNetError("conv2d: weight shape \(describe(config.weightShape)) is too large")
            }
            expected = p
        }
        guard weight.count == expected else {
            throw NeuralNetError(
                "conv2d: weight of shape \(describe(config.weightShape)) needs \(expected) values, found \(weight.count)")
        }
        if let bias, bias.count != config.outChannels {
            throw NeuralNetError("conv2d: bias needs \(config.outChannels) values, found \(bias.count)")
        }
        try GEMM.check("conv2d", config.outChannelsPerGroup, expected / config.outChannels)
        self.config = config
        self.weight = weight
        self.bias = bias
    }
}

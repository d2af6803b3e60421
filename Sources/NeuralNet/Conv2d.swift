/// A convolution with weights `[out, in/groups, kh, kw]` (OIHW) and an optional bias.
///
/// Forward runs the engine's packed-GEMM kernels (`CKernels`): the weights are packed into panels on
/// first use, the input is packed block by block straight from the image (no whole im2col matrix), and
/// bias and activation are applied as each output tile is stored. A `Conv2d` is an immutable value: calling it from several tasks at once is safe.
public struct Conv2d: Sendable {
    /// The geometry.
    public let config: Conv2dConfig
    /// Weights in PyTorch's OIHW order, `config.weightShape`.
    public let weight: [Float]
    /// One value per output channel, or nil for a convolution without bias.
    public let bias: [Float]?
    /// The weights in the kernels' packed layout, made on first use.
    let kernelCache = ConvKernelCache()

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

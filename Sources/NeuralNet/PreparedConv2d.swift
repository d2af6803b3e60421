/// A convolution prepared once for repeated inference on caller-owned buffers: its weights are packed
/// into the kernels' layout when it is made, and each call runs straight on raw NCHW memory, with the
/// bias, a residual addition and ReLU applied as the output is stored and an optional per-channel
/// affine + ReLU (a pre-activation batch norm) applied to the input as it is packed.
///
/// Model graphs use it with a memory plan (one workspace of reused buffers) so that an inference does
/// not allocate. Immutable and `Sendable`: one prepared convolution may run from several threads at once.
public struct PreparedConv2d: Sendable {
    /// The geometry.
    public let config: Conv2dConfig
    let weights: ConvKernelWeights
    /// The OIHW weights as given, kept only where neither `weights` nor `few` can give them back
    /// (Winograd on a geometry the direct kernel does not take).
    let original: [Float]?
    /// For a Winograd layer, the same convolution (weights as given, batch norm in the epilogue) run
    /// instead when a call has few output tiles (`ConvKernelWeights.manyTiles`: fewer than 48 of 4x4,
    /// small planes at small batches, where Winograd's panels of 32 tiles are mostly padding: measured 2x
    /// faster at 14x14 and 4x at 7x7 for DenseNet's 128 -> 32 layers at batch 1, slower from 28x28; for
    /// F(2x2, 3x3) fewer than 20 of 2x2). For F(4x4) layers it is the direct channel-blocked kernel's
    /// copy. For F(2x2) layers it is the layer prepared without Winograd (`init(_:winograd:)` with false:
    /// GEMM panels), which also runs the calls with at least a panel of 4x4 tiles as F(4x4) on weights
    /// transformed per call (`ConvKernelWeights.fullPanelTiles`; faster there than the prepared F(2x2)
    /// weights, and no second transformed copy held). Nil where the direct kernel does not apply.
    let few: ConvKernelWeights?

    /// Packs `conv`'s weights (and copies its bias) into the kernels' layout. A 3x3 stride-1 convolution
    /// with padding 1, no groups and at most 128 channels in and out is prepared for Winograd F(4x4, 3x3)
    /// (about 2-3x fewer multiplications; results within about 1e-5 relative of the direct method), one
    /// with 129 to 256 channels in and out for F(2x2, 3x3) (about 2x fewer, on smaller tiles), and a
    /// grouped convolution with a multiple of 4 outputs per group (or a stem convolution on at most 4 input
    /// channels) runs a direct kernel on AVX-512 CPUs, as does a larger non-grouped convolution of 3x3 or
    /// more on multiples of 16 input and 32 output channels (`usesDirectBlocked`); of those, the stride-1
    /// 3x3 ones of 257 to 512 channels run calls with one or two full panels of 4x4 tiles (ResNet's last
    /// stage at batch 8 to 16) as F(4x4, 3x3) on weights transformed during the call from the direct
    /// kernel's (`ConvKernelWeights.wideTransientEligible`), in either memory mode.
    ///
    /// `winograd` false prepares the Winograd geometries for the other kernels instead: the layer then
    /// holds one exact copy of its weights (a Winograd layer holds its transformed weights, 16/9 or 4x the
    /// size, beside a copy as given: `few`), and its calls run the direct or GEMM paths or, on AVX-512F
    /// CPUs, Winograd on weights transformed during each call where there are many tiles
    /// (`usesTransientWinograd`; F(2x2) geometries run F(4x4) from a full panel of 4x4 tiles,
    /// `winogradTile(batch:height:width:)`).
    public init(_ conv: Conv2d, winograd: Bool = true) {
        config = conv.config
        weights = conv.weight.withUnsafeBufferPointer { w in
            withOptionalPointer(conv.bias) { b in
                ConvKernelWeights(config: conv.config, weight: w.baseAddress!, bias: b, specialize: true, allowWinograd: winograd)
            }
        }
        let (winogradLayout, smallTiles) = (weights.winograd, weights.smallTiles)
        few = winogradLayout && ConvKernelWeights.directEligible(conv.config)
            ? conv.weight.withUnsafeBufferPointer { w in
                withOptionalPointer(conv.bias) { b in
                    Self.fewCopy(conv.config, weight: w.baseAddress!, scale: nil, bias: b, smallTiles: smallTiles)
                }
            } : nil
        original = weights.winograd && few == nil ? conv.weight : nil
    }

    /// Prepares `conv` followed by `batchNorm` (if given) as one convolution, keeping `conv`'s weights
    /// exact: the packed weights are `conv.weight` re-ordered, and the batch norm is applied in the
    /// kernels' epilogue as `y = sum * scale[o] + (bias[o] * scale[o] + shift[o])` (scale and shift of
    /// `BatchNorm2d.scaleShift`, the bias computed in Double and rounded once). A Winograd geometry
    /// (see `init(_:)`) has the batch norm folded into its transformed weights instead
    /// (`Conv2d.folding(_:)`). Either way `weightsAsGiven()` returns `conv.weight` bit for bit.
    /// `winograd` as in `init(_:winograd:)`. Throws unless the batch norm has `outChannels` channels.
    public init(_ conv: Conv2d, batchNorm: BatchNorm2d?, winograd: Bool = true) throws(NeuralNetError) {
        guard let bn = batchNorm else {
            self.init(conv, winograd: winograd)
            return
        }
        if winograd && ConvKernelWeights.winogradEligible(conv.config) {
            let folded = try conv.folding(bn)
            let wino = folded.weight.withUnsafeBufferPointer { w in
                withOptionalPointer(folded.bias) { b in
                    ConvKernelWeights(config: conv.config, weight: w.baseAddress!, bias: b, specialize: true)
                }
            }
            var few: ConvKernelWeights?
            if ConvKernelWeights.directEligible(conv.config) {
                let (scale, bias) = Self.epilogue(bias: conv.bias, batchNorm: bn)
                few = conv.weight.withUnsafeBufferPointer { w in
                    scale.withUnsafeBufferPointer { s in
                        bias.withUnsafeBufferPointer { b in
                            Self.fewCopy(conv.config, weight: w.baseAddress!, scale: s.baseAddress!, bias: b.baseAddress!, smallTiles: wino.smallTiles)
                        }
                    }
                }
            }
            self.init(config: conv.config, weights: wino, original: few == nil ? conv.weight : nil, few: few)
            return
        }
        self = try conv.weight.withUnsafeBufferPointer { (w) throws(NeuralNetError) in
            try PreparedConv2d(config: conv.config, weight: w, bias: conv.bias, batchNorm: bn, winograd: winograd)
        }
    }

    /// A Winograd layer's copy of its weights as given (`few`): for the direct kernel after F(4x4), as
    /// GEMM panels that also run transient F(4x4) after F(2x2) (`smallTiles`).
    private static func fewCopy(
        _ config: Conv2dConfig, weight: UnsafePointer<Float>, scale: UnsafePointer<Float>?, bias: UnsafePointer<Float>?, smallTiles: Bool
    ) -> ConvKernelWeights {
        smallTiles
            ? ConvKernelWeights(config: config, weight: weight, scale: scale, bias: bias, specialize: true, allowWinograd: false)
            : ConvKernelWeights(config: config, weight: weight, scale: scale, bias: bias, directOnly: true)
    }

    /// Prepares a convolution of `config` with OIHW weights read from `weight` (which is not kept: it may
    /// be a window into a mapped file), an optional bias, followed by an optional batch norm; the same
    /// result as `init(Conv2d(config:weight:bias:), batchNorm:winograd:)` without the intermediate copy of
    /// the weights. Throws for an invalid configuration, a weight or bias of the wrong size, or a batch
    /// norm of another channel count.
    public init(
        config: Conv2dConfig, weight: UnsafeBufferPointer<Float>, bias: [Float]?, batchNorm: BatchNorm2d?, winograd: Bool = true
    ) throws(NeuralNetError) {
        if batchNorm == nil || (winograd && ConvKernelWeights.winogradEligible(config)) {
            try self.init(try Conv2d(config: config, weight: Array(weight), bias: bias), batchNorm: batchNorm, winograd: winograd)
            return
        }
        try config.validate()
        var expected = 1
        for d in config.weightShape {
            let (p, overflow) = expected.multipliedReportingOverflow(by: d)
            guard !overflow else { throw NeuralNetError("conv2d: weight shape \(describe(config.weightShape)) is too large") }
            expected = p
        }
        guard weight.count == expected, let base = weight.baseAddress else {
            throw NeuralNetError("conv2d: weight of shape \(describe(config.weightShape)) needs \(expected) values, found \(weight.count)")
        }
        if let bias, bias.count != config.outChannels {
            throw NeuralNetError("conv2d: bias needs \(config.outChannels) values, found \(bias.count)")
        }
        try GEMM.check("conv2d", config.outChannelsPerGroup, expected / config.outChannels)
        let out = config.outChannels
        let bn = batchNorm!
        guard bn.channels == out else {
            throw NeuralNetError(
                "conv2d folding: batch norm has \(bn.channels) channels, the convolution has \(out) output channels")
        }
        let (floatScale, folded) = Self.epilogue(bias: bias, batchNorm: bn)
        let weights = floatScale.withUnsafeBufferPointer { s in
            folded.withUnsafeBufferPointer { b in
                ConvKernelWeights(
                    config: config, weight: base, scale: s.baseAddress!, bias: b.baseAddress!, specialize: true, allowWinograd: winograd)
            }
        }
        self.init(config: config, weights: weights, original: nil, few: nil)
    }

    /// The epilogue of a convolution followed by `bn`: `y = sum * scale[o] + bias[o]` with `scale` of
    /// `BatchNorm2d.doubleScaleShift` rounded to Float and `bias = (convBias or 0) * scale + shift`
    /// computed in Double and rounded once.
    static func epilogue(bias: [Float]?, batchNorm bn: BatchNorm2d) -> (scale: [Float], bias: [Float]) {
        let (scale, shift) = bn.doubleScaleShift
        var folded = [Float](repeating: 0, count: scale.count)
        for o in 0..<scale.count { folded[o] = Float((bias.map { Double($0[o]) } ?? 0) * scale[o] + shift[o]) }
        return (scale.map { Float($0) }, folded)
    }

    /// The OIHW weights this convolution was prepared from (before any batch norm), bit for bit.
    public func weightsAsGiven() -> [Float] {
        original ?? few?.unpackedWeights() ?? weights.unpackedWeights() ?? []
    }

    private init(config: Conv2dConfig, weights: ConvKernelWeights, original: [Float]?, few: ConvKernelWeights?) {
        self.config = config
        self.weights = weights
        self.original = original
        self.few = few
    }

    /// The prepared weights a call on `batch` images of `height` x `width` runs: a Winograd layer's copy
    /// as given (`few`) when the call has few tiles (`ConvKernelWeights.manyTiles`) or, after F(2x2), a
    /// full panel of 4x4 tiles (transient F(4x4)), else the main ones.
    func kernel(batch: Int, height: Int, width: Int) -> ConvKernelWeights {
        guard let few else { return weights }
        let (oh, ow) = outputSize(height: height, width: width)
        if few.transientCallTile(batch: batch, outH: oh, outW: ow) == 4 { return few }
        return ConvKernelWeights.manyTiles(tile: weights.smallTiles ? 2 : 4, batch: batch, outH: oh, outW: ow) ? weights : few
    }

    /// Whether a call on `batch` images of `height` x `width` (without an input prologue) runs Winograd,
    /// F(4x4, 3x3) or F(2x2, 3x3), on prepared or on transient weights (false for calls with few tiles,
    /// which run the direct kernel or, for weights held as GEMM panels, the GEMM path).
    public func usesWinograd(batch: Int, height: Int, width: Int) -> Bool {
        winogradTile(batch: batch, height: height, width: width) != 0
    }

    /// The output tile of the Winograd kernel a call on `batch` images of `height` x `width` (without an
    /// input prologue) runs: 4 for F(4x4, 3x3), 2 for F(2x2, 3x3), on prepared or transient weights; 0
    /// when it runs another kernel.
    public func winogradTile(batch: Int, height: Int, width: Int) -> Int {
        let k = kernel(batch: batch, height: height, width: width)
        if k.winograd { return k.smallTiles ? 2 : 4 }
        let (oh, ow) = outputSize(height: height, width: width)
        return k.transientCallTile(batch: batch, outH: oh, outW: ow)
    }

    /// Whether this convolution holds Winograd-transformed weights, F(4x4, 3x3) or F(2x2, 3x3).
    public var usesWinograd: Bool { weights.winograd }

    /// Whether this convolution holds its weights once, as GEMM panels (more than 32 outputs) or for the
    /// direct kernel (32), and runs calls with many tiles as Winograd on weights transformed during the
    /// call (`winograd: false` on a Winograd geometry, AVX-512F CPUs).
    public var usesTransientWinograd: Bool { weights.transientTile != 0 }

    /// Whether this convolution's Winograd layout is F(2x2, 3x3) (129 to 256 channels in and out).
    public var usesWinogradSmallTiles: Bool { weights.smallTiles }

    /// Whether this convolution runs the direct grouped kernel.
    public var usesDirectGrouped: Bool { weights.grouped }

    /// Whether this convolution runs the direct channel-blocked kernel (AVX-512F CPUs; 3x3 and larger
    /// kernels on multiples of 16 input and 32 output channels, where Winograd does not apply).
    public var usesDirectBlocked: Bool { weights.direct }

    /// Bytes of packed weights and bias this convolution holds.
    public var byteCount: Int { weights.byteCount + (few?.byteCount ?? 0) + (original?.count ?? 0) * MemoryLayout<Float>.stride }

    /// Runs the convolution on `batch` images.
    ///
    /// - `input`: image `i` at `input + i * inputImageStride`, `inChannels` planes of `height` x `width`
    ///   floats (so the input may be the first channels of a larger tensor).
    /// - `output`: image `i` at `output + i * outputImageStride`, `outChannels` planes of the output size
    ///   (`config.outputSize`), fully overwritten.
    /// - `residual`: if given, laid out like the output and added before the activation.
    /// - `inputScale`, `inputShift`: if given (`inChannels` values each), every input value becomes
    ///   `max(x * scale[c] + shift[c], 0)` before it is convolved (padding stays zero).
    ///
    /// The caller guarantees the sizes: the output size must be valid for this geometry and every buffer
    /// must hold what these strides address. Nothing is checked here.
    public func run(
        batch: Int, height: Int, width: Int,
        input: UnsafePointer<Float>, inputImageStride: Int,
        output: UnsafeMutablePointer<Float>, outputImageStride: Int,
        residual: UnsafePointer<Float>? = nil, residualImageStride: Int = 0,
        inputScale: UnsafePointer<Float>? = nil, inputShift: UnsafePointer<Float>? = nil,
        activation: Activation
    ) {
        let (oh, ow) = outputSize(height: height, width: width)
        kernel(batch: batch, height: height, width: width).run(
            batch: batch, h: height, w: width, outH: oh, outW: ow,
            input: input, inputImageStride: inputImageStride,
            output: output, outputImageStride: outputImageStride,
            residual: residual, residualImageStride: residualImageStride,
            inputScale: inputScale, inputShift: inputShift, relu: activation == .relu)
    }

    /// The output size for an input of `height` x `width` (PyTorch's formula; 0 when it would be empty).
    public func outputSize(height: Int, width: Int) -> (h: Int, w: Int) {
        (try? config.outputSize(h: height, w: width)) ?? (0, 0)
    }
}

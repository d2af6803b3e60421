extension Conv2d {
    /// How a geometry is lowered to GEMM.
    enum Lowering: Sendable, Equatable {
        /// 1x1, stride 1, no padding: the input image is already the GEMM's right-hand matrix.
        case direct
        /// 1x1 with stride > 1, no padding: subsample the input, then GEMM.
        case subsample
        /// Everything else: im2col, then GEMM.
        case im2col
    }

    /// The lowering this geometry uses.
    var lowering: Lowering {
        let c = config
        guard c.kernelH == 1, c.kernelW == 1, c.padH == 0, c.padW == 0 else { return .im2col }
        return c.strideH == 1 && c.strideW == 1 ? .direct : .subsample
    }

    /// Floats of scratch space one call needs for an output of `outH` x `outW` (reused for every image).
    func scratchCount(outH: Int, outW: Int) -> Int {
        switch lowering {
        case .direct: return 0
        case .subsample: return config.inChannels * outH * outW
        case .im2col: return config.inChannels * config.kernelH * config.kernelW * outH * outW
        }
    }

    /// NCHW in, NCHW out; bias and activation fused into the output pass.
    ///
    /// Throws if the input is not `[N, inChannels, H, W]` or the output would be empty.
    public func callAsFunction(_ x: Tensor, activation: Activation = .none) throws(NeuralNetError) -> Tensor {
        let (n, c, h, w) = try x.nchw("conv2d")
        guard c == config.inChannels else {
            throw NeuralNetError(
                "conv2d: expected input [N, \(config.inChannels), H, W], found \(describe(x.shape))")
        }
        let (outH, outW) = try config.outputSize(h: h, w: w)
        let outPlane = outH * outW
        try GEMM.check("conv2d", outPlane, h * w)
        let total = n * config.outChannels * outPlane
        let out = [Float](unsafeUninitializedCapacity: total) { buffer, count in
            count = 0
            guard total > 0, let outBase = buffer.baseAddress else { return }
            x.data.withUnsafeBufferPointer { input in
                guard let inBase = input.baseAddress else { return }
                forward(
                    images: n, h: h, w: w, outH: outH, outW: outW,
                    input: inBase, output: outBase, scratch: nil, activation: activation)
                count = total
            }
        }
        guard out.count == total else {
            throw NeuralNetError("conv2d: input \(describe(x.shape)) has no elements to convolve")
        }
        return Tensor(unchecked: [n, config.outChannels, outH, outW], data: out)
    }

    /// The weights in the kernels' packed layout (packed on first use).
    var kernelWeights: ConvKernelWeights {
        kernelCache.get {
            weight.withUnsafeBufferPointer { w in
                withOptionalPointer(bias) { b in ConvKernelWeights(config: config, weight: w.baseAddress!, bias: b) }
            }
        }
    }

    /// The forward pass on raw buffers: `input` is `[images, inChannels, h, w]`, `output` receives
    /// `[images, outChannels, outH, outW]` (it may be uninitialised). `scratch` is unused (kept for the
    /// reference path's signature).
    ///
    /// Sizes must already be validated (`outputSize`, `GEMM.check`); this performs no checks.
    func forward(
        images: Int, h: Int, w: Int, outH: Int, outW: Int,
        input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
        scratch: UnsafeMutablePointer<Float>?, activation: Activation
    ) {
        kernelWeights.run(
            batch: images, h: h, w: w, outH: outH, outW: outW,
            input: input, inputImageStride: config.inChannels * h * w,
            output: output, outputImageStride: config.outChannels * outH * outW,
            residual: nil, residualImageStride: 0, inputScale: nil, inputShift: nil,
            relu: activation == .relu)
    }

    /// The CBLAS reference forward pass (im2col + `cblas_sgemm`, image by image and group by group), kept
    /// to check the engine's kernels against. Same contract as `forward`, with `scratch` holding at least
    /// `scratchCount(outH:outW:)` floats.
    func forwardReference(
        images: Int, h: Int, w: Int, outH: Int, outW: Int,
        input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
        scratch: UnsafeMutablePointer<Float>?, activation: Activation
    ) {
        let c = config
        let groups = c.groups
        let inPerGroup = c.inChannelsPerGroup
        let outPerGroup = c.outChannelsPerGroup
        let taps = c.kernelH * c.kernelW
        let k = inPerGroup * taps  // GEMM depth per group
        let inPlane = h * w
        let outPlane = outH * outW
        let lowering = self.lowering
        weight.withUnsafeBufferPointer { weights in
            let wBase = weights.baseAddress!
            withOptionalPointer(bias) { biasBase in
                for image in 0..<images {
                    let src = input + image * c.inChannels * inPlane
                    let dst = output + image * c.outChannels * outPlane
                    // The right-hand matrix of all groups, [inChannels * taps, outPlane].
                    let columns: UnsafePointer<Float>
                    switch lowering {
                    case .direct:
                        columns = src
                    case .subsample:
                        Im2col.subsample(
                            src, channels: c.inChannels, h: h, w: w, strideH: c.strideH, strideW: c.strideW,
                            outH: outH, outW: outW, into: scratch!)
                        columns = UnsafePointer(scratch!)
                    case .im2col:
                        Im2col.lower(
                            src, channels: c.inChannels, h: h, w: w, config: c, outH: outH, outW: outW,
                            into: scratch!)
                        columns = UnsafePointer(scratch!)
                    }
                    for g in 0..<groups {
                        GEMM.multiply(
                            m: outPerGroup, n: outPlane, k: k,
                            a: wBase + g * outPerGroup * k, lda: k,
                            b: columns + g * k * outPlane, ldb: outPlane,
                            c: dst + g * outPerGroup * outPlane, ldc: outPlane)
                    }
                    Epilogue.rows(
                        dst, rows: c.outChannels, rowLength: outPlane, bias: biasBase, activation: activation)
                }
            }
        }
    }
}

/// Calls `body` with a pointer to the array's elements, or nil when there is no array.
@inline(__always)
func withOptionalPointer<R>(_ array: [Float]?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let array else { return body(nil) }
    return array.withUnsafeBufferPointer { body($0.baseAddress) }
}

extension Ops {
    /// The output length of a pooling window along one dimension, as PyTorch's `pooling_output_shape`:
    /// `floor_or_ceil((in + 2 * pad - kernel) / stride) + 1`, and in ceil mode one less if the last window
    /// would start at or beyond `in + pad` (it must start inside the input or the left padding).
    ///
    /// Throws for a non-positive kernel or stride, negative padding, padding over half the kernel
    /// (PyTorch refuses it), or an output smaller than 1.
    static func poolOutputLength(
        _ op: String, input: Int, kernel: Int, stride: Int, padding: Int, ceilMode: Bool
    ) throws(NeuralNetError) -> Int {
        let limit = 1 << 30
        guard kernel > 0, stride > 0, kernel <= limit, stride <= limit else {
            throw NeuralNetError("\(op): kernel and stride must be positive, found kernel \(kernel), stride \(stride)")
        }
        guard padding >= 0, padding <= kernel / 2 else {
            throw NeuralNetError("\(op): padding must be between 0 and half the kernel (\(kernel / 2)), found \(padding)")
        }
        guard input <= limit else { throw NeuralNetError("\(op): input size \(input) out of range") }
        let span = input + 2 * padding - kernel
        guard input > 0, span >= 0 else {
            throw NeuralNetError(
                "\(op): input size \(input) with padding \(padding) is smaller than the kernel \(kernel); output would be empty"
            )
        }
        var out = (ceilMode ? (span + stride - 1) / stride : span / stride) + 1
        if ceilMode, (out - 1) * stride >= input + padding { out -= 1 }
        guard out >= 1 else { throw NeuralNetError("\(op): output size \(out) is smaller than 1") }
        return out
    }

    /// PyTorch MaxPool2d: explicit padding (with -inf), optional ceil mode (a window must start inside
    /// input or left padding). NaN propagates as in PyTorch.
    ///
    /// Throws unless the input is 4-D, `0 <= padding <= kernel / 2` and the output is at least 1x1.
    public static func maxPool2d(
        _ x: Tensor, kernel: Int, stride: Int, padding: Int = 0, ceilMode: Bool = false
    ) throws(NeuralNetError) -> Tensor {
        let (n, c, h, w) = try x.nchw("maxPool2d")
        let outH = try poolOutputLength(
            "maxPool2d", input: h, kernel: kernel, stride: stride, padding: padding, ceilMode: ceilMode)
        let outW = try poolOutputLength(
            "maxPool2d", input: w, kernel: kernel, stride: stride, padding: padding, ceilMode: ceilMode)
        let planes = n * c
        let total = planes * outH * outW
        let out = [Float](unsafeUninitializedCapacity: total) { buffer, count in
            count = 0
            guard total > 0, let dst = buffer.baseAddress else { return }
            x.data.withUnsafeBufferPointer { input in
                guard let src = input.baseAddress else { return }
                var q = dst
                for plane in 0..<planes {
                    let p = src + plane * h * w
                    for oy in 0..<outH {
                        let y0 = oy * stride - padding
                        let yLo = Swift.max(y0, 0), yHi = Swift.min(y0 + kernel, h)
                        for ox in 0..<outW {
                            let x0 = ox * stride - padding
                            let xLo = Swift.max(x0, 0), xHi = Swift.min(x0 + kernel, w)
                            var m = -Float.infinity
                            for y in yLo..<Swift.max(yLo, yHi) {
                                let row = p + y * w
                                for xx in xLo..<Swift.max(xLo, xHi) {
                                    let v = row[xx]
                                    if v > m || v.isNaN { m = v }
                                }
                            }
                            q[ox] = m
                        }
                        q += outW
                    }
                }
                count = total
            }
        }
        guard out.count == total else { throw NeuralNetError("maxPool2d: input \(describe(x.shape)) has no storage") }
        return Tensor(unchecked: [n, c, outH, outW], data: out)
    }

    /// PyTorch AvgPool2d (count_include_pad true, as torchvision's DenseNet transitions use it with padding 0).
    ///
    /// Each output is the window's sum divided by the window size clipped to the padded input
    /// (`(min(y0 + k, H + pad) - y0) * (min(x0 + k, W + pad) - x0)`), as PyTorch computes it.
    /// Throws unless the input is 4-D, `0 <= padding <= kernel / 2` and the output is at least 1x1.
    public static func avgPool2d(
        _ x: Tensor, kernel: Int, stride: Int, padding: Int = 0, ceilMode: Bool = false
    ) throws(NeuralNetError) -> Tensor {
        let (n, c, h, w) = try x.nchw("avgPool2d")
        let outH = try poolOutputLength(
            "avgPool2d", input: h, kernel: kernel, stride: stride, padding: padding, ceilMode: ceilMode)
        let outW = try poolOutputLength(
            "avgPool2d", input: w, kernel: kernel, stride: stride, padding: padding, ceilMode: ceilMode)
        let planes = n * c
        let total = planes * outH * outW
        let out = [Float](unsafeUninitializedCapacity: total) { buffer, count in
            count = 0
            guard total > 0, let dst = buffer.baseAddress else { return }
            x.data.withUnsafeBufferPointer { input in
                guard let src = input.baseAddress else { return }
                var q = dst
                for plane in 0..<planes {
                    let p = src + plane * h * w
                    for oy in 0..<outH {
                        let y0 = oy * stride - padding
                        let y1 = Swift.min(y0 + kernel, h + padding)
                        let yLo = Swift.max(y0, 0), yHi = Swift.min(y1, h)
                        for ox in 0..<outW {
                            let x0 = ox * stride - padding
                            let x1 = Swift.min(x0 + kernel, w + padding)
                            let xLo = Swift.max(x0, 0), xHi = Swift.min(x1, w)
                            if yLo >= yHi || xLo >= xHi {
                                q[ox] = 0
                                continue
                            }
                            var sum: Float = 0
                            for y in yLo..<yHi {
                                let row = p + y * w
                                for xx in xLo..<xHi { sum += row[xx] }
                            }
                            q[ox] = sum / Float((y1 - y0) * (x1 - x0))
                        }
                        q += outW
                    }
                }
                count = total
            }
        }
        guard out.count == total else { throw NeuralNetError("avgPool2d: input \(describe(x.shape)) has no storage") }
        return Tensor(unchecked: [n, c, outH, outW], data: out)
    }

    /// PyTorch AdaptiveAvgPool2d (start = floor(i*H/out), end = ceil((i+1)*H/out)).
    ///
    /// Throws unless the input is 4-D with non-empty planes and both output sizes are at least 1.
    public static func adaptiveAvgPool2d(_ x: Tensor, outputH: Int, outputW: Int) throws(NeuralNetError) -> Tensor {
        let (n, c, h, w) = try x.nchw("adaptiveAvgPool2d")
        let limit = 1 << 30
        guard outputH >= 1, outputW >= 1, outputH <= limit, outputW <= limit else {
            throw NeuralNetError("adaptiveAvgPool2d: output size must be at least 1x1, found \(outputH)x\(outputW)")
        }
        guard h >= 1, w >= 1, h <= limit, w <= limit else {
            throw NeuralNetError("adaptiveAvgPool2d: input planes must be non-empty, found \(describe(x.shape))")
        }
        let planes = n * c
        let total = planes * outputH * outputW
        let out = [Float](unsafeUninitializedCapacity: total) { buffer, count in
            count = 0
            guard total > 0, let dst = buffer.baseAddress else { return }
            x.data.withUnsafeBufferPointer { input in
                guard let src = input.baseAddress else { return }
                var q = dst
                for plane in 0..<planes {
                    let p = src + plane * h * w
                    for oy in 0..<outputH {
                        let y0 = (oy * h) / outputH
                        let y1 = ((oy + 1) * h + outputH - 1) / outputH
                        for ox in 0..<outputW {
                            let x0 = (ox * w) / outputW
                            let x1 = ((ox + 1) * w + outputW - 1) / outputW
                            var sum: Float = 0
                            for y in y0..<y1 {
                                let row = p + y * w
                                for xx in x0..<x1 { sum += row[xx] }
                            }
                            q[ox] = sum / Float((y1 - y0) * (x1 - x0))
                        }
                        q += outputW
                    }
                }
                count = total
            }
        }
        guard out.count == total else {
            throw NeuralNetError("adaptiveAvgPool2d: input \(describe(x.shape)) has no storage")
        }
        return Tensor(unchecked: [n, c, outputH, outputW], data: out)
    }
}

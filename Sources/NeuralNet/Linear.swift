import CKernels

/// A fully connected layer with weight `[out, in]` and optional bias; input `[N, in]`, output `[N, out]`.
///
/// Forward is `y = x * W^T + b` computed by the engine's own threaded kernel (`ck_linear`), not by CBLAS:
/// OpenBLAS's worker thread keeps spinning after each call and would take CPU from the engine's workers
/// during the next layers. Each output is one dot product summed in a fixed order by one thread, so the
/// result depends neither on `Engine.threads` nor on the batch size.
public struct Linear: Sendable {
    /// Weights `[outFeatures, inFeatures]`, row-major (PyTorch's layout).
    public let weight: [Float]
    /// One value per output feature, or nil.
    public let bias: [Float]?
    /// Input features.
    public let inFeatures: Int
    /// Output features.
    public let outFeatures: Int

    /// Creates a linear layer, checking `weight.count == outFeatures * inFeatures` and `bias.count == outFeatures`.
    public init(weight: [Float], bias: [Float]?, inFeatures: Int, outFeatures: Int) throws(NeuralNetError) {
        guard inFeatures > 0, outFeatures > 0 else {
            throw NeuralNetError("linear: features must be positive, found in \(inFeatures), out \(outFeatures)")
        }
        try GEMM.check("linear", inFeatures, outFeatures)
        let (expected, overflow) = inFeatures.multipliedReportingOverflow(by: outFeatures)
        guard !overflow, weight.count == expected else {
            throw NeuralNetError(
                "linear: weight of shape [\(outFeatures), \(inFeatures)] needs \(overflow ? "too many" : String(expected)) values, found \(weight.count)"
            )
        }
        if let bias, bias.count != outFeatures {
            throw NeuralNetError("linear: bias needs \(outFeatures) values, found \(bias.count)")
        }
        self.weight = weight
        self.bias = bias
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
    }

    /// Runs the layer on raw buffers: `batch` rows of `inFeatures` floats at `input` (row stride
    /// `inFeatures`) into `batch` rows of `outFeatures` at `output`, then `max(y, 0)` if `activation` is
    /// ReLU. For model graphs with a memory plan (no allocation); the caller guarantees the sizes and that
    /// `batch` fits 32 bits.
    public func run(batch: Int, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, activation: Activation = .none) {
        guard batch > 0 else { return }
        weight.withUnsafeBufferPointer { w in
            withOptionalPointer(bias) { b in
                ck_linear(
                    input, Int32(truncatingIfNeeded: batch), Int32(truncatingIfNeeded: inFeatures), w.baseAddress!, b,
                    Int32(truncatingIfNeeded: outFeatures), output)
            }
        }
        if activation == .relu { Epilogue.relu(output, count: batch * outFeatures) }
    }

    /// `[N, inFeatures]` in, `[N, outFeatures]` out. Throws for any other input shape (flatten first).
    public func callAsFunction(_ x: Tensor) throws(NeuralNetError) -> Tensor {
        guard x.shape.count == 2, x.shape[1] == inFeatures else {
            throw NeuralNetError("linear: expected input [N, \(inFeatures)], found \(describe(x.shape))")
        }
        try x.checkStorage("linear")
        let n = x.shape[0]
        try GEMM.check("linear", n)
        let total = n * outFeatures
        let out = [Float](unsafeUninitializedCapacity: total) { buffer, count in
            count = 0
            guard total > 0, let dst = buffer.baseAddress else { return }
            x.data.withUnsafeBufferPointer { input in
                guard let src = input.baseAddress else { return }
                weight.withUnsafeBufferPointer { w in
                    guard let wBase = w.baseAddress else { return }
                    // Sizes fit Int32: `init` and the check above ran GEMM.check on each of them.
                    withOptionalPointer(bias) { b in
                        ck_linear(
                            src, Int32(truncatingIfNeeded: n), Int32(truncatingIfNeeded: inFeatures), wBase, b,
                            Int32(truncatingIfNeeded: outFeatures), dst)
                    }
                    count = total
                }
            }
        }
        guard out.count == total else {
            throw NeuralNetError("linear: input \(describe(x.shape)) has no storage")
        }
        return Tensor(unchecked: [n, outFeatures], data: out)
    }
}

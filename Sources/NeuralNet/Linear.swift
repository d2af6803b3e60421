/// A fully connected layer with weight `[out, in]` and optional bias; input `[N, in]`, output `[N, out]`.
///
/// Forward is one GEMM against the transposed weight (`y = x * W^T + b`), with the bias added in one pass.
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
                    GEMM.multiply(
                        m: n, n: outFeatures, k: inFeatures, a: src, lda: inFeatures,
                        b: wBase, ldb: inFeatures, transB: true, c: dst, ldc: outFeatures)
                    withOptionalPointer(bias) { b in
                        Epilogue.columns(dst, rows: n, rowLength: outFeatures, bias: b, activation: .none)
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

/// A float32 tensor in row-major order: NCHW for images, [N, F] for features.
///
/// Storage is one contiguous `[Float]` whose count equals the product of `shape`. Every op checks that
/// invariant on its inputs (it could be broken by assigning to `data`) and throws `NeuralNetError`
/// rather than reading out of bounds.
public struct Tensor: Sendable, Equatable {
    /// The extent of each dimension, outermost first (`[N, C, H, W]` for images).
    public let shape: [Int]
    /// The elements in row-major order; `data.count` must equal `count`.
    public var data: [Float]

    /// Wraps `data` as a tensor of the given shape.
    ///
    /// Throws if a dimension is negative or `data.count` is not the product of `shape`.
    public init(shape: [Int], data: [Float]) throws(NeuralNetError) {
        var product = 1
        for d in shape {
            guard d >= 0 else { throw NeuralNetError("tensor: negative dimension in shape \(describe(shape))") }
            let (p, overflow) = product.multipliedReportingOverflow(by: d)
            guard !overflow else { throw NeuralNetError("tensor: shape \(describe(shape)) has too many elements") }
            product = p
        }
        guard product == data.count else {
            throw NeuralNetError("tensor: shape \(describe(shape)) needs \(product) elements, found \(data.count)")
        }
        self.shape = shape
        self.data = data
    }

    /// A tensor of the given shape filled with zeros (a negative dimension is treated as 0).
    public init(zeros shape: [Int]) {
        let clamped = shape.map { Swift.max($0, 0) }
        self.shape = clamped
        self.data = [Float](repeating: 0, count: clamped.reduce(1, *))
    }

    /// Internal: wraps storage whose count the caller has already made equal to the shape's product.
    @inline(__always)
    init(unchecked shape: [Int], data: [Float]) {
        self.shape = shape
        self.data = data
    }

    /// The number of elements: the product of `shape` (1 for a scalar of shape `[]`).
    public var count: Int { shape.reduce(1, *) }

    /// The same elements under another shape with the same element count.
    public func reshaped(_ newShape: [Int]) throws(NeuralNetError) -> Tensor {
        try checkStorage("reshape")
        let t = try Tensor(shape: newShape, data: data)
        return t
    }
}

extension Tensor {
    /// Throws unless `data.count` equals the product of `shape`.
    @inline(__always)
    func checkStorage(_ op: String) throws(NeuralNetError) {
        guard data.count == count else {
            throw NeuralNetError("\(op): tensor of shape \(describe(shape)) holds \(data.count) elements, expected \(count)")
        }
    }

    /// The four dimensions of an NCHW tensor, after checking rank and storage.
    @inline(__always)
    func nchw(_ op: String) throws(NeuralNetError) -> (n: Int, c: Int, h: Int, w: Int) {
        guard shape.count == 4 else {
            throw NeuralNetError("\(op): expected an NCHW input [N, C, H, W], found \(describe(shape))")
        }
        try checkStorage(op)
        return (shape[0], shape[1], shape[2], shape[3])
    }
}

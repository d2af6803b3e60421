import CKernels

/// Element-wise and pooling operations on raw NCHW buffers, for model graphs that run on a memory plan.
///
/// Image `i` of a buffer starts at `base + i * imageStride`, so a source or destination may be a channel
/// slice of a larger tensor (DenseNet's block buffer). The work is split over `Engine.threads`. Sizes
/// are the caller's responsibility; nothing is checked.
public enum RawOps {
    /// PyTorch `MaxPool2d(kernel, stride, padding)` (floor mode; -inf padding; NaN propagates).
    public static func maxPool(
        _ input: UnsafePointer<Float>, inputImageStride: Int, output: UnsafeMutablePointer<Float>,
        outputImageStride: Int, images: Int, channels: Int, height: Int, width: Int, outHeight: Int,
        outWidth: Int, kernel: Int, stride: Int, padding: Int
    ) {
        ck_max_pool(
            input, inputImageStride, output, outputImageStride, Int32(images), Int32(channels), Int32(height),
            Int32(width), Int32(outHeight), Int32(outWidth), Int32(kernel), Int32(stride), Int32(padding))
    }

    /// `AvgPool2d(2, 2)` (no padding; the last row / column of an odd size is dropped).
    public static func avgPool2x2(
        _ input: UnsafePointer<Float>, inputImageStride: Int, output: UnsafeMutablePointer<Float>,
        outputImageStride: Int, images: Int, channels: Int, height: Int, width: Int
    ) {
        ck_avg_pool_2x2(
            input, inputImageStride, output, outputImageStride, Int32(images), Int32(channels), Int32(height),
            Int32(width), Int32(height / 2), Int32(width / 2))
    }

    /// `AvgPool2d(2, 2)` of `max(x * scale[c] + shift[c], 0)`: a batch norm, ReLU and pool in one pass.
    public static func affineReLUAvgPool2x2(
        _ input: UnsafePointer<Float>, inputImageStride: Int, output: UnsafeMutablePointer<Float>,
        outputImageStride: Int, images: Int, channels: Int, height: Int, width: Int,
        scale: UnsafePointer<Float>, shift: UnsafePointer<Float>
    ) {
        ck_affine_relu_avg_pool_2x2(
            input, inputImageStride, output, outputImageStride, Int32(images), Int32(channels), Int32(height),
            Int32(width), scale, shift)
    }

    /// `output[i, c, :] = act(input[i, c, :] * scale[c] + shift[c])` (a batch norm in inference form).
    public static func affineChannels(
        _ input: UnsafePointer<Float>, inputImageStride: Int, output: UnsafeMutablePointer<Float>,
        outputImageStride: Int, images: Int, channels: Int, plane: Int, scale: UnsafePointer<Float>,
        shift: UnsafePointer<Float>, activation: Activation
    ) {
        ck_affine_channels(
            input, inputImageStride, output, outputImageStride, Int32(images), Int32(channels), plane, scale, shift,
            activation == .relu ? 1 : 0)
    }

    /// `output[i * channels + c]` = mean over the plane of `act(x * scale[c] + shift[c])`, or of `x` when
    /// `scale` is nil (global average pooling, optionally after a batch norm and ReLU).
    public static func globalAvgPool(
        _ input: UnsafePointer<Float>, inputImageStride: Int, output: UnsafeMutablePointer<Float>, images: Int,
        channels: Int, plane: Int, scale: UnsafePointer<Float>? = nil, shift: UnsafePointer<Float>? = nil,
        activation: Activation = .none
    ) {
        ck_global_avg_pool(
            input, inputImageStride, output, Int32(images), Int32(channels), plane, scale, shift,
            activation == .relu ? 1 : 0)
    }

    /// `x[i, c, :] = act(x[i, c, :] * gate[i * channels + c] + residual[i, c, :])` over contiguous
    /// `[images, channels, plane]` buffers (squeeze-and-excitation's scaling and the block's addition).
    public static func scaleChannels(
        _ x: UnsafeMutablePointer<Float>, gates: UnsafePointer<Float>, residual: UnsafePointer<Float>?, images: Int,
        channels: Int, plane: Int, activation: Activation
    ) {
        ck_scale_channels(x, gates, residual, Int32(images), Int32(channels), plane, activation == .relu ? 1 : 0)
    }

    /// `output[i] = act(a[i] + b[i])` for `count` floats (output may be a or b).
    public static func add(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, count: Int,
        activation: Activation
    ) {
        ck_add(a, b, output, count, activation == .relu ? 1 : 0)
    }
}

/// A 64-byte aligned float buffer that grows on demand and keeps its memory between uses (the storage of
/// a memory plan's slot). Growing discards the contents. Not thread-safe: one owner at a time.
public final class ScratchBuffer: @unchecked Sendable {
    private var storage: AlignedFloats?

    /// An empty buffer.
    public init() {}

    /// The buffer's memory with room for at least `count` floats (contents undefined after growth).
    public func pointer(count: Int) -> UnsafeMutablePointer<Float> {
        if let s = storage, s.count >= count { return s.pointer }
        storage = nil
        let s = AlignedFloats(count: max(count, 16))
        storage = s
        return s.pointer
    }

    /// Floats currently allocated.
    public var capacity: Int { storage?.count ?? 0 }
}

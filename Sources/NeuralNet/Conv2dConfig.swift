/// Geometry of a 2-D convolution (PyTorch's `Conv2d` arguments).
public struct Conv2dConfig: Sendable, Equatable {
    /// Input channels (`C_in`).
    public var inChannels: Int
    /// Output channels (`C_out`).
    public var outChannels: Int
    /// Kernel height.
    public var kernelH: Int
    /// Kernel width.
    public var kernelW: Int
    /// Vertical stride.
    public var strideH: Int = 1
    /// Horizontal stride.
    public var strideW: Int = 1
    /// Zero padding added above and below.
    public var padH: Int = 0
    /// Zero padding added left and right.
    public var padW: Int = 0
    /// Vertical spacing between kernel taps.
    public var dilationH: Int = 1
    /// Horizontal spacing between kernel taps.
    public var dilationW: Int = 1
    /// Number of channel groups; both channel counts must be divisible by it.
    public var groups: Int = 1

    /// A square-kernel configuration with equal stride, padding and dilation in both directions.
    public init(
        inChannels: Int, outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0, dilation: Int = 1,
        groups: Int = 1
    ) {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelH = kernel
        self.kernelW = kernel
        self.strideH = stride
        self.strideW = stride
        self.padH = padding
        self.padW = padding
        self.dilationH = dilation
        self.dilationW = dilation
        self.groups = groups
    }

    /// Input channels per group.
    public var inChannelsPerGroup: Int { groups > 0 ? inChannels / groups : 0 }

    /// Output channels per group.
    public var outChannelsPerGroup: Int { groups > 0 ? outChannels / groups : 0 }

    /// The weight shape `[outChannels, inChannels / groups, kernelH, kernelW]` (PyTorch's OIHW).
    public var weightShape: [Int] { [outChannels, inChannelsPerGroup, kernelH, kernelW] }

    /// Throws unless every field is in range: positive channels, kernel, stride, dilation and groups,
    /// non-negative padding, and channel counts divisible by `groups`.
    public func validate() throws(NeuralNetError) {
        guard inChannels > 0, outChannels > 0 else {
            throw NeuralNetError("conv2d: channels must be positive, found in \(inChannels), out \(outChannels)")
        }
        guard kernelH > 0, kernelW > 0 else {
            throw NeuralNetError("conv2d: kernel must be positive, found \(kernelH)x\(kernelW)")
        }
        guard strideH > 0, strideW > 0 else {
            throw NeuralNetError("conv2d: stride must be positive, found \(strideH)x\(strideW)")
        }
        guard dilationH > 0, dilationW > 0 else {
            throw NeuralNetError("conv2d: dilation must be positive, found \(dilationH)x\(dilationW)")
        }
        guard padH >= 0, padW >= 0 else {
            throw NeuralNetError("conv2d: padding must be non-negative, found \(padH)x\(padW)")
        }
        guard groups > 0, inChannels % groups == 0, outChannels % groups == 0 else {
            throw NeuralNetError(
                "conv2d: groups \(groups) must be positive and divide in channels \(inChannels) and out channels \(outChannels)"
            )
        }
        // Bound sizes so that index arithmetic cannot overflow.
        let limit = 1 << 24
        guard kernelH <= limit, kernelW <= limit, strideH <= limit, strideW <= limit, dilationH <= limit,
            dilationW <= limit, padH <= limit, padW <= limit, inChannels <= limit, outChannels <= limit
        else {
            throw NeuralNetError("conv2d: a configuration value exceeds \(limit)")
        }
    }

    /// Output spatial size for an input of `h` x `w` (PyTorch's formula); throws if it would be < 1.
    ///
    /// `out = floor((in + 2 * pad - dilation * (kernel - 1) - 1) / stride) + 1` per dimension.
    public func outputSize(h: Int, w: Int) throws(NeuralNetError) -> (h: Int, w: Int) {
        try validate()
        let limit = 1 << 30
        guard h >= 1, w >= 1, h <= limit, w <= limit else {
            throw NeuralNetError("conv2d: input size \(h)x\(w) out of range")
        }
        let spanH = dilationH * (kernelH - 1) + 1
        let spanW = dilationW * (kernelW - 1) + 1
        let numH = h + 2 * padH - spanH
        let numW = w + 2 * padW - spanW
        guard numH >= 0, numW >= 0 else {
            throw NeuralNetError(
                "conv2d: input \(h)x\(w) with padding \(padH)x\(padW) is smaller than the dilated kernel \(spanH)x\(spanW); output would be empty"
            )
        }
        return (numH / strideH + 1, numW / strideW + 1)
    }
}

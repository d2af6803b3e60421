/// Resampling filters, with the meaning PIL gives them (torchvision's `InterpolationMode` on PIL images).
public enum Interpolation: String, Sendable, Equatable, CaseIterable, Codable {
    /// Nearest neighbour (PIL `NEAREST`; what `keras.utils.load_img` uses by default).
    case nearest
    /// Triangle filter scaled by the reduction factor, i.e. antialiased bilinear (PIL `BILINEAR`;
    /// torchvision's default for every ResNet/DenseNet weight).
    case bilinear
    /// Cubic convolution with a = -0.5, scaled by the reduction factor (PIL `BICUBIC`).
    case bicubic

    /// Half-width of the filter at scale 1.
    var support: Double {
        switch self {
        case .nearest: return 0.5
        case .bilinear: return 1
        case .bicubic: return 2
        }
    }

    /// The filter's weight at distance `x` (in source pixels at scale 1).
    @inline(__always)
    func weight(_ x: Double) -> Double {
        let t = abs(x)
        switch self {
        case .nearest:
            return t < 0.5 ? 1 : 0
        case .bilinear:
            return t < 1 ? 1 - t : 0
        case .bicubic:
            let a = -0.5
            if t < 1 { return ((a + 2) * t - (a + 3)) * t * t + 1 }
            if t < 2 { return (((t - 5) * t + 8) * t - 4) * a }
            return 0
        }
    }
}

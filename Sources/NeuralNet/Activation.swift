/// Element-wise activation fused into a layer's output.
public enum Activation: Sendable, Equatable {
    /// Identity: the output is left as computed.
    case none
    /// `max(x, 0)`, as `torch.relu` computes it (NaN stays NaN).
    case relu
}

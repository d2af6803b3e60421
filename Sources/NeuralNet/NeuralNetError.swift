/// The one error type of the NeuralNet module: a shape or parameter that does not fit.
///
/// The message names the operation or layer and what was expected versus found, and the error prints
/// like a compiler diagnostic: `error: conv2d: expected input [N, 64, H, W], found [1, 3, 224, 224]`.
public struct NeuralNetError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What was wrong, naming the layer and the expected and found shapes.
    public var message: String

    /// Creates an error with the given message (which should name the op and the shapes involved).
    public init(_ message: String) { self.message = message }

    /// The message prefixed with `error: `.
    public var description: String { "error: \(message)" }
}

/// Formats a shape the way error messages show it: `[1, 3, 224, 224]`.
@inline(__always)
func describe(_ shape: [Int]) -> String {
    "[" + shape.map(String.init).joined(separator: ", ") + "]"
}

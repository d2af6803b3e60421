import Checkpoint
import NeuralNet

/// The one error type of the VisionModels module.
public struct ModelError: Error, Sendable, CustomStringConvertible {
    /// What class of problem this is.
    public enum Kind: String, Sendable, Equatable {
        /// The checkpoint could not be read (see `checkpointError`).
        case checkpoint
        /// The weights do not fit the architecture (see `report`).
        case incompatibleWeights
        /// The checkpoint's names show another flavor of the architecture, which computes differently.
        case flavorMismatch
        /// An input or intermediate shape does not fit the graph.
        case shape
        /// The architecture's configuration is not valid.
        case invalidConfiguration
    }

    public var kind: Kind
    public var message: String
    /// The load report, for `.incompatibleWeights`.
    public var report: LoadReport?
    /// The reader's error, for `.checkpoint`.
    public var checkpointError: CheckpointError?

    public init(_ kind: Kind, _ message: String, report: LoadReport? = nil, checkpointError: CheckpointError? = nil) {
        self.kind = kind
        self.message = message
        self.report = report
        self.checkpointError = checkpointError
    }

    init(_ error: CheckpointError) {
        self.init(.checkpoint, error.description, checkpointError: error)
    }

    init(_ error: NeuralNetError, _ context: String) {
        self.init(.shape, "\(context): \(error.message)")
    }

    public var description: String {
        if kind == .checkpoint { return message }
        var s = "error: \(kind.rawValue): \(message)"
        if let report { s += "\n" + report.description }
        return s
    }
}

import Checkpoint
import Foundation

/// Where a model's weights come from.
public enum PretrainedSource: Sendable {
    /// A checkpoint file in any format the Checkpoint module reads.
    case file(URL)
    /// A state dict already in memory.
    case stateDict(StateDict)

    /// Reads the state dict this source names, for `architecture`.
    func stateDict(for architecture: Architecture, options: LoadOptions) throws(ModelError) -> StateDict {
        switch self {
        case .file(let url):
            do throws(CheckpointError) {
                return try CheckpointReader.read(url.path, options: options.readOptions)
            } catch {
                throw ModelError(error)
            }
        case .stateDict(let s):
            return s
        }
    }
}

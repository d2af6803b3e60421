/// The one error type of the Checkpoint module.
///
/// Every failure on a user's file is reported with the file, the byte offset (or zip member / key)
/// where it was found, and what was expected versus found. It prints like a compiler diagnostic:
/// `model.pth:1234: error: truncated: storage 'data/3' needs 4096 bytes, 100 present`.
public struct CheckpointError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What class of problem this is; tests and callers switch on it.
    public enum Kind: String, Sendable, Equatable, CaseIterable {
        /// The file could not be opened, mapped or written.
        case io
        /// The first bytes match no supported checkpoint format.
        case unknownFormat
        /// The data ends before a structure it declares is complete.
        case truncated
        /// A structure is present but inconsistent (bad magic, bad offsets, wrong types).
        case malformed
        /// The file is well formed but uses a feature this reader does not convert.
        case unsupported
        /// The pickle names a global (callable or class) that is not on the allow-list.
        case disallowedGlobal
        /// A safety cap (memo size, nesting depth, object count, integer length, size) was exceeded.
        case limitExceeded
        /// A checksum (CRC-32, SHA-256) or a declared size did not match the data.
        case integrity
        /// The file is a TorchScript archive and cannot be read as a plain checkpoint.
        case torchScript
        /// No state dict could be found inside the loaded object.
        case noStateDict
    }

    /// What class of problem this is.
    public var kind: Kind
    /// The file the problem was found in (set by the top-level reader), if any.
    public var file: String?
    /// The byte offset of the problem, relative to the innermost record named by `member`, if known.
    public var offset: Int?
    /// The zip member, tar member or key where the problem was found, if any.
    public var member: String?
    /// What was wrong: what was expected and what was found.
    public var message: String

    /// Creates an error.
    public init(_ kind: Kind, _ message: String, offset: Int? = nil, member: String? = nil, file: String? = nil) {
        self.kind = kind
        self.message = message
        self.offset = offset
        self.member = member
        self.file = file
    }

    /// A one-line diagnostic: `file[:member][@offset]: error: kind: message`.
    public var description: String {
        var location = file ?? "<input>"
        if let member { location += "[\(member)]" }
        if let offset { location += ":\(offset)" }
        return "\(location): error: \(kind.rawValue): \(message)"
    }

    /// Returns a copy that names `file`, keeping any file already set.
    func inFile(_ path: String) -> CheckpointError {
        var copy = self
        if copy.file == nil { copy.file = path }
        return copy
    }

    /// Returns a copy that names `member`, keeping any member already set.
    func inMember(_ name: String) -> CheckpointError {
        var copy = self
        if copy.member == nil { copy.member = name }
        return copy
    }
}

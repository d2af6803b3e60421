/// The one error type of the VisionData module.
///
/// It names the file (or data set member), what was expected and what was found, and prints like a
/// compiler diagnostic: `cat.jpg: error: truncated: the JPEG data ends before the image is complete`.
public struct VisionDataError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What class of problem this is; tests and callers switch on it.
    public enum Kind: String, Sendable, Equatable, CaseIterable {
        /// A file could not be opened or read.
        case io
        /// The bytes are not an image of a format this module decodes (by their signature).
        case unknownFormat
        /// The data ends before the structure it declares is complete.
        case truncated
        /// The data is present but invalid (a corrupt JPEG, a bad PNG chunk, an inconsistent data set file).
        case malformed
        /// Valid data that uses a feature this module does not handle.
        case unsupported
        /// A size exceeds a safety cap (pixels of an image, records of a data set).
        case limitExceeded
        /// An argument is out of range (a crop of negative size, a zero batch size, a std of zero...).
        case invalidArgument
    }

    /// What class of problem this is.
    public var kind: Kind
    /// The file or data set member the problem was found in, if any.
    public var file: String?
    /// The byte offset of the problem, if known.
    public var offset: Int?
    /// What was wrong: what was expected and what was found.
    public var message: String

    /// Creates an error.
    public init(_ kind: Kind, _ message: String, file: String? = nil, offset: Int? = nil) {
        self.kind = kind
        self.message = message
        self.file = file
        self.offset = offset
    }

    /// A one-line diagnostic: `file[:offset]: error: kind: message`.
    public var description: String {
        var location = file ?? "<input>"
        if let offset { location += ":\(offset)" }
        return "\(location): error: \(kind.rawValue): \(message)"
    }

    /// A copy that names `file`, keeping a file already set.
    func inFile(_ name: String) -> VisionDataError {
        var copy = self
        if copy.file == nil { copy.file = name }
        return copy
    }
}

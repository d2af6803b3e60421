import Foundation

/// Writing diagnostics to standard error.
enum StandardError {
    /// Writes `line` and a newline to standard error.
    static func print(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}

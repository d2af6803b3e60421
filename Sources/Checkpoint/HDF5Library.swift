import CHDF5
import Foundation

/// The one door to libhdf5. Debian's libhdf5 is the serial build, which is not thread-safe: every
/// call into it, from any reader or writer, runs inside `HDF5Library.locked`, one at a time.
/// HDF5's own printing of its error stack is switched off once; failures become `CheckpointError`s
/// that carry the most specific message of HDF5's error stack.
enum HDF5Library {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var initialised = false

    /// Runs `body` holding the library lock (re-entry from the same thread is not allowed).
    static func locked<T>(_ body: () throws(CheckpointError) -> T) throws(CheckpointError) -> T {
        lock.lock()
        defer { lock.unlock() }
        if !initialised {
            _ = H5open()
            initialised = true
        }
        // Per calling thread when libhdf5 is built thread-safe, so on every entry.
        _ = chdf5_silence_errors()
        return try body()
    }

    /// The most specific message on HDF5's error stack (and clears it); empty if none.
    static func lastError() -> String {
        var text = chdf5_error_text()
        chdf5_last_error(&text)
        return withUnsafeBytes(of: &text.text) { raw in
            let bytes = raw.prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    /// An error for a failed HDF5 call: `what` failed, with HDF5's own reason appended.
    static func failure(_ what: String, kind: CheckpointError.Kind = .malformed, member: String? = nil) -> CheckpointError {
        let reason = lastError()
        return CheckpointError(kind, reason.isEmpty ? what : "\(what) (HDF5: \(reason))", member: member)
    }
}

/// An HDF5 identifier closed when the value goes away. Only used inside `HDF5Library.locked`.
final class HDF5Handle {
    let id: hid_t
    private let close: (hid_t) -> herr_t

    init(_ id: hid_t, close: @escaping (hid_t) -> herr_t) {
        self.id = id
        self.close = close
    }

    /// Wraps `id`, or throws `failure` naming `what` when the call that made it failed (negative id).
    static func check(_ id: hid_t, _ what: @autoclosure () -> String, member: String? = nil, close: @escaping (hid_t) -> herr_t)
        throws(CheckpointError) -> HDF5Handle
    {
        guard id >= 0 else { throw HDF5Library.failure(what(), member: member) }
        return HDF5Handle(id, close: close)
    }

    deinit { _ = close(id) }
}

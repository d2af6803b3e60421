#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import Foundation

/// A file written all at once or not at all.
///
/// Bytes go to a temporary file in the target's folder (same file system, so the final step is a
/// rename, never a copy). On Linux that file is anonymous (`O_TMPFILE`): until `commit()` links it in,
/// it has no name, so a process killed at any moment — even by SIGKILL — leaves nothing behind. Where
/// `O_TMPFILE` is unavailable a hidden `.<name>.tmp-<pid>-<random>` file is used and removed on every
/// failure path. `commit()` flushes the data to disk, then links the file under the target name; an
/// existing target is replaced only with `overwrite`, and then by an atomic rename, so readers see
/// the old file or the new one, never a mix.
public final class AtomicFile {
    /// The path the file appears at after `commit()`.
    public let path: String
    /// Whether an existing file at `path` may be replaced.
    public let overwrite: Bool
    /// Bytes written so far.
    public private(set) var bytesWritten: Int = 0

    private var fd: Int32
    private let directory: String
    /// The visible temporary name (fallback mode), nil when the file is anonymous.
    private var temporaryPath: String?
    private var finished = false

    /// Opens a temporary file beside `path`. Fails at once (writing nothing) if `path` exists and
    /// `overwrite` is false, or if its folder cannot be written.
    public init(path: String, overwrite: Bool) throws(CheckpointError) {
        self.path = path
        self.overwrite = overwrite
        let url = URL(fileURLWithPath: path)
        directory = url.deletingLastPathComponent().path
        if !overwrite, Self.exists(path) {
            throw CheckpointError(.io, "already exists; refusing to overwrite it (use --force to replace it)", file: path)
        }
        var descriptor: Int32 = -1
        #if os(Linux)
            // O_TMPFILE (= __O_TMPFILE | O_DIRECTORY): an unnamed inode in `directory`.
            let oTmpfile: Int32 = 0o20000000 | O_DIRECTORY
            descriptor = open(directory, oTmpfile | O_WRONLY | O_CLOEXEC, 0o644)
        #endif
        if descriptor < 0 {
            var generator = SystemRandomNumberGenerator()
            let name = ".\(url.lastPathComponent).tmp-\(getpid())-\(String(generator.next() as UInt32, radix: 16))"
            let temp = URL(fileURLWithPath: directory).appendingPathComponent(name).path
            descriptor = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            guard descriptor >= 0 else {
                throw CheckpointError(
                    .io, "cannot create a temporary file in \(directory): \(String(cString: strerror(errno)))", file: path)
            }
            temporaryPath = temp
            // Honour the umask as a plain create would.
            let mask = umask(0)
            umask(mask)
            fchmod(descriptor, 0o644 & ~mask)
        } else {
            let mask = umask(0)
            umask(mask)
            fchmod(descriptor, 0o644 & ~mask)
        }
        fd = descriptor
    }

    deinit {
        if !finished { abandon() }
    }

    /// Appends bytes.
    public func write(_ bytes: UnsafeRawBufferPointer) throws(CheckpointError) {
        guard !finished else { throw CheckpointError(.io, "write after commit or abandon", file: path) }
        guard var p = bytes.baseAddress else { return }
        var left = bytes.count
        while left > 0 {
            #if canImport(Glibc)
                let n = Glibc.write(fd, p, min(left, 1 << 30))
            #else
                let n = Darwin.write(fd, p, min(left, 1 << 30))
            #endif
            if n < 0 {
                if errno == EINTR { continue }
                let reason = String(cString: strerror(errno))
                abandon()
                throw CheckpointError(.io, "cannot write: \(reason)", file: path)
            }
            p += n
            left -= n
            bytesWritten += n
        }
    }

    /// Appends bytes.
    public func write(_ bytes: [UInt8]) throws(CheckpointError) {
        try withRawBytes(bytes) { (raw) throws(CheckpointError) in try write(raw) }
    }

    /// Flushes to disk and makes the file appear at `path` in one step.
    public func commit() throws(CheckpointError) {
        guard !finished else { throw CheckpointError(.io, "commit after commit or abandon", file: path) }
        guard fsync(fd) == 0 else {
            let reason = String(cString: strerror(errno))
            abandon()
            throw CheckpointError(.io, "cannot flush to disk: \(reason)", file: path)
        }
        if let temp = temporaryPath {
            if overwrite {
                guard rename(temp, path) == 0 else { try fail("cannot rename the temporary file into place") }
            } else {
                // link() refuses an existing target, so a file created meanwhile is never replaced.
                guard link(temp, path) == 0 else {
                    try fail(
                        errno == EEXIST
                            ? "already exists; refusing to overwrite it (use --force to replace it)"
                            : "cannot link the temporary file into place")
                }
                unlink(temp)
            }
        } else {
            let procPath = "/proc/self/fd/\(fd)"
            if overwrite {
                // Give the anonymous file a hidden name, then rename it over the target.
                var generator = SystemRandomNumberGenerator()
                let temp = URL(fileURLWithPath: directory).appendingPathComponent(
                    ".\(URL(fileURLWithPath: path).lastPathComponent).tmp-\(getpid())-\(String(generator.next() as UInt32, radix: 16))"
                ).path
                guard linkat(AT_FDCWD, procPath, AT_FDCWD, temp, AT_SYMLINK_FOLLOW) == 0 else { try fail("cannot link the temporary file") }
                temporaryPath = temp
                guard rename(temp, path) == 0 else { try fail("cannot rename the temporary file into place") }
                temporaryPath = nil
            } else {
                guard linkat(AT_FDCWD, procPath, AT_FDCWD, path, AT_SYMLINK_FOLLOW) == 0 else {
                    try fail(
                        errno == EEXIST
                            ? "already exists; refusing to overwrite it (use --force to replace it)" : "cannot link the file into place")
                }
            }
        }
        finished = true
        close(fd)
        fd = -1
        // Make the new name durable too.
        let dirfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirfd >= 0 {
            fsync(dirfd)
            close(dirfd)
        }
    }

    private func fail(_ what: String) throws(CheckpointError) -> Never {
        let reason = String(cString: strerror(errno))
        abandon()
        throw CheckpointError(.io, "\(what): \(reason)", file: path)
    }

    /// Discards everything written; nothing appears at `path`.
    public func abandon() {
        guard !finished else { return }
        finished = true
        if fd >= 0 { close(fd) }
        fd = -1
        if let temp = temporaryPath { unlink(temp) }
    }

    static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }
}

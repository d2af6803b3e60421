#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// An immutable block of bytes: a read-only memory map of a file, or memory this module allocated.
///
/// The one owner of a mapping; it unmaps (or frees) when the last reference goes away. Views into it
/// (`ByteSlice`) keep it alive, so a tensor read from a stored zip record is a zero-copy window into the
/// mapped file for as long as the tensor lives.
public final class ByteBuffer: @unchecked Sendable {
    /// First byte. Never written through after initialisation.
    public let base: UnsafeRawPointer
    /// Number of bytes.
    public let count: Int
    private let isMapped: Bool

    /// Maps `path` read-only. An empty file gives an empty buffer.
    public init(mapping path: String) throws(CheckpointError) {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            throw CheckpointError(.io, "cannot open: \(String(cString: strerror(errno)))", file: path)
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw CheckpointError(.io, "cannot stat: \(String(cString: strerror(errno)))", file: path)
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw CheckpointError(.io, "not a regular file", file: path)
        }
        let size = Int(info.st_size)
        if size == 0 {
            base = UnsafeRawPointer(UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 64))
            count = 0
            isMapped = false
            return
        }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw CheckpointError(.io, "cannot map \(size) bytes: \(String(cString: strerror(errno)))", file: path)
        }
        base = UnsafeRawPointer(p)
        count = size
        isMapped = true
    }

    /// Takes ownership of `count` bytes at `pointer`, which must come from
    /// `UnsafeMutableRawPointer.allocate(byteCount:alignment:)`.
    init(adopting pointer: UnsafeMutableRawPointer, count: Int) {
        base = UnsafeRawPointer(pointer)
        self.count = count
        isMapped = false
    }

    /// Copies `bytes` into a new, 64-byte aligned buffer.
    public convenience init(copying bytes: some Collection<UInt8>) {
        let n = bytes.count
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(n, 1), alignment: 64)
        var i = 0
        for b in bytes {
            p.storeBytes(of: b, toByteOffset: i, as: UInt8.self)
            i += 1
        }
        self.init(adopting: p, count: n)
    }

    /// Copies raw bytes into a new, 64-byte aligned buffer (one memcpy).
    public convenience init(copying raw: UnsafeRawBufferPointer) {
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(raw.count, 1), alignment: 64)
        if let base = raw.baseAddress, raw.count > 0 { p.copyMemory(from: base, byteCount: raw.count) }
        self.init(adopting: p, count: raw.count)
    }

    deinit {
        if isMapped {
            munmap(UnsafeMutableRawPointer(mutating: base), count)
        } else {
            UnsafeMutableRawPointer(mutating: base).deallocate()
        }
    }

    /// The whole buffer as a slice.
    public var all: ByteSlice { ByteSlice(buffer: self, offset: 0, count: count) }
}

/// A window `[offset, offset + count)` into a `ByteBuffer`. Creating one never copies.
public struct ByteSlice: Sendable {
    /// The buffer this window looks into; kept alive by the slice.
    public let buffer: ByteBuffer
    /// Start of the window in the buffer.
    public let offset: Int
    /// Length of the window.
    public let count: Int

    /// Creates a window; callers check bounds with `slice(_:_:)`.
    init(buffer: ByteBuffer, offset: Int, count: Int) {
        self.buffer = buffer
        self.offset = offset
        self.count = count
    }

    /// Pointer to the first byte of the window.
    public var base: UnsafeRawPointer { buffer.base + offset }

    /// The window as a raw buffer pointer, valid while `self` (and so the buffer) is alive.
    public var raw: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    /// A sub-window, bounds-checked (no overflow, no reading past the end).
    public func slice(_ start: Int, _ length: Int) throws(CheckpointError) -> ByteSlice {
        guard start >= 0, length >= 0, start <= count, length <= count - start else {
            throw CheckpointError(.truncated, "need bytes [\(start), \(start) + \(length)) but only \(count) are present", offset: start)
        }
        return ByteSlice(buffer: buffer, offset: offset + start, count: length)
    }

    /// Copies the window into an array.
    public var bytes: [UInt8] { Array(raw) }

    /// The byte at `index` (bounds-checked by the caller).
    @inline(__always) subscript(index: Int) -> UInt8 { base.load(fromByteOffset: index, as: UInt8.self) }
}

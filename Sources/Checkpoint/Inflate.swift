import CZlib

/// zlib helpers for zip members: raw-deflate decompression into a buffer of a known size, and CRC-32.
///
/// Both walk their input in chunks of at most 1 GiB, because zlib counts bytes in 32-bit `uInt`s.
/// Errors carry the offset within the compressed input and no member name; callers add the member
/// with `CheckpointError.inMember(_:)`.
enum Inflate {
    /// Largest chunk handed to zlib in one call (zlib's `uInt` is 32 bits).
    static let chunk = 1 << 30

    /// Inflates the raw deflate stream (no zlib or gzip wrapper, `windowBits = -15`) in `compressed`
    /// into a new buffer of exactly `expectedSize` bytes.
    ///
    /// Never allocates more than `expectedSize + 1` bytes, so a stream that inflates to more than it
    /// declares (a zip bomb) costs no more memory than the declared size: the extra byte is a probe
    /// that detects output beyond the declared size.
    ///
    /// - Throws: `.integrity` if the stream inflates to more or fewer than `expectedSize` bytes,
    ///   `.truncated` if the compressed bytes end before the stream does, `.malformed` for invalid
    ///   deflate data, `.limitExceeded` if zlib or the allocator runs out of memory.
    static func raw(_ compressed: ByteSlice, expectedSize: Int) throws(CheckpointError) -> ByteBuffer {
        guard expectedSize >= 0 else {
            throw CheckpointError(.malformed, "negative uncompressed size \(expectedSize)")
        }
        let (allocation, overflow) = expectedSize.addingReportingOverflow(1)
        guard !overflow else {
            throw CheckpointError(.limitExceeded, "uncompressed size \(expectedSize) is too large")
        }
        let out = UnsafeMutableRawPointer.allocate(byteCount: allocation, alignment: 64)
        var adopted = false
        defer { if !adopted { out.deallocate() } }

        var stream = z_stream()
        let initStatus = inflateInit2_(&stream, -15, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard initStatus == Z_OK else {
            throw CheckpointError(.limitExceeded, "cannot start zlib inflate (status \(initStatus))")
        }
        defer { inflateEnd(&stream) }

        let input = compressed.base
        let inCount = compressed.count
        let outBytes = out.assumingMemoryBound(to: Bytef.self)
        var consumed = 0
        var produced = 0
        stream.avail_in = 0
        stream.avail_out = 0

        while true {
            if stream.avail_in == 0, consumed < inCount {
                let n = min(inCount - consumed, chunk)
                stream.next_in = UnsafeMutablePointer(mutating: (input + consumed).assumingMemoryBound(to: Bytef.self))
                stream.avail_in = uInt(n)
            }
            // Once the declared size is produced, offer only the one-byte probe after it.
            let probing = produced == expectedSize
            if probing {
                stream.next_out = outBytes + expectedSize
                stream.avail_out = 1
            } else if stream.avail_out == 0 {
                let n = min(expectedSize - produced, chunk)
                stream.next_out = outBytes + produced
                stream.avail_out = uInt(n)
            }
            let inBefore = Int(stream.avail_in)
            let outBefore = Int(stream.avail_out)
            let status = CZlib.inflate(&stream, Z_NO_FLUSH)
            consumed += inBefore - Int(stream.avail_in)
            let wrote = outBefore - Int(stream.avail_out)
            if probing {
                if wrote > 0 {
                    throw CheckpointError(
                        .integrity,
                        "deflate stream inflates to more than the declared \(expectedSize) bytes",
                        offset: consumed)
                }
                stream.avail_out = 0
            } else {
                produced += wrote
            }
            switch status {
            case Z_STREAM_END:
                guard produced == expectedSize else {
                    throw CheckpointError(
                        .integrity,
                        "deflate stream inflates to \(produced) bytes but \(expectedSize) are declared",
                        offset: consumed)
                }
                adopted = true
                return ByteBuffer(adopting: out, count: expectedSize)
            case Z_OK:
                if inBefore == Int(stream.avail_in), wrote == 0, consumed == inCount {
                    throw CheckpointError(
                        .truncated,
                        "compressed data (\(inCount) bytes) ends before the deflate stream does",
                        offset: consumed)
                }
            case Z_BUF_ERROR:
                throw CheckpointError(
                    .truncated,
                    "compressed data (\(inCount) bytes) ends before the deflate stream does",
                    offset: consumed)
            case Z_MEM_ERROR:
                throw CheckpointError(.limitExceeded, "zlib ran out of memory while inflating", offset: consumed)
            default:
                let detail = stream.msg.map { String(cString: $0) } ?? "status \(status)"
                throw CheckpointError(.malformed, "invalid deflate data: \(detail)", offset: consumed)
            }
        }
    }

    /// The CRC-32 (ISO-HDLC, as in zip and gzip) of `data` (zlib's value; carry-less multiplication
    /// folding where the CPU has it, about 10x zlib's speed).
    static func crc32(_ data: ByteSlice) -> UInt32 {
        guard data.count > 0 else { return 0 }
        return UInt32(truncatingIfNeeded: pv_crc32(0, data.base.assumingMemoryBound(to: UInt8.self), data.count))
    }
}

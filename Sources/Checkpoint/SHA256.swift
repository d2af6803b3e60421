/// SHA-256 as specified in FIPS 180-4, written for this package so that provenance hashes and
/// torch hub file-name checks need no external library.
///
/// Feed bytes with `update(_:)` as many times as needed, then call `finalize()` once:
///
/// ```swift
/// var hasher = SHA256()
/// hasher.update(chunk1)
/// hasher.update(chunk2)
/// let digest = hasher.finalize()      // 32 bytes
/// print(SHA256.hex(digest))
/// ```
///
/// Whole 64-byte blocks are compressed straight from the caller's memory; only a trailing partial
/// block is copied.
public struct SHA256: Sendable {
    /// The chaining state H0...H7.
    private var h0: UInt32 = 0x6a09_e667
    private var h1: UInt32 = 0xbb67_ae85
    private var h2: UInt32 = 0x3c6e_f372
    private var h3: UInt32 = 0xa54f_f53a
    private var h4: UInt32 = 0x510e_527f
    private var h5: UInt32 = 0x9b05_688c
    private var h6: UInt32 = 0x1f83_d9ab
    private var h7: UInt32 = 0x5be0_cd19
    /// Bytes of an incomplete block waiting for more input (always fewer than 64).
    private var pending: [UInt8] = []
    /// Total message length so far, in bytes.
    private var length: UInt64 = 0

    /// Size of the digest in bytes.
    public static let digestByteCount = 32
    /// Size of one compression block in bytes.
    public static let blockByteCount = 64

    /// A hasher with the initial state of FIPS 180-4 §5.3.3.
    public init() {
        pending.reserveCapacity(SHA256.blockByteCount)
    }

    /// Appends `bytes` to the message.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let start = bytes.baseAddress, bytes.count > 0 else { return }
        var p = start
        var remaining = bytes.count
        length &+= UInt64(remaining)

        // Complete a pending partial block first.
        if !pending.isEmpty {
            let take = min(SHA256.blockByteCount - pending.count, remaining)
            pending.append(contentsOf: UnsafeRawBufferPointer(start: p, count: take))
            p += take
            remaining -= take
            if pending.count == SHA256.blockByteCount {
                pending.withUnsafeBytes { block in compress(block.baseAddress!, blocks: 1) }
                pending.removeAll(keepingCapacity: true)
            }
        }

        // Whole blocks straight from the caller's memory.
        let whole = remaining / SHA256.blockByteCount
        if whole > 0 {
            compress(p, blocks: whole)
            p += whole * SHA256.blockByteCount
            remaining -= whole * SHA256.blockByteCount
        }

        // Keep the tail for later.
        if remaining > 0 {
            pending.append(contentsOf: UnsafeRawBufferPointer(start: p, count: remaining))
        }
    }

    /// Appends the bytes of `bytes` to the message.
    public mutating func update(_ bytes: some Sequence<UInt8>) {
        let handled: Void? = bytes.withContiguousStorageIfAvailable { buffer in
            update(UnsafeRawBufferPointer(buffer))
        }
        if handled == nil {
            let copy = Array(bytes)
            copy.withUnsafeBytes { update($0) }
        }
    }

    /// Pads the message, processes the last block(s) and returns the 32-byte digest.
    /// The hasher should not be used afterwards.
    public mutating func finalize() -> [UInt8] {
        let bitLength = length &* 8
        // Padding: 0x80, zeros up to 56 mod 64, then the 64-bit big-endian bit length.
        var tail = pending
        tail.append(0x80)
        let zeros = (SHA256.blockByteCount + 56 - tail.count % SHA256.blockByteCount) % SHA256.blockByteCount
        tail.append(contentsOf: repeatElement(0, count: zeros))
        for shift in stride(from: 56, through: 0, by: -8) {
            tail.append(UInt8(truncatingIfNeeded: bitLength >> UInt64(shift)))
        }
        tail.withUnsafeBytes { block in
            compress(block.baseAddress!, blocks: block.count / SHA256.blockByteCount)
        }
        pending.removeAll()

        var digest = [UInt8]()
        digest.reserveCapacity(SHA256.digestByteCount)
        for word in [h0, h1, h2, h3, h4, h5, h6, h7] {
            digest.append(UInt8(truncatingIfNeeded: word >> 24))
            digest.append(UInt8(truncatingIfNeeded: word >> 16))
            digest.append(UInt8(truncatingIfNeeded: word >> 8))
            digest.append(UInt8(truncatingIfNeeded: word))
        }
        return digest
    }

    /// The digest of `bytes`.
    public static func hash(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(bytes)
        return hasher.finalize()
    }

    /// The digest of `bytes`.
    public static func hash(_ bytes: some Sequence<UInt8>) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(bytes)
        return hasher.finalize()
    }

    /// Lower-case hexadecimal rendering of `digest` (64 characters for a SHA-256 digest).
    public static func hex(_ digest: [UInt8]) -> String {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(digest.count * 2)
        for byte in digest {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The lower-case hex SHA-256 of the file at `path`, read through a memory map.
    public static func hashFile(path: String) throws(CheckpointError) -> String {
        let buffer = try ByteBuffer(mapping: path)
        let digest = withExtendedLifetime(buffer) {
            hash(UnsafeRawBufferPointer(start: buffer.base, count: buffer.count))
        }
        return hex(digest)
    }

    // MARK: - Compression (FIPS 180-4 §6.2.2)

    /// Round constants K0...K63: the first 32 bits of the fractional parts of the cube roots of the
    /// first 64 primes.
    private static let k: [UInt32] = [
        0x428a_2f98, 0x7137_4491, 0xb5c0_fbcf, 0xe9b5_dba5, 0x3956_c25b, 0x59f1_11f1, 0x923f_82a4, 0xab1c_5ed5,
        0xd807_aa98, 0x1283_5b01, 0x2431_85be, 0x550c_7dc3, 0x72be_5d74, 0x80de_b1fe, 0x9bdc_06a7, 0xc19b_f174,
        0xe49b_69c1, 0xefbe_4786, 0x0fc1_9dc6, 0x240c_a1cc, 0x2de9_2c6f, 0x4a74_84aa, 0x5cb0_a9dc, 0x76f9_88da,
        0x983e_5152, 0xa831_c66d, 0xb003_27c8, 0xbf59_7fc7, 0xc6e0_0bf3, 0xd5a7_9147, 0x06ca_6351, 0x1429_2967,
        0x27b7_0a85, 0x2e1b_2138, 0x4d2c_6dfc, 0x5338_0d13, 0x650a_7354, 0x766a_0abb, 0x81c2_c92e, 0x9272_2c85,
        0xa2bf_e8a1, 0xa81a_664b, 0xc24b_8b70, 0xc76c_51a3, 0xd192_e819, 0xd699_0624, 0xf40e_3585, 0x106a_a070,
        0x19a4_c116, 0x1e37_6c08, 0x2748_774c, 0x34b0_bcb5, 0x391c_0cb3, 0x4ed8_aa4a, 0x5b9c_ca4f, 0x682e_6ff3,
        0x748f_82ee, 0x78a5_636f, 0x84c8_7814, 0x8cc7_0208, 0x90be_fffa, 0xa450_6ceb, 0xbef9_a3f7, 0xc671_78f2,
    ]

    /// Compresses `blocks` consecutive 64-byte blocks starting at `start` into the state.
    private mutating func compress(_ start: UnsafeRawPointer, blocks: Int) {
        var s0 = h0, s1 = h1, s2 = h2, s3 = h3, s4 = h4, s5 = h5, s6 = h6, s7 = h7
        SHA256.k.withUnsafeBufferPointer { kBuffer in
            let k = kBuffer.baseAddress!
            withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 64) { wBuffer in
                let w = wBuffer.baseAddress!
                var block = start
                for _ in 0..<blocks {
                    // Message schedule: 16 big-endian words, then the σ expansion.
                    for t in 0..<16 {
                        w[t] = UInt32(bigEndian: block.loadUnaligned(fromByteOffset: t &* 4, as: UInt32.self))
                    }
                    for t in 16..<64 {
                        let x = w[t &- 15], y = w[t &- 2]
                        let sigma0 = rotr(x, 7) ^ rotr(x, 18) ^ (x &>> 3)
                        let sigma1 = rotr(y, 17) ^ rotr(y, 19) ^ (y &>> 10)
                        w[t] = w[t &- 16] &+ sigma0 &+ w[t &- 7] &+ sigma1
                    }

                    var a = s0, b = s1, c = s2, d = s3, e = s4, f = s5, g = s6, h = s7
                    // Eight rounds per iteration with the variables rotated by name, not moved.
                    var t = 0
                    while t < 64 {
                        sha256Round(a, b, c, &d, e, f, g, &h, k[t] &+ w[t])
                        sha256Round(h, a, b, &c, d, e, f, &g, k[t &+ 1] &+ w[t &+ 1])
                        sha256Round(g, h, a, &b, c, d, e, &f, k[t &+ 2] &+ w[t &+ 2])
                        sha256Round(f, g, h, &a, b, c, d, &e, k[t &+ 3] &+ w[t &+ 3])
                        sha256Round(e, f, g, &h, a, b, c, &d, k[t &+ 4] &+ w[t &+ 4])
                        sha256Round(d, e, f, &g, h, a, b, &c, k[t &+ 5] &+ w[t &+ 5])
                        sha256Round(c, d, e, &f, g, h, a, &b, k[t &+ 6] &+ w[t &+ 6])
                        sha256Round(b, c, d, &e, f, g, h, &a, k[t &+ 7] &+ w[t &+ 7])
                        t &+= 8
                    }
                    s0 &+= a
                    s1 &+= b
                    s2 &+= c
                    s3 &+= d
                    s4 &+= e
                    s5 &+= f
                    s6 &+= g
                    s7 &+= h
                    block += SHA256.blockByteCount
                }
            }
        }
        h0 = s0
        h1 = s1
        h2 = s2
        h3 = s3
        h4 = s4
        h5 = s5
        h6 = s6
        h7 = s7
    }
}

/// Rotates `x` right by `n` bits (0 < n < 32).
@inline(__always)
private func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 {
    (x &>> n) | (x &<< (32 &- n))
}

/// One SHA-256 round (FIPS 180-4 §6.2.2 step 3) with the working variables passed in their
/// current roles: adds T1 into `d` and sets `h` to T1 + T2, which becomes the next round's `a`.
@inline(__always)
private func sha256Round(
    _ a: UInt32, _ b: UInt32, _ c: UInt32, _ d: inout UInt32,
    _ e: UInt32, _ f: UInt32, _ g: UInt32, _ h: inout UInt32, _ kw: UInt32
) {
    let bigSigma1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)
    let choose = g ^ (e & (f ^ g))
    let t1 = h &+ bigSigma1 &+ choose &+ kw
    let bigSigma0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)
    let majority = (a & b) | (c & (a | b))
    d &+= t1
    h = t1 &+ bigSigma0 &+ majority
}

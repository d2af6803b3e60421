/// Bob Jenkins' lookup3 `hashlittle`, byte-at-a-time, as HDF5 uses it (`H5_checksum_lookup3`) for the
/// checksums of version-2 superblocks, object headers, fractal heaps and version-2 B-trees.
enum HDF5Lookup3 {
    /// The lookup3 hash of `bytes` with initial value `initval` (HDF5 checksums use 0).
    static func hash(_ bytes: UnsafeRawBufferPointer, initval: UInt32 = 0) -> UInt32 {
        var length = bytes.count
        var a: UInt32 = 0xdead_beef &+ UInt32(truncatingIfNeeded: length) &+ initval
        var b = a
        var c = a
        var k = 0
        @inline(__always) func byte(_ i: Int) -> UInt32 { UInt32(bytes[i]) }
        @inline(__always) func rot(_ x: UInt32, _ n: UInt32) -> UInt32 { (x << n) | (x >> (32 - n)) }
        while length > 12 {
            a &+= byte(k) &+ byte(k + 1) << 8 &+ byte(k + 2) << 16 &+ byte(k + 3) << 24
            b &+= byte(k + 4) &+ byte(k + 5) << 8 &+ byte(k + 6) << 16 &+ byte(k + 7) << 24
            c &+= byte(k + 8) &+ byte(k + 9) << 8 &+ byte(k + 10) << 16 &+ byte(k + 11) << 24
            a &-= c; a ^= rot(c, 4); c &+= b
            b &-= a; b ^= rot(a, 6); a &+= c
            c &-= b; c ^= rot(b, 8); b &+= a
            a &-= c; a ^= rot(c, 16); c &+= b
            b &-= a; b ^= rot(a, 19); a &+= c
            c &-= b; c ^= rot(b, 4); b &+= a
            length -= 12
            k += 12
        }
        if length == 0 { return c }
        if length >= 12 { c &+= byte(k + 11) << 24 }
        if length >= 11 { c &+= byte(k + 10) << 16 }
        if length >= 10 { c &+= byte(k + 9) << 8 }
        if length >= 9 { c &+= byte(k + 8) }
        if length >= 8 { b &+= byte(k + 7) << 24 }
        if length >= 7 { b &+= byte(k + 6) << 16 }
        if length >= 6 { b &+= byte(k + 5) << 8 }
        if length >= 5 { b &+= byte(k + 4) }
        if length >= 4 { a &+= byte(k + 3) << 24 }
        if length >= 3 { a &+= byte(k + 2) << 16 }
        if length >= 2 { a &+= byte(k + 1) << 8 }
        a &+= byte(k)
        c ^= b; c &-= rot(b, 14)
        a ^= c; a &-= rot(c, 11)
        b ^= a; b &-= rot(a, 25)
        c ^= b; c &-= rot(b, 16)
        a ^= c; a &-= rot(c, 4)
        b ^= a; b &-= rot(a, 14)
        c ^= b; c &-= rot(b, 24)
        return c
    }
}

// Shared by the Checkpoint fuzz targets (each target links this file through a symlink).
@testable import Checkpoint

/// Largest tensor (in bytes) the fuzzers materialise after a successful read. A view with zero
/// strides may legitimately address far more elements than the file holds (torch's `expand`), so
/// copying it out is the caller's choice, not the reader's; 16 MB bounds that choice here.
let maxMaterializedBytes = 16 << 20

/// Options the fuzzers read with: the defaults, plus checksums verified eagerly (more code reached).
func fuzzOptions(allowModulePickle: Bool = false) -> ReadOptions {
    var o = ReadOptions()
    o.deferStorageChecksums = false
    o.allowModulePickle = allowModulePickle
    return o
}

/// Touches what a successful read produced the way a user would: every tensor's bytes (contiguous,
/// converted to float when small enough), the extras, the provenance.
func exercise(_ sd: StateDict) {
    for (name, t) in sd.entries {
        _ = name.utf8.count
        if t.byteCount <= maxMaterializedBytes {
            _ = try? t.contiguousBytes()
            _ = try? t.floats()
        }
    }
    for (_, v) in sd.extras { _ = v.render(limit: 200) }
    _ = try? sd.verifyChecksums()
    _ = sd.parameterCount
}

/// Copies libFuzzer's input into a `ByteBuffer`, as a memory map of a file would present it.
func slice(_ data: UnsafePointer<UInt8>?, _ size: Int) -> ByteSlice {
    guard let data, size > 0 else { return ByteBuffer(copying: [UInt8]()).all }
    return ByteBuffer(copying: UnsafeRawBufferPointer(start: data, count: size)).all
}

// libFuzzer target: any checkpoint, through the public entry point `CheckpointReader.read` (format
// sniffer, every reader, unwrapping). HDF5 inputs are skipped: that reader hands the bytes to the
// HDF5 C library, which this package does not own and which is not hardened against hostile files.
@testable import Checkpoint

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = slice(data, size)
    _ = CheckpointReader.sniff(bytes)
    guard FormatSniffer.sniff(bytes) != .hdf5 else { return 0 }
    if let sd = try? CheckpointReader.read(bytes, name: "<fuzz>", options: fuzzOptions()) {
        exercise(sd)
    }
    return 0
}

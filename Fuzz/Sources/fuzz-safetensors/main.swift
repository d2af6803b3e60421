// libFuzzer target: the safetensors reader (header JSON, then the tensors), through
// `CheckpointReader.read` so the format sniffer and unwrapping run too, and the reader directly.
@testable import Checkpoint

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = slice(data, size)
    if let loaded = try? SafetensorsReader.read(bytes, options: fuzzOptions()),
        let sd = try? StateDictUnwrapper.unwrap(loaded, file: "<fuzz>", options: fuzzOptions())
    {
        exercise(sd)
    }
    return 0
}

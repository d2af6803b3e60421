// libFuzzer target: the PyTorch legacy magic-number stream reader (`LegacyStreamReader`), then
// unwrapping into a `StateDict`. Inputs that do not start with the magic pickle get it prepended,
// so the fuzzer spends its time past the magic number.
@testable import Checkpoint

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    var bytes = slice(data, size)
    if FormatSniffer.sniff(bytes) != .torchLegacyStream {
        bytes = ByteBuffer(copying: FormatSniffer.legacyMagicPickle + bytes.bytes).all
    }
    for allow in [false, true] {
        if let loaded = try? LegacyStreamReader.read(bytes, options: fuzzOptions(allowModulePickle: allow)),
            let sd = try? StateDictUnwrapper.unwrap(loaded, file: "<fuzz>", options: fuzzOptions(allowModulePickle: allow))
        {
            exercise(sd)
        }
    }
    return 0
}

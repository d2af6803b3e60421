// libFuzzer target: the tar reader (`TarArchive`: every member) and the PyTorch legacy tar
// checkpoint path (`LegacyTarReader`, then unwrapping into a `StateDict`).
@testable import Checkpoint

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = slice(data, size)
    if let tar = try? TarArchive(bytes) {
        _ = tar.hasUnsafeNames
        for e in tar.entries { _ = tar.member(named: e.name)?.data.count }
    }
    if let loaded = try? LegacyTarReader.read(bytes, options: fuzzOptions()),
        let sd = try? StateDictUnwrapper.unwrap(loaded, file: "<fuzz>", options: fuzzOptions())
    {
        exercise(sd)
    }
    return 0
}

// libFuzzer target: the zip reader (`ZipArchive`: every entry's contents, CRC checked) and the
// PyTorch zip checkpoint path (`TorchZipReader`, then unwrapping into a `StateDict`).
@testable import Checkpoint

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = slice(data, size)
    if let zip = try? ZipArchive(bytes) {
        _ = zip.hasUnsafeNames
        for e in zip.entries {
            _ = zip.entry(named: e.name)
            _ = try? zip.contents(of: e, verifyCRC: true)
        }
    }
    for allow in [false, true] {
        if let loaded = try? TorchZipReader.read(bytes, options: fuzzOptions(allowModulePickle: allow)),
            let sd = try? StateDictUnwrapper.unwrap(loaded, file: "<fuzz>", options: fuzzOptions(allowModulePickle: allow))
        {
            exercise(sd)
        }
    }
    return 0
}

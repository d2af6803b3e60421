// libFuzzer target: raw bytes into the allow-list unpickler (`CheckpointReader.readPickle`), then
// the value rendered and walked.
@testable import Checkpoint

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = slice(data, size)
    if let v = try? CheckpointReader.readPickle(bytes, name: "<fuzz>", options: fuzzOptions()) {
        _ = v.render(limit: 400)
    }
    // The same bytes as a torch pickle with module pickles allowed (opaque classes kept, not run).
    if let (node, end) = try? TorchPickle.run(bytes, options: fuzzOptions(allowModulePickle: true)) {
        if let v = try? TorchPickle.freeze(node, pickleLength: end, options: fuzzOptions(allowModulePickle: true)) {
            _ = v.render(limit: 400)
        }
    }
    return 0
}

// libFuzzer target: the CIFAR-10 readers of VisionData on in-memory bytes: the binary batch and
// meta readers and the python-pickle batch and meta readers (each tried on every input).
import Foundation
import VisionData

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = data.map { Data(bytes: $0, count: size) } ?? Data()
    if let b = try? CIFAR10.readPythonBatch(bytes, name: "<fuzz>") { _ = b.labels.reduce(0, +) }
    _ = try? CIFAR10.readPythonMeta(bytes, name: "<fuzz>")
    if let b = try? CIFAR10.readBinaryBatch(bytes, name: "<fuzz>") { _ = b.labels.reduce(0, +) }
    _ = try? CIFAR10.readBinaryMeta(bytes, name: "<fuzz>")
    return 0
}

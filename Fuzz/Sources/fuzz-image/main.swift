// libFuzzer target: JPEG/PNG decoding through VisionData's Swift side (`ImageDecoder.decode`:
// sniffing, the C layer's raster, conversion to RGB like PIL's `convert("RGB")`, EXIF orientation).
import Foundation
import VisionData

/// Pixel cap for the fuzzer: 1 MP (at most 8 MB for a 16-bit RGBA raster). The library's default cap
/// is PIL's (178,956,970 pixels), which a few bytes of header can legitimately ask for; that policy is
/// tested elsewhere. Here an allocation beyond the raster a 1 MP image needs is a finding.
let fuzzMaxPixels = 1 << 20

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = data.map { Data(bytes: $0, count: size) } ?? Data()
    var options = ImageDecoder.Options()
    options.maxPixels = fuzzMaxPixels
    options.applyEXIFOrientation = true
    if let image = try? ImageDecoder.decode(bytes, name: "<fuzz>", options: options) {
        _ = image.width &+ image.height
    }
    return 0
}

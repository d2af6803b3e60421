import CImage
import Foundation

/// Decodes JPEG (libjpeg-turbo) and PNG (libpng) images into `RGBImage`, converting to RGB the way
/// PIL's `Image.open(path).convert("RGB")` does, so that pixels equal what a torchvision pipeline sees:
///
/// - grey (`L`) is replicated to R, G and B; 1-, 2- and 4-bit grey is scaled to 0...255 first;
/// - 16-bit samples keep their high byte (PIL's `RGB;16B`, `LA;16B` raw modes), except 16-bit grey,
///   which PIL opens as `I;16` and clips to 255 on conversion;
/// - alpha and PNG transparency (`tRNS`) are dropped, not composited;
/// - palette images are looked up in their palette;
/// - CMYK and YCCK JPEGs are inverted when an Adobe marker says they were stored inverted (PIL's
///   `CMYK;I`) and converted with PIL's formula `R = 255 - K' - C*(255-K)/255` (rounded as PIL does);
/// - no gamma, ICC profile or EXIF orientation is applied, as PIL's `open` and torchvision's
///   `pil_loader` apply none. Set `Options.applyEXIFOrientation` to honour the EXIF orientation tag the
///   way `torchvision.io.decode_image(..., apply_exif_orientation=True)` does.
public enum ImageDecoder {
    /// Decoding options.
    public struct Options: Sendable {
        /// Rotate or flip the image as its EXIF orientation tag (JPEG `APP1`, PNG `eXIf`) says.
        /// Off by default, like PIL's `Image.open` and torchvision's `ImageFolder` loader.
        public var applyEXIFOrientation: Bool = false
        /// The largest image accepted, in pixels (PIL refuses images above twice its
        /// `MAX_IMAGE_PIXELS`, 178,956,970 pixels; so does this decoder by default).
        public var maxPixels: Int = 178_956_970

        /// Default options.
        public init() {}
    }

    /// The image file formats this decoder reads.
    public enum Format: String, Sendable, Equatable {
        /// JPEG (JFIF / Exif / Adobe), baseline, progressive or arithmetic-coded, 8-bit.
        case jpeg
        /// PNG of any colour type and bit depth, interlaced or not.
        case png
    }

    /// The format announced by the first bytes, or nil.
    public static func sniff(_ bytes: UnsafeRawBufferPointer) -> Format? {
        if bytes.count >= 3, bytes[0] == 0xFF, bytes[1] == 0xD8, bytes[2] == 0xFF { return .jpeg }
        let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        // A PNG cut inside its signature is still recognised, so that it is reported as truncated.
        if bytes.count >= 2, zip(bytes.prefix(8), png).allSatisfy({ $0 == $1 }) { return .png }
        return nil
    }

    /// Reads and decodes the image file at `path`.
    public static func load(_ path: String, options: Options = Options()) throws(VisionDataError) -> RGBImage {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .mappedIfSafe)
        } catch {
            throw VisionDataError(.io, "cannot read the file: \(error.localizedDescription)", file: path)
        }
        return try decode(data, name: path, options: options)
    }

    /// Decodes an image held in memory; `name` is used in error messages.
    public static func decode(_ data: Data, name: String = "<memory>", options: Options = Options()) throws(VisionDataError) -> RGBImage {
        let result: Result<RGBImage, VisionDataError> = data.withUnsafeBytes { raw in
            do throws(VisionDataError) {
                return .success(try decode(raw, options: options))
            } catch {
                return .failure(error)
            }
        }
        switch result {
        case .success(let image): return image
        case .failure(let error): throw error.inFile(name)
        }
    }

    /// Decodes an image from raw bytes.
    static func decode(_ raw: UnsafeRawBufferPointer, options: Options) throws(VisionDataError) -> RGBImage {
        guard let format = sniff(raw) else {
            throw VisionDataError(.unknownFormat, "not a JPEG or PNG image (first bytes \(hexPrefix(raw)); \(otherFormat(raw)))", offset: 0)
        }
        var raster = cimage_raster()
        var message = [CChar](repeating: 0, count: 512)
        let base = raw.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let maxPixels = UInt64(max(options.maxPixels, 0))
        let code: Int32 = message.withUnsafeMutableBufferPointer { m in
            switch format {
            case .jpeg: return cimage_decode_jpeg(base, raw.count, maxPixels, &raster, m.baseAddress, m.count)
            case .png: return cimage_decode_png(base, raw.count, maxPixels, &raster, m.baseAddress, m.count)
            }
        }
        defer { cimage_raster_free(&raster) }
        guard code == Int32(CIMAGE_OK) else {
            let text = message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            let what = format == .jpeg ? "JPEG" : "PNG"
            switch code {
            case Int32(CIMAGE_ERR_TRUNCATED): throw VisionDataError(.truncated, "\(what): \(text)")
            case Int32(CIMAGE_ERR_TOO_LARGE): throw VisionDataError(.limitExceeded, "\(what): \(text)")
            case Int32(CIMAGE_ERR_UNSUPPORTED): throw VisionDataError(.unsupported, "\(what): \(text)")
            case Int32(CIMAGE_ERR_NO_MEMORY): throw VisionDataError(.limitExceeded, "\(what): \(text)")
            default: throw VisionDataError(.malformed, "\(what): \(text)")
            }
        }
        var image = try toRGB(raster)
        if options.applyEXIFOrientation, let exif = raster.exif, raster.exif_size > 0 {
            let bytes = UnsafeRawBufferPointer(start: exif, count: raster.exif_size)
            if let orientation = EXIFOrientation(tiff: bytes) {
                image = orientation.apply(to: image)
            }
        }
        return image
    }

    /// The PIL `convert("RGB")` rules for each raw raster layout.
    static func toRGB(_ r: cimage_raster) throws(VisionDataError) -> RGBImage {
        let width = Int(r.width), height = Int(r.height), channels = Int(r.channels)
        let count = width * height
        let sampleBytes = Int(r.bit_depth) / 8
        guard width >= 0, height >= 0, sampleBytes == 1 || sampleBytes == 2,
            r.byte_count == count * channels * sampleBytes, count == 0 || r.pixels != nil
        else {
            throw VisionDataError(
                .malformed, "decoder returned an inconsistent raster (\(width)x\(height), \(channels) channels, \(r.bit_depth) bits)")
        }
        var out = [UInt8](repeating: 0, count: count * 3)
        guard count > 0 else { return RGBImage(unchecked: width, height, out) }
        let src = r.pixels!
        let model = Int(r.color_model)
        out.withUnsafeMutableBufferPointer { dst in
            let stride = channels * sampleBytes
            // A sample's 8-bit value: the byte itself, or the high byte of a big-endian 16-bit sample.
            switch model {
            case Int(CIMAGE_GRAY), Int(CIMAGE_GRAY_ALPHA):
                for i in 0..<count {
                    let p = src + i * stride
                    let v: UInt8
                    if sampleBytes == 2 && model == Int(CIMAGE_GRAY) {
                        let wide = (UInt16(p[0]) << 8) | UInt16(p[1])  // PIL I;16 -> L clips
                        v = wide > 255 ? 255 : UInt8(wide)
                    } else {
                        v = p[0]
                    }
                    dst[3 * i] = v
                    dst[3 * i + 1] = v
                    dst[3 * i + 2] = v
                }
            case Int(CIMAGE_RGB), Int(CIMAGE_RGBA):
                for i in 0..<count {
                    let p = src + i * stride
                    dst[3 * i] = p[0]
                    dst[3 * i + 1] = p[sampleBytes]
                    dst[3 * i + 2] = p[2 * sampleBytes]
                }
            case Int(CIMAGE_CMYK):
                let invert = r.adobe_marker != 0
                for i in 0..<count {
                    let p = src + i * 4
                    var c = Int(p[0]), m = Int(p[1]), y = Int(p[2]), k = Int(p[3])
                    if invert { c = 255 - c; m = 255 - m; y = 255 - y; k = 255 - k }
                    let nk = 255 - k
                    dst[3 * i] = cmykChannel(c, nk)
                    dst[3 * i + 1] = cmykChannel(m, nk)
                    dst[3 * i + 2] = cmykChannel(y, nk)
                }
            default:
                break
            }
        }
        guard [Int(CIMAGE_GRAY), Int(CIMAGE_GRAY_ALPHA), Int(CIMAGE_RGB), Int(CIMAGE_RGBA), Int(CIMAGE_CMYK)].contains(model) else {
            throw VisionDataError(.unsupported, "colour model \(model) is not converted to RGB")
        }
        return RGBImage(unchecked: width, height, out)
    }

    /// One RGB channel from CMYK: `nk - round(x * nk / 255)` with PIL's integer rounding of the product.
    @inline(__always)
    static func cmykChannel(_ x: Int, _ nk: Int) -> UInt8 {
        let t = x * nk + 128
        let scaled = ((t >> 8) + t) >> 8  // x * nk / 255, rounded
        return UInt8(clamping: nk - scaled)
    }

    private static func hexPrefix(_ raw: UnsafeRawBufferPointer) -> String {
        raw.prefix(8).map { String(format: "%02x", $0) }.joined(separator: " ")
    }

    /// A hint naming a common image format this decoder does not read.
    private static func otherFormat(_ raw: UnsafeRawBufferPointer) -> String {
        func starts(_ s: String) -> Bool { raw.count >= s.utf8.count && zip(raw, s.utf8).allSatisfy { $0 == $1 } }
        if raw.isEmpty { return "the file is empty" }
        if starts("GIF8") { return "GIF is not supported" }
        if starts("BM") { return "BMP is not supported" }
        if starts("RIFF"), raw.count >= 12, String(decoding: raw[8..<12], as: UTF8.self) == "WEBP" { return "WebP is not supported" }
        if starts("II*\u{0}") || starts("MM\u{0}*") { return "TIFF is not supported" }
        return "expected FF D8 FF (JPEG) or 89 50 4E 47 0D 0A 1A 0A (PNG)"
    }
}

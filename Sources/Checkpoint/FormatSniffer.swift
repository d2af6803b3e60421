/// What a file's first bytes say it is (FORMATS.md §0). The file name is never consulted.
enum SniffedFormat: Equatable {
    case zip
    case torchLegacyStream
    case tar
    case hdf5
    case safetensors
    /// A pickle without torch's framing (a `pickle.dump` of something).
    case barePickle
    /// Text starting with `<` (an HTML error page saved under a checkpoint's name).
    case html
    case unknown

    /// A phrase for error messages.
    var description: String {
        switch self {
        case .zip: return "a zip archive"
        case .torchLegacyStream: return "a PyTorch legacy stream"
        case .tar: return "a tar archive"
        case .hdf5: return "an HDF5 file"
        case .safetensors: return "a safetensors file"
        case .barePickle: return "a bare Python pickle (not a torch.save file)"
        case .html: return "an HTML/XML text file (a saved error page?)"
        case .unknown: return "no known checkpoint format"
        }
    }
}

enum FormatSniffer {
    /// The 15 bytes every legacy torch.save stream starts with: PROTO 2, LONG1 of 10 bytes holding
    /// the magic number 0x1950a86a20f9469cfc6c, STOP.
    static let legacyMagicPickle: [UInt8] = [0x80, 0x02, 0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19, 0x2E]

    static func sniff(_ data: ByteSlice) -> SniffedFormat {
        let n = data.count
        func starts(with bytes: [UInt8], at offset: Int = 0) -> Bool {
            guard n >= offset + bytes.count else { return false }
            for (i, b) in bytes.enumerated() where data[offset + i] != b { return false }
            return true
        }
        if starts(with: [0x50, 0x4B, 0x03, 0x04]) || starts(with: [0x50, 0x4B, 0x05, 0x06]) { return .zip }
        if starts(with: legacyMagicPickle) { return .torchLegacyStream }
        if starts(with: Array("ustar".utf8), at: 257) { return .tar }
        let hdf5Signature: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]
        if starts(with: hdf5Signature) { return .hdf5 }
        // An HDF5 file behind a userblock: the superblock sits at 512, 1024, 2048, ...
        var userblock = 512
        while userblock <= n - 8 {
            if starts(with: hdf5Signature, at: userblock) { return .hdf5 }
            userblock *= 2
        }
        if n >= 9, data[8] == 0x7B {
            var size: UInt64 = 0
            for i in 0..<8 { size |= UInt64(data[i]) << (8 * UInt64(i)) }
            // The reader checks the size against the file (and its cap) and says what is wrong.
            if size >= 2 { return .safetensors }
        }
        if n >= 2, data[0] == 0x80, data[1] <= 5 { return .barePickle }
        if n >= 1, data[0] == UInt8(ascii: "<") { return .html }
        return .unknown
    }
}

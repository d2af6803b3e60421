/// Options for reading a checkpoint.
public struct ReadOptions: Sendable {
    /// Check the CRC-32 of every zip record whose stored CRC is non-zero.
    public var verifyChecksums: Bool = true
    /// Check a stored storage record's CRC-32 when its bytes are first used (`floats()`,
    /// `contiguousBytes()`, `StateDict.verifyChecksums()`) rather than while reading the file, so that
    /// reading costs what mapping costs. Has no effect when `verifyChecksums` is false.
    public var deferStorageChecksums: Bool = true
    /// Harvest tensors from a whole pickled `nn.Module` (`torch.save(model)`) by walking its
    /// `_parameters` / `_buffers` / `_modules` as inert records. Off by default: such a pickle names
    /// arbitrary classes, and by default any global off the allow-list is an error.
    public var allowModulePickle: Bool = false
    /// Find the state dict inside common nestings and strip `module.` / `_orig_mod.` prefixes.
    public var unwrap: Bool = true
    /// Safety caps for the unpickler.
    public var limits: PickleLimits = PickleLimits()

    /// Default options.
    public init() {}
}

/// Safety caps for the unpickler.
public struct PickleLimits: Sendable {
    /// Most memo entries a pickle may define.
    public var maxMemoEntries: Int = 1 << 20
    /// Deepest container nesting.
    public var maxDepth: Int = 200
    /// Longest integer (LONG1/LONG4) in bytes.
    public var maxIntegerBytes: Int = 1024
    /// Most values a pickle may create, as a multiple of its length in bytes (plus 4096).
    public var maxObjectsPerByte: Int = 8
    /// Longest pickle, in bytes. Set by the readers for pickles inside a compressed record, so that a
    /// few hundred bytes of deflate cannot become a megabyte of opcodes (each costs memory).
    var maxPickleBytes: Int = .max

    /// Default caps.
    public init() {}
}

/// Reads checkpoint files of every supported format into a `StateDict`.
public enum CheckpointReader {
    /// Reads the checkpoint at `path`, choosing the reader by the file's first bytes.
    public static func read(_ path: String, options: ReadOptions = ReadOptions()) throws(CheckpointError) -> StateDict {
        do throws(CheckpointError) {
            let buffer = try ByteBuffer(mapping: path)
            return try read(buffer.all, name: path, options: options)
        } catch {
            throw error.inFile(path)
        }
    }

    /// Reads a checkpoint held in memory; `name` is used in provenance and error messages.
    public static func read(_ data: ByteSlice, name: String, options: ReadOptions = ReadOptions()) throws(CheckpointError) -> StateDict {
        do throws(CheckpointError) {
            let loaded = try load(data, options: options)
            return try StateDictUnwrapper.unwrap(loaded, file: name, options: options)
        } catch {
            throw error.inFile(name)
        }
    }

    /// The format a file's first bytes announce, or nil if none is recognised.
    public static func sniff(_ data: ByteSlice) -> String? {
        let f = FormatSniffer.sniff(data)
        return f == .unknown ? nil : f.description
    }

    static func load(_ data: ByteSlice, options: ReadOptions) throws(CheckpointError) -> LoadedObject {
        let format = FormatSniffer.sniff(data)
        switch format {
        case .zip: return try TorchZipReader.read(data, options: options)
        case .torchLegacyStream: return try LegacyStreamReader.read(data, options: options)
        case .tar: return try LegacyTarReader.read(data, options: options)
        case .hdf5: return try HDF5Reader.read(data, options: options)
        case .safetensors: return try SafetensorsReader.read(data, options: options)
        case .barePickle, .html, .unknown:
            if data.count == 0 { throw CheckpointError(.unknownFormat, "the file is empty", offset: 0) }
            throw CheckpointError(.unknownFormat, "\(format.description): expected a PyTorch zip, legacy stream or legacy tar, HDF5 or safetensors", offset: 0)
        }
    }
}

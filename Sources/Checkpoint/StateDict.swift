/// The container format a checkpoint was read from.
public enum CheckpointFormat: String, Sendable, Equatable, Codable {
    /// PyTorch >= 1.6 zip archive (`data.pkl` + `data/<key>` records).
    case torchZip = "pytorch-zip"
    /// PyTorch 0.1.10-1.5 magic-number pickle stream (also `_use_new_zipfile_serialization=False`).
    case torchLegacyStream = "pytorch-legacy-stream"
    /// PyTorch <= 0.1.9 tar archive (`storages`, `tensors`, `pickle`).
    case torchLegacyTar = "pytorch-legacy-tar"
    /// A zip holding exactly one legacy-format file, as `torch.hub` accepts.
    case torchZipWrappedLegacy = "pytorch-zip-wrapped-legacy"
    /// A TorchScript archive (`torch.jit.save`): tensors extracted from its module pickle.
    case torchScript = "torchscript"
    /// An HDF5 file holding one dataset per tensor (h5py `create_dataset(key, data=...)`).
    case hdf5 = "hdf5"
    /// A Keras 1/2 (or Keras 3 legacy-writer) `.h5`: `layer_names` / `weight_names` attributes,
    /// weights-only or a full model's `model_weights` group. Tensors keep Keras layouts (HWIO kernels).
    case kerasH5 = "keras-h5"
    /// A Keras 3 `.weights.h5`: `layers/<name>/vars/<i>`. Tensors keep Keras layouts.
    case keras3 = "keras3-weights-h5"
    /// A safetensors file (JSON header, then the tensors' bytes).
    case safetensors = "safetensors"
}

/// Where a state dict came from and how it was found inside the file.
public struct Provenance: Sendable {
    /// The path that was read.
    public var file: String
    /// The container format.
    public var format: CheckpointFormat
    /// Format version fields, e.g. `version` = `3`, `.format_version` = `1`, `protocol` = `1001`.
    public var formatVersion: [String: String]
    /// Byte order of the stored element data.
    public var byteOrder: ByteOrder
    /// The keys followed from the loaded object to the state dict (`["state_dict"]`; empty if the
    /// file is a bare state dict).
    public var nestingPath: [String]
    /// Prefixes removed from every key (`module.`, `_orig_mod.`), in the order they were removed.
    public var strippedPrefixes: [String]
    /// The archive's record prefix (zip: `archive`, the file's base name...), if any.
    public var archivePrefix: String?
    /// Other remarks worth showing a user (skipped `_metadata`, tensors found in a module pickle...).
    public var notes: [String]
}

/// An ordered mapping from parameter names to tensors, with the file's other values and provenance.
/// This is what every reader produces and what every later step (remap, validate, convert) consumes.
public struct StateDict: Sendable {
    /// Tensors in file order.
    public private(set) var entries: [(name: String, tensor: TensorData)]
    private var index: [String: Int]
    /// Non-tensor values found beside the state dict (epoch, accuracy, `args`...), in file order, by
    /// their path from the loaded object (`epoch`, `args`, `optimizer.param_groups`...).
    public var extras: [(name: String, value: PickleValue)]
    /// Where the tensors came from.
    public var provenance: Provenance

    /// Creates a state dict; a repeated name is an error.
    public init(entries: [(name: String, tensor: TensorData)], extras: [(name: String, value: PickleValue)] = [], provenance: Provenance) throws(CheckpointError) {
        self.entries = []
        self.index = [:]
        self.extras = extras
        self.provenance = provenance
        for e in entries { try append(e.name, e.tensor) }
    }

    /// Adds a tensor at the end; a repeated name is an error.
    public mutating func append(_ name: String, _ tensor: TensorData) throws(CheckpointError) {
        guard index[name] == nil else {
            throw CheckpointError(.malformed, "tensor name '\(name)' appears twice", member: name)
        }
        index[name] = entries.count
        entries.append((name, tensor))
    }

    /// The tensor called `name`, if present.
    public subscript(name: String) -> TensorData? {
        guard let i = index[name] else { return nil }
        return entries[i].tensor
    }

    /// Tensor names in file order.
    public var names: [String] { entries.map(\.name) }

    /// Number of tensors.
    public var count: Int { entries.count }

    /// Total elements over all tensors.
    public var parameterCount: Int { entries.reduce(0) { $0 + $1.tensor.elementCount } }

    /// Runs every deferred CRC-32 check now (each storage once); throws the first mismatch.
    public func verifyChecksums() throws(CheckpointError) {
        for e in entries {
            do throws(CheckpointError) {
                try e.tensor.storage.verifyChecksum()
            } catch {
                throw error.inFile(provenance.file)
            }
        }
    }

    /// Total bytes of all tensors in their stored dtypes.
    public var byteCount: Int { entries.reduce(0) { $0 + $1.tensor.byteCount } }
}

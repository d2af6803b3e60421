/// Reads HDF5 checkpoints (FORMATS.md §4) with the bounds-checked Swift parser `HDF5NativeFile`
/// (libhdf5 is not involved in reading), in three layouts:
///
/// - **Keras 2 `.h5`** (`save_weights`, or a full model's `model_weights` group): the `layer_names`
///   attribute (or its chunks `layer_names0`, `layer_names1`, ...) lists the layers; each layer group's
///   `weight_names` lists its datasets. Keys are `<layer>/<weight>` with the TensorFlow `:0` suffix
///   dropped (`conv1_conv/kernel`), so Keras 2 and Keras 3's legacy writer give the same names.
/// - **Keras 3 `.weights.h5`**: `layers/<auto name>/vars/<i>`. The layer's real name comes from the
///   `name` attribute of its `vars` group when present; otherwise the automatic name stays (`conv2d_3`),
///   which the model's remapping resolves by traversal order. Positional variables are named by the
///   layer class (`conv2d`: kernel, bias; `batch_normalization`: gamma, beta, moving_mean,
///   moving_variance; `dense`: kernel, bias).
/// - **Flat** (h5py `create_dataset(key, data=...)` per state-dict entry): every dataset, keys being
///   its path with nested groups joined by `.`; string attributes of the root become extras.
///
/// Tensors keep the file's layout (Keras kernels stay HWIO / `[in, out]`); converting layouts is the
/// remapping's job, which knows the model. Files written for Theano are refused, saying why.
enum HDF5Reader {
    static func read(_ data: ByteSlice, options: ReadOptions) throws(CheckpointError) -> LoadedObject {
        var reader = Walk(file: try HDF5NativeFile(data))
        let root = try reader.file.root()
        let rootNames = try reader.file.children(root, path: "/")

        if try Self.hasLayerNames(reader.file, root, path: "") {
            return try reader.keras2(weights: root, root: root, path: "", fullModel: false)
        }
        if rootNames.contains("model_weights"), let weights = try reader.file.group("model_weights", in: root, path: "/"),
            try Self.hasLayerNames(reader.file, weights, path: "model_weights")
        {
            return try reader.keras2(weights: weights, root: root, path: "model_weights/", fullModel: true)
        }
        if let container = ["layers", "_layer_checkpoint_dependencies"].first(where: { rootNames.contains($0) }),
            try reader.file.kind(of: container, in: root, path: "/") == .group
        {
            return try reader.keras3(root: root, container: container)
        }
        return try reader.flat(root: root)
    }

    /// Whether `group` carries Keras 2's `layer_names` attribute (whole or chunked).
    private static func hasLayerNames(_ file: HDF5NativeFile, _ group: HDF5ObjectHeader, path: String) throws(CheckpointError) -> Bool {
        if try file.hasAttribute(group, "layer_names", path: path) { return true }
        return try file.hasAttribute(group, "layer_names0", path: path)
    }

    /// One pass over a file, collecting tensors in order.
    private struct Walk {
        let file: HDF5NativeFile
        var entries: [PickleValue.DictEntry] = []
        var names = Set<String>()
        var sawBigEndian = false
        var sawLittleEndian = false
        /// Groups and datasets visited by the walks, capped (hard links can share groups).
        var visits = 0

        init(file: HDF5NativeFile) { self.file = file }

        mutating func add(_ key: String, _ dataset: HDF5ObjectHeader, path: String) throws(CheckpointError) {
            guard !names.contains(key) else {
                throw CheckpointError(.malformed, "two datasets give the tensor name '\(key)'", member: path)
            }
            let (tensor, order) = try file.tensor(dataset, path: path)
            if tensor.dtype.byteSize > 1 {
                if order == .big { sawBigEndian = true } else { sawLittleEndian = true }
            }
            names.insert(key)
            entries.append(PickleValue.DictEntry(key: .string(key), value: .tensor(tensor)))
        }

        func loaded(_ format: CheckpointFormat, version: [String: String], notes: [String]) -> LoadedObject {
            var notes = notes
            if sawBigEndian && sawLittleEndian { notes.append("datasets of both byte orders; each is converted on use") }
            return LoadedObject(
                root: .dict(entries), format: format, formatVersion: version, byteOrder: sawBigEndian && !sawLittleEndian ? .big : .little,
                archivePrefix: nil, notes: notes)
        }

        // MARK: Keras 2

        mutating func keras2(weights: HDF5ObjectHeader, root: HDF5ObjectHeader, path: String, fullModel: Bool) throws(CheckpointError) -> LoadedObject {
            var version: [String: String] = [:]
            for attr in ["keras_version", "backend"] {
                if let v = try file.strings(weights, attr, path: path)?.first {
                    version[attr] = v
                } else if let v = try file.strings(root, attr, path: "/")?.first {
                    version[attr] = v
                }
            }
            var notes = [
                fullModel ? "Keras full-model HDF5 (weights in 'model_weights')" : "Keras weights-only HDF5 (save_weights)",
                "tensor layout: Keras (Conv2D kernels HWIO, Dense kernels [in, out])",
            ]
            if version["keras_version"] == nil {
                notes.append("no keras_version attribute: a Keras 1 file (Keras reads it as version '1')")
            }
            if let backend = version["backend"], backend.lowercased() == "theano" {
                throw CheckpointError(
                    .unsupported,
                    "written by Keras \(version["keras_version"] ?? "1") with the Theano backend: Theano convolves with flipped kernels, "
                        + "and such files may also store them channels-first ('th' ordering), which the file does not record; "
                        + "refusing rather than guessing. Load it with Keras on the Theano backend and save it again from TensorFlow "
                        + "(or with keras.utils.convert_all_kernels_in_model)",
                    member: path.isEmpty ? nil : path)
            }
            guard let layers = try file.chunkedStrings(weights, "layer_names", path: path) else {
                throw CheckpointError(.malformed, "no layer_names attribute", member: path)
            }
            for layer in layers {
                guard let group = try file.group(layer, in: weights, path: path) else {
                    throw CheckpointError(.malformed, "layer_names lists '\(layer)' but there is no such group", member: path)
                }
                try keras2Layer(layer, group, path: path + layer)
            }
            if !layers.contains("top_level_model_weights"), let top = try file.group("top_level_model_weights", in: weights, path: path) {
                try keras2Layer("top_level_model_weights", top, path: path + "top_level_model_weights")
            }
            return loaded(.kerasH5, version: version, notes: notes)
        }

        private mutating func keras2Layer(_ layer: String, _ group: HDF5ObjectHeader, path: String) throws(CheckpointError) {
            let weightNames = try file.chunkedStrings(group, "weight_names", path: path) ?? []
            for name in weightNames {
                guard let (dataset, kind) = try file.resolve(name, from: group, path: path), kind == .dataset else {
                    throw CheckpointError(.malformed, "weight_names lists '\(name)' but there is no such dataset", member: path)
                }
                try add(Self.keras2Key(layer: layer, weight: name), dataset, path: path + "/" + name)
            }
        }

        /// `conv1_conv` + `conv1_conv/kernel:0` → `conv1_conv/kernel`; a weight name that does not start
        /// with its layer's name (a nested model's weights) is prefixed with it.
        static func keras2Key(layer: String, weight: String) -> String {
            var w = Substring(weight)
            if let colon = w.lastIndex(of: ":"), !w[w.index(after: colon)...].isEmpty, w[w.index(after: colon)...].allSatisfy(\.isNumber) {
                w = w[..<colon]
            }
            return w.hasPrefix(layer + "/") ? String(w) : layer + "/" + w
        }

        // MARK: Keras 3

        mutating func keras3(root: HDF5ObjectHeader, container: String) throws(CheckpointError) -> LoadedObject {
            var anonymous = 0
            var named = 0
            if let layers = try file.group(container, in: root, path: "/") {
                try keras3Container(
                    layers, prefix: "", path: container, anonymous: &anonymous, named: &named, depth: 0, ancestors: [root.address, layers.address])
            }
            var notes = ["Keras 3 weights file (.weights.h5)", "tensor layout: Keras (Conv2D kernels HWIO, Dense kernels [in, out])"]
            if anonymous > 0 {
                notes.append(
                    "\(anonymous) of \(anonymous + named) layers carry no name attribute: their keys use Keras's automatic names "
                        + "(conv2d, conv2d_1, ...), which follow the model's layer order")
            }
            var version: [String: String] = [:]
            if let vars = try file.group("vars", in: root, path: "/"), let model = try file.strings(vars, "name", path: "vars")?.first {
                version["model name"] = model
            }
            return loaded(.keras3, version: version, notes: notes)
        }

        private mutating func keras3Container(
            _ group: HDF5ObjectHeader, prefix: String, path: String, anonymous: inout Int, named: inout Int, depth: Int, ancestors: Set<Int>
        ) throws(CheckpointError) {
            guard depth < HDF5NativeFile.maxDepth else {
                throw CheckpointError(.limitExceeded, "layers nested deeper than \(HDF5NativeFile.maxDepth)", member: path)
            }
            let children = try file.children(group, path: path).sorted(by: Self.automaticOrder)
            for auto in children {
                let layerPath = path + "/" + auto
                try visit(path: layerPath)
                guard let layer = try file.group(auto, in: group, path: path) else { continue }
                try Self.checkCycle(layer, ancestors, path: layerPath)
                var name = auto
                let parts = try file.children(layer, path: layerPath)
                let vars = parts.contains("vars") ? try file.group("vars", in: layer, path: layerPath) : nil
                if let vars, let real = try file.strings(vars, "name", path: layerPath + "/vars")?.first, !real.isEmpty {
                    name = real
                    named += 1
                } else if vars != nil {
                    anonymous += 1
                }
                if let vars {
                    let indices = try file.children(vars, path: layerPath + "/vars").sorted(by: Self.automaticOrder)
                    let names = Self.variableNames(layerClass: Self.layerClass(auto), count: indices.count)
                    for (i, index) in indices.enumerated() {
                        guard let (dataset, kind) = try file.resolve(index, from: vars, path: layerPath), kind == .dataset else { continue }
                        let variable = indices.count == names.count && index == String(i) ? names[i] : index
                        try add(prefix + name + "/" + variable, dataset, path: layerPath + "/vars/" + index)
                    }
                }
                for sub in ["layers", "_layer_checkpoint_dependencies"] where parts.contains(sub) {
                    if let nested = try file.group(sub, in: layer, path: layerPath) {
                        try Self.checkCycle(nested, ancestors.union([layer.address]), path: layerPath + "/" + sub)
                        try keras3Container(
                            nested, prefix: prefix + name + "/", path: layerPath + "/" + sub, anonymous: &anonymous, named: &named,
                            depth: depth + 1, ancestors: ancestors.union([layer.address, nested.address]))
                    }
                }
            }
        }

        /// Counts one visited object against `HDF5NativeFile.maxObjects`.
        mutating func visit(path: String) throws(CheckpointError) {
            visits += 1
            guard visits <= HDF5NativeFile.maxObjects else {
                throw CheckpointError(.limitExceeded, "more than \(HDF5NativeFile.maxObjects) objects visited", member: path)
            }
        }

        /// Refuses a group that is one of its own ancestors (hard links can make the group graph cyclic).
        static func checkCycle(_ group: HDF5ObjectHeader, _ ancestors: Set<Int>, path: String) throws(CheckpointError) {
            guard !ancestors.contains(group.address) else {
                throw CheckpointError(
                    .malformed, "group cycle: '\(path)' links back to its own ancestor (object header at byte \(group.address))", member: path)
            }
        }

        /// `conv2d_12` → `conv2d`.
        static func layerClass(_ auto: String) -> String {
            if let underscore = auto.lastIndex(of: "_"), auto[auto.index(after: underscore)...].allSatisfy(\.isNumber),
                auto.index(after: underscore) < auto.endIndex
            {
                return String(auto[..<underscore])
            }
            return auto
        }

        /// Orders `conv2d`, `conv2d_1`, `conv2d_2`, ..., `conv2d_10` (and `0`, `1`, ..., `10`) numerically.
        static func automaticOrder(_ a: String, _ b: String) -> Bool {
            func split(_ s: String) -> (String, Int) {
                if let n = Int(s) { return ("", n) }
                let base = layerClass(s)
                if base == s { return (s, -1) }
                return (base, Int(s.dropFirst(base.count + 1)) ?? -1)
            }
            let x = split(a), y = split(b)
            return x.0 != y.0 ? x.0 < y.0 : (x.1 != y.1 ? x.1 < y.1 : a < b)
        }

        /// The names of a Keras 3 layer's positional variables, by its class (FORMATS.md §4.2).
        static func variableNames(layerClass: String, count: Int) -> [String] {
            switch layerClass {
            case "conv1d", "conv2d", "conv3d", "conv2d_transpose", "depthwise_conv2d", "dense":
                return Array(["kernel", "bias"].prefix(count))
            case "batch_normalization":
                switch count {
                case 4: return ["gamma", "beta", "moving_mean", "moving_variance"]
                case 2: return ["moving_mean", "moving_variance"]
                default: return []
                }
            default:
                return []
            }
        }

        // MARK: Flat

        mutating func flat(root: HDF5ObjectHeader) throws(CheckpointError) -> LoadedObject {
            try flatGroup(root, prefix: "", path: "", depth: 0, ancestors: [root.address])
            var nested = false
            for e in entries where e.key.stringValue?.contains("/") == true { nested = true }
            // Root string attributes (a writer's provenance) become extras.
            var extras: [PickleValue.DictEntry] = []
            for attribute in try file.attributes(of: root, path: "") where HDF5NativeFile.isString(attribute.type) {
                let values = try file.strings(attribute, path: "")
                extras.append(
                    PickleValue.DictEntry(
                        key: .string(attribute.name), value: values.count == 1 ? .string(values[0]) : .list(values.map { .string($0) })))
            }
            var notes = ["flat HDF5 state dict (one dataset per tensor)"]
            if nested { notes.append("nested groups joined into keys with '/'") }
            var result = loaded(.hdf5, version: [:], notes: notes)
            result.root = .dict(entries + extras)
            return result
        }

        private mutating func flatGroup(_ group: HDF5ObjectHeader, prefix: String, path: String, depth: Int, ancestors: Set<Int>)
            throws(CheckpointError)
        {
            guard depth < HDF5NativeFile.maxDepth else {
                throw CheckpointError(.limitExceeded, "groups nested deeper than \(HDF5NativeFile.maxDepth)", member: path)
            }
            for name in try file.children(group, path: path.isEmpty ? "/" : path) {
                let childPath = path.isEmpty ? name : path + "/" + name
                try visit(path: childPath)
                switch try file.kind(of: name, in: group, path: path) {
                case .dataset:
                    guard let (dataset, _) = try file.resolve(name, from: group, path: path) else { continue }
                    try add(prefix + name, dataset, path: childPath)
                case .group:
                    if let sub = try file.group(name, in: group, path: path) {
                        try Self.checkCycle(sub, ancestors, path: childPath)
                        try flatGroup(sub, prefix: prefix + name + "/", path: childPath, depth: depth + 1, ancestors: ancestors.union([sub.address]))
                    }
                default:
                    continue
                }
            }
        }
    }
}

/// Finds the state dict inside a loaded object (FORMATS.md §1.7) and strips wrapper prefixes.
///
/// A bare state dict is taken as is. A training checkpoint is followed through the first of the
/// known keys that holds tensors (EMA weights first, as timm does), and everything else beside it
/// is kept as extras. A whole pickled module (read with `allowModulePickle`) is harvested from its
/// `_parameters`, persistent `_buffers` and `_modules`, in `state_dict()` order.
enum StateDictUnwrapper {
    /// Keys that hold the weights in common training checkpoints, in the order they are preferred.
    static let nestingKeys = [
        "state_dict_ema", "model_ema", "state_dict", "model_state_dict", "model_state", "model", "net", "network",
        "module", "weights", "params_ema", "params", "ema",
    ]
    /// Prefixes added by wrappers: DataParallel/DDP and torch.compile.
    static let wrapperPrefixes = ["module.", "_orig_mod."]

    static func unwrap(_ loaded: LoadedObject, file: String, options: ReadOptions) throws(CheckpointError) -> StateDict {
        let sd = try find(loaded, file: file, options: options)
        for e in sd.entries { e.tensor.storage.checksum?.name(file: file) }
        return sd
    }

    private static func find(_ loaded: LoadedObject, file: String, options: ReadOptions) throws(CheckpointError) -> StateDict {
        var provenance = Provenance(
            file: file, format: loaded.format, formatVersion: loaded.formatVersion, byteOrder: loaded.byteOrder,
            nestingPath: [], strippedPrefixes: [], archivePrefix: loaded.archivePrefix, notes: loaded.notes)
        var extras: [(name: String, value: PickleValue)] = []
        var entries: [(name: String, tensor: TensorData)] = []
        var value = loaded.root

        if loaded.format == .torchScript || !options.unwrap {
            if loaded.format == .torchScript {
                provenance.notes.append("tensors harvested from the TorchScript module's attributes")
            }
            entries = try collect(value, options: options, notes: &provenance.notes)
            return try StateDict(entries: entries, extras: extras, provenance: provenance)
        }

        for _ in 0..<8 {
            if case .object = value {
                entries = try collect(value, options: options, notes: &provenance.notes)
                break
            }
            guard let dict = value.dictEntries else {
                throw CheckpointError(.noStateDict, "the file holds a \(typeName(value)) at '\(pathName(provenance.nestingPath))', not a state dict")
            }
            let prefix = provenance.nestingPath.isEmpty ? "" : provenance.nestingPath.joined(separator: ".") + "."
            // A dict with tensors at its top level is the state dict; its non-tensor values are extras.
            if dict.contains(where: { if case .tensor = $0.value { return true } else { return false } }) {
                entries = try collect(value, options: options, notes: &provenance.notes)
                for e in dict {
                    if case .tensor = e.value { continue }
                    if case .none = e.value { continue }
                    extras.append((prefix + keyName(e.key), e.value))
                }
                break
            }
            // Otherwise follow a known key, or failing that the child holding the most tensors.
            var chosen: Int?
            for key in nestingKeys {
                if let i = dict.firstIndex(where: { $0.key.stringValue == key }), tensorCount(dict[i].value, depth: 0) > 0 {
                    chosen = i
                    break
                }
            }
            if chosen == nil {
                let counts = dict.map { tensorCount($0.value, depth: 0) }
                if let best = counts.max(), best > 0 { chosen = counts.firstIndex(of: best) }
            }
            guard let i = chosen else {
                let keys = dict.prefix(12).map { keyName($0.key) }.joined(separator: ", ")
                throw CheckpointError(.noStateDict, "no tensors found under '\(pathName(provenance.nestingPath))' (keys: \(keys))")
            }
            let key = keyName(dict[i].key)
            for (j, e) in dict.enumerated() where j != i {
                extras.append((prefix + keyName(e.key), e.value))
            }
            if key.hasSuffix("ema"), let plain = dict.first(where: { $0.key.stringValue == "state_dict" || $0.key.stringValue == "model" }),
                tensorCount(plain.value, depth: 0) > 0
            {
                provenance.notes.append("took the EMA weights '\(key)' over '\(keyName(plain.key))', as timm does")
            }
            provenance.nestingPath.append(key)
            value = dict[i].value
        }
        guard !entries.isEmpty || value.dictEntries?.isEmpty == true else {
            throw CheckpointError(.noStateDict, "nesting deeper than 8 levels at '\(pathName(provenance.nestingPath))'")
        }

        // Strip wrapper prefixes carried by every key, in any order, as often as they occur.
        var stripped = true
        while stripped && !entries.isEmpty {
            stripped = false
            for p in wrapperPrefixes where entries.allSatisfy({ $0.name.hasPrefix(p) }) {
                entries = entries.map { (String($0.name.dropFirst(p.count)), $0.tensor) }
                provenance.strippedPrefixes.append(p)
                stripped = true
            }
        }
        return try StateDict(entries: entries, extras: extras, provenance: provenance)
    }

    private static func pathName(_ path: [String]) -> String { path.isEmpty ? "<root>" : path.joined(separator: ".") }

    private static func keyName(_ key: PickleValue) -> String {
        if let s = key.stringValue { return s }
        if let i = key.intValue { return String(i) }
        return key.render(limit: 40)
    }

    private static func typeName(_ value: PickleValue) -> String {
        switch value {
        case .object(let type, _, _): return type
        case .tensor: return "single tensor"
        case .list: return "list"
        case .tuple: return "tuple"
        default: return value.render(limit: 30)
        }
    }

    /// Tensors reachable through dicts and module objects, up to a small depth.
    static func tensorCount(_ value: PickleValue, depth: Int) -> Int {
        guard depth < 6 else { return 0 }
        switch value {
        case .tensor: return 1
        case .dict(let entries): return entries.reduce(0) { $0 + tensorCount($1.value, depth: depth + 1) }
        case .object(_, _, let state): return state.map { tensorCount($0, depth: depth + 1) } ?? 0
        default: return 0
        }
    }

    /// The tensors of a state dict (a dict of name → tensor) or of a module object.
    private static func collect(_ value: PickleValue, options: ReadOptions, notes: inout [String]) throws(CheckpointError) -> [(name: String, tensor: TensorData)] {
        var out: [(name: String, tensor: TensorData)] = []
        switch value {
        case .dict(let entries):
            for e in entries {
                if case .tensor(let t) = e.value { out.append((keyName(e.key), t)) }
            }
        case .object(let type, _, _):
            guard options.allowModulePickle || type.hasPrefix("__torch__") else {
                throw CheckpointError(.disallowedGlobal, "the file is a whole pickled module (\(type)); use --allow-module-pickle to harvest its tensors")
            }
            try harvest(value, prefix: "", into: &out, depth: 0)
            notes.append("tensors harvested from a pickled module of type \(type) without running it")
        default:
            throw CheckpointError(.noStateDict, "the file holds a \(typeName(value)), not a state dict")
        }
        return out
    }

    /// Walks a module object like `nn.Module.state_dict()`: own parameters, then persistent buffers,
    /// then children. TorchScript objects, whose state is a flat attribute dict, are walked in
    /// attribute order.
    private static func harvest(_ value: PickleValue, prefix: String, into out: inout [(name: String, tensor: TensorData)], depth: Int) throws(CheckpointError) {
        guard depth < 64 else { throw CheckpointError(.limitExceeded, "modules nested deeper than 64 levels") }
        guard case .object(_, _, let stateValue) = value, let state = stateValue else { return }
        if let params = state["_parameters"] {
            for e in params.dictEntries ?? [] {
                if case .tensor(let t) = e.value { out.append((prefix + keyName(e.key), t)) }
            }
            var nonPersistent: Set<String> = []
            if case .set(let items)? = state["_non_persistent_buffers_set"] {
                nonPersistent = Set(items.compactMap(\.stringValue))
            }
            for e in state["_buffers"]?.dictEntries ?? [] {
                let name = keyName(e.key)
                if case .tensor(let t) = e.value, !nonPersistent.contains(name) { out.append((prefix + name, t)) }
            }
            for e in state["_modules"]?.dictEntries ?? [] {
                try harvest(e.value, prefix: prefix + keyName(e.key) + ".", into: &out, depth: depth + 1)
            }
            return
        }
        for e in state.dictEntries ?? [] {
            switch e.value {
            case .tensor(let t): out.append((prefix + keyName(e.key), t))
            case .object: try harvest(e.value, prefix: prefix + keyName(e.key) + ".", into: &out, depth: depth + 1)
            default: break
            }
        }
    }
}

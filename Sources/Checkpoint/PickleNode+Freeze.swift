/// Turns the unpickler's shared, mutable graph into inert `PickleValue`s.
///
/// Shared containers are copied once per reference, so a pickle that references one list from many
/// places (the "billion laughs" of pickles) is bounded by a node budget; a container that contains
/// itself is an error.
struct PickleFreezer {
    private var budget: Int
    private let maxDepth: Int
    private var onPath: Set<ObjectIdentifier> = []

    /// - Parameters:
    ///   - budget: most values to produce (callers scale it with the pickle's length).
    ///   - maxDepth: deepest nesting.
    init(budget: Int, maxDepth: Int) {
        self.budget = budget
        self.maxDepth = maxDepth
    }

    mutating func freeze(_ node: PickleNode) throws(CheckpointError) -> PickleValue {
        try freeze(node, depth: 0)
    }

    private mutating func enter(_ object: AnyObject, _ depth: Int) throws(CheckpointError) -> ObjectIdentifier {
        guard depth < maxDepth else {
            throw CheckpointError(.limitExceeded, "values nested deeper than \(maxDepth) levels")
        }
        let id = ObjectIdentifier(object)
        guard onPath.insert(id).inserted else {
            throw CheckpointError(.malformed, "a container contains itself")
        }
        return id
    }

    private mutating func freeze(_ node: PickleNode, depth: Int) throws(CheckpointError) -> PickleValue {
        budget -= 1
        guard budget >= 0 else {
            throw CheckpointError(.limitExceeded, "the pickle expands to more values than its size allows (shared references)")
        }
        guard depth < maxDepth else {
            throw CheckpointError(.limitExceeded, "values nested deeper than \(maxDepth) levels")
        }
        switch node {
        case .none: return .none
        case .bool(let b): return .bool(b)
        case .int(let v): return .int(v)
        case .bigInt(let b): return .bigInt(b)
        case .float(let d): return .float(d)
        case .string(let s): return .string(s)
        case .bytes(let b): return .bytes(b)
        case .tuple(let items):
            var out: [PickleValue] = []
            out.reserveCapacity(items.count)
            for item in items { out.append(try freeze(item, depth: depth + 1)) }
            return .tuple(out)
        case .list(let l):
            let id = try enter(l, depth)
            defer { onPath.remove(id) }
            var out: [PickleValue] = []
            out.reserveCapacity(l.items.count)
            for item in l.items { out.append(try freeze(item, depth: depth + 1)) }
            return .list(out)
        case .set(let s):
            let id = try enter(s, depth)
            defer { onPath.remove(id) }
            var out: [PickleValue] = []
            for item in s.items { out.append(try freeze(item, depth: depth + 1)) }
            return .set(out)
        case .dict(let d):
            let id = try enter(d, depth)
            defer { onPath.remove(id) }
            var out: [PickleValue.DictEntry] = []
            out.reserveCapacity(d.keys.count)
            for (k, v) in zip(d.keys, d.values) {
                out.append(PickleValue.DictEntry(key: try freeze(k, depth: depth + 1), value: try freeze(v, depth: depth + 1)))
            }
            return .dict(out)
        case .object(let o):
            let id = try enter(o, depth)
            defer { onPath.remove(id) }
            var args: [PickleValue] = []
            for a in o.args { args.append(try freeze(a, depth: depth + 1)) }
            let state = try o.state.map { (s) throws(CheckpointError) in try freeze(s, depth: depth + 1) }
            return .object(type: o.type, args: args, state: state)
        case .global(let g):
            return .global(module: g.module, name: g.name)
        case .storage(let s):
            return .object(type: "storage", args: [.string(s.key)], state: nil)
        case .tensor(let t):
            return .tensor(try t.tensor())
        }
    }
}

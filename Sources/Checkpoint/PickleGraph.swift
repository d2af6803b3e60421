/// Walks and releases the unpickler's graph without recursion.
///
/// A pickle of a few hundred bytes can nest a million containers (`)` then a million TUPLE1, or a
/// million EMPTY_LIST then APPENDs). Swift frees such a chain recursively, one stack frame set per
/// level, which overflows the thread's stack. So the unpickler measures the nesting of what it returns
/// (`exceedsHeight`) and frees everything else it created with `release`, which drops each container
/// only after every container that refers to it, so no free cascades more than one level.
enum PickleGraph {
    /// The nodes a container refers to.
    private static func children(_ node: PickleNode) -> [PickleNode] {
        switch node {
        case .tuple(let items): return items
        case .list(let l): return l.items
        case .set(let s): return s.items
        case .dict(let d): return d.keys + d.values + d.attributes.map(\.1)
        case .object(let o): return o.state.map { o.args + [$0] } ?? o.args
        default: return []
        }
    }

    /// A key naming one container for the length of a walk (the graph is alive throughout).
    private enum Key: Hashable {
        case object(ObjectIdentifier)
        case buffer(UnsafeRawPointer)
    }

    private static func key(_ node: PickleNode) -> Key? {
        switch node {
        case .tuple(let items):
            guard !items.isEmpty else { return nil }
            return items.withUnsafeBufferPointer { $0.baseAddress.map { .buffer(UnsafeRawPointer($0)) } }
        case .list(let l): return .object(ObjectIdentifier(l))
        case .dict(let d): return .object(ObjectIdentifier(d))
        case .set(let s): return .object(ObjectIdentifier(s))
        case .object(let o): return .object(ObjectIdentifier(o))
        default: return nil
        }
    }

    /// Depth-first walk from `roots`, each container once. Calls `finished` in post-order (a container
    /// after everything below it) with the container and its height (1 + the tallest child's); stops
    /// and returns false as soon as a chain of containers longer than `limit` is seen. A container that
    /// contains itself is not followed a second time (the freezer reports it).
    private static func walk(_ roots: [PickleNode], limit: Int, finished: (PickleNode, Int) -> Void) -> Bool {
        struct Frame {
            var node: PickleNode
            var key: Key
            var children: [PickleNode]
            var next = 0
            var height = 1
        }
        var heights: [Key: Int] = [:]
        var onPath = Set<Key>()
        var path: [Frame] = []
        for root in roots {
            guard let k = key(root), heights[k] == nil else { continue }
            path.append(Frame(node: root, key: k, children: children(root)))
            onPath.insert(k)
            while !path.isEmpty {
                let top = path.count - 1
                if path[top].next < path[top].children.count {
                    let child = path[top].children[path[top].next]
                    path[top].next += 1
                    guard let ck = key(child) else { continue }
                    if let h = heights[ck] {
                        path[top].height = max(path[top].height, h + 1)
                        if path.count + h > limit { return false }
                        continue
                    }
                    if onPath.contains(ck) { continue }
                    if path.count >= limit { return false }
                    path.append(Frame(node: child, key: ck, children: children(child)))
                    onPath.insert(ck)
                } else {
                    let done = path.removeLast()
                    onPath.remove(done.key)
                    heights[done.key] = done.height
                    finished(done.node, done.height)
                    if let parent = path.indices.last { path[parent].height = max(path[parent].height, done.height + 1) }
                }
            }
        }
        return true
    }

    /// Whether `node` nests containers more than `limit` deep.
    static func exceedsHeight(_ node: PickleNode, limit: Int) -> Bool {
        !walk([node], limit: limit) { _, _ in }
    }

    /// Frees `roots` (which the caller gives up; it is left empty) and everything below them that
    /// nothing else holds, without recursion: containers are dropped parents first, each while every
    /// container below it is still held here, so each drop frees one level only.
    static func release(_ roots: inout [PickleNode]) {
        var mine: [PickleNode] = []
        swap(&mine, &roots)
        var order: [PickleNode] = []
        _ = walk(mine, limit: Int.max) { node, _ in order.append(node) }
        // Post-order reversed: every container comes after all the containers that refer to it.
        order.reverse()
        mine = []  // the roots are in `order` (first), so this frees nothing
        for i in order.indices { order[i] = .none }
    }
}

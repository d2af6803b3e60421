/// Walks and releases the unpickler's graph without recursion.
///
/// A pickle of a few hundred bytes can nest tens of thousands of containers (`)` then TUPLE1 after
/// TUPLE1, or EMPTY_LIST after EMPTY_LIST then APPENDs). Swift frees such a chain recursively, a few
/// stack frames per level, which overflows the thread's stack. So when a pickle ends, the unpickler
/// measures the nesting of what it returns and frees everything else it holds with `release`, which
/// drops each container only after every container that refers to it, so that no free cascades.
enum PickleGraph {
    /// A key naming one container for the length of a walk (the graph stays alive throughout): the
    /// class instance, or the storage of a tuple's array. Leaves and empty tuples have none.
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

    /// How many nodes a container refers to.
    private static func childCount(_ node: PickleNode) -> Int {
        switch node {
        case .tuple(let items): return items.count
        case .list(let l): return l.items.count
        case .set(let s): return s.items.count
        case .dict(let d): return d.keys.count + d.values.count + d.attributes.count
        case .object(let o): return o.args.count + (o.state == nil ? 0 : 1)
        default: return 0
        }
    }

    /// The `i`th node a container refers to.
    private static func child(_ node: PickleNode, _ i: Int) -> PickleNode {
        switch node {
        case .tuple(let items): return items[i]
        case .list(let l): return l.items[i]
        case .set(let s): return s.items[i]
        case .dict(let d):
            if i < d.keys.count { return d.keys[i] }
            if i < d.keys.count + d.values.count { return d.values[i - d.keys.count] }
            return d.attributes[i - d.keys.count - d.values.count].1
        case .object(let o): return i < o.args.count ? o.args[i] : (o.state ?? .none)
        default: return .none
        }
    }

    /// Depth-first walk from `roots`, each container once. Returns every container reached, in
    /// post-order (each after everything below it), and the nesting height of each root (1 for a
    /// container of leaves, 0 for a leaf). A container that contains itself is not followed a second
    /// time (the freezer reports it).
    private static func walk(_ roots: [PickleNode]) -> (postOrder: [PickleNode], heights: [Int]) {
        struct Frame {
            var node: PickleNode
            var key: Key
            var count: Int
            var next = 0
            var height = 1
        }
        var heights: [Key: Int] = [:]
        var onPath = Set<Key>()
        var path: [Frame] = []
        var postOrder: [PickleNode] = []
        var rootHeights: [Int] = []
        for root in roots {
            guard let k = key(root) else {
                rootHeights.append(0)
                continue
            }
            if let h = heights[k] {
                rootHeights.append(h)
                continue
            }
            path.append(Frame(node: root, key: k, count: childCount(root)))
            onPath.insert(k)
            while let top = path.indices.last {
                if path[top].next < path[top].count {
                    let c = child(path[top].node, path[top].next)
                    path[top].next += 1
                    guard let ck = key(c) else { continue }
                    if let h = heights[ck] {
                        path[top].height = max(path[top].height, h + 1)
                    } else if onPath.insert(ck).inserted {
                        path.append(Frame(node: c, key: ck, count: childCount(c)))
                    }
                } else {
                    let done = path.removeLast()
                    onPath.remove(done.key)
                    heights[done.key] = done.height
                    postOrder.append(done.node)
                    if let parent = path.indices.last { path[parent].height = max(path[parent].height, done.height + 1) }
                }
            }
            rootHeights.append(heights[k] ?? 0)
        }
        return (postOrder, rootHeights)
    }

    /// Frees `roots` (which the caller gives up; it is left empty) and whatever below them nothing
    /// else holds, without recursion, and returns the nesting height of each root. Containers are
    /// dropped parents first, each while every container below it is still held here, so each drop
    /// frees one level only. Containers also held elsewhere (say, by a result being returned) live on.
    @discardableResult
    static func release(_ roots: inout [PickleNode]) -> [Int] {
        var mine: [PickleNode] = []
        swap(&mine, &roots)
        var (order, heights) = walk(mine)
        mine = []  // every container among the roots is also in `order`: this frees nothing
        // Post-order reversed: each container comes after all the containers that refer to it.
        order.reverse()
        for i in order.indices { order[i] = .none }
        return heights
    }
}

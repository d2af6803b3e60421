import Foundation
import NeuralNet

/// The buffers one inference runs in: one growable buffer per slot of a graph's memory plan. A graph
/// assigns every intermediate activation to a slot so that buffers are reused layer after layer, and a
/// workspace keeps its memory from one call to the next (no allocation or page faults per call once it
/// has seen the largest input).
final class Workspace: @unchecked Sendable {
    private var slots: [ScratchBuffer]
    /// Slot assignments of an `ActivationPlan`, by input shape.
    var plans: [[Int]: [Int]] = [:]

    init(slots: Int) { self.slots = (0..<slots).map { _ in ScratchBuffer() } }

    /// The slot's memory with room for `count` floats (slots past the last are added). Growing discards
    /// its contents, so a slot is only asked for when a new value is about to be written into it.
    func buffer(_ slot: Int, count: Int) -> UnsafeMutablePointer<Float> {
        while slots.count <= slot { slots.append(ScratchBuffer()) }
        return slots[slot].pointer(count: count)
    }

    /// Floats held over all slots.
    var capacity: Int { slots.reduce(0) { $0 + $1.capacity } }
}

/// Where a forward pass's activations live. A graph takes a value for every activation it writes and
/// releases it once nothing reads it any more; an inference does so in the same order for the same input
/// shape. A recording plan (`dry`) only notes each value's size and lifetime (the graph computes nothing
/// then); `assign()` turns them into slots (and reserves their memory), and a plan made with that
/// assignment hands out the slots' memory.
///
/// The assignment is greedy by size: the values, largest first, each go to the first slot none of whose
/// values is live at the same time (else to a new slot), so a slot's size is that of its first value. A
/// slot per role instead (the block input, the output, each branch value, the shortcut) held the largest
/// value of each role: at batch 8, ResNet-50 55 MiB where this takes 43, ResNeXt-50 74 against 61,
/// SE-ResNet-50 86 against 55.
final class ActivationPlan {
    private let ws: Workspace
    private let firstSlot: Int
    private let assignment: [Int]?
    /// Values taken so far.
    private var taken = 0
    /// While recording: each value's size, and the clock when it was taken and released.
    private var sizes: [Int] = []
    private var born: [Int] = []
    private var died: [Int] = []
    private var clock = 0

    /// Stands in for memory while recording: never read or written.
    nonisolated(unsafe) private static let nowhere = UnsafeMutablePointer<Float>.allocate(capacity: 16)

    /// A plan over `ws`'s slots from `firstSlot` on: recording when `assignment` is nil, else handing out
    /// slot `firstSlot + assignment[k]` for the k-th value.
    init(_ ws: Workspace, firstSlot: Int, assignment: [Int]?) {
        self.ws = ws
        self.firstSlot = firstSlot
        self.assignment = assignment
    }

    /// Whether this plan only records (the graph must compute nothing).
    var dry: Bool { assignment == nil }

    /// A new value of `count` floats: its number and its memory (a placeholder while recording).
    func take(_ count: Int) -> (id: Int, pointer: UnsafeMutablePointer<Float>) {
        let id = taken
        taken += 1
        guard let assignment else {
            sizes.append(count)
            born.append(clock)
            died.append(Int.max)
            clock += 1
            return (id, Self.nowhere)
        }
        precondition(id < assignment.count, "activation plan: more values than recorded")
        return (id, ws.buffer(firstSlot + assignment[id], count: count))
    }

    /// Value `id` is no longer read (-1, a value outside the plan: nothing). Only a recording plan notes it.
    func release(_ id: Int) {
        guard dry, id >= 0 else { return }
        died[id] = clock
        clock += 1
    }

    /// The slot of each recorded value (greedy by size, see above); each slot's memory is reserved for
    /// its largest value, so that no slot grows while the plan runs.
    func assign() -> [Int] {
        var slotOf = [Int](repeating: 0, count: sizes.count)
        var slots: [[Int]] = []  // the values of each slot
        for v in sizes.indices.sorted(by: { sizes[$0] > sizes[$1] || (sizes[$0] == sizes[$1] && $0 < $1) }) {
            let free = slots.firstIndex { members in
                members.allSatisfy { u in died[u] <= born[v] || died[v] <= born[u] }
            }
            if let s = free {
                slots[s].append(v)
                slotOf[v] = s
            } else {
                slotOf[v] = slots.count
                slots.append([v])
                _ = ws.buffer(firstSlot + slotOf[v], count: sizes[v])
            }
        }
        return slotOf
    }
}

/// Workspaces free for the next call: a call takes one (or makes one when every workspace is in use by a
/// concurrent call) and gives it back when done.
final class WorkspacePool: @unchecked Sendable {
    private let lock = NSLock()
    private var free: [Workspace] = []
    private let slots: Int

    init(slots: Int) { self.slots = slots }

    func take() -> Workspace {
        lock.lock()
        defer { lock.unlock() }
        return free.popLast() ?? Workspace(slots: slots)
    }

    func give(_ w: Workspace) {
        lock.lock()
        defer { lock.unlock() }
        free.append(w)
    }

    /// Floats held by the workspaces not in use.
    var idleCapacity: Int {
        lock.lock()
        defer { lock.unlock() }
        return free.reduce(0) { $0 + $1.capacity }
    }
}

extension Tensor {
    /// A tensor copied from `images` images of `[channels, height, width]` at `base + i * imageStride`.
    static func copying(
        _ base: UnsafePointer<Float>, imageStride: Int, images: Int, channels: Int, height: Int, width: Int
    ) -> Tensor {
        let per = channels * height * width
        let data = [Float](unsafeUninitializedCapacity: images * per) { buffer, count in
            for i in 0..<images { (buffer.baseAddress! + i * per).update(from: base + i * imageStride, count: per) }
            count = images * per
        }
        return try! Tensor(shape: [images, channels, height, width], data: data)
    }
}

import Foundation
import NeuralNet

/// The buffers one inference runs in: one growable buffer per slot of a graph's memory plan. A graph
/// assigns every intermediate activation to a slot so that buffers are reused layer after layer, and a
/// workspace keeps its memory from one call to the next (no allocation or page faults per call once it
/// has seen the largest input).
final class Workspace: @unchecked Sendable {
    private let slots: [ScratchBuffer]

    init(slots: Int) { self.slots = (0..<slots).map { _ in ScratchBuffer() } }

    /// The slot's memory with room for `count` floats. Growing discards its contents, so a slot is only
    /// asked for when a new value is about to be written into it.
    func buffer(_ slot: Int, count: Int) -> UnsafeMutablePointer<Float> { slots[slot].pointer(count: count) }

    /// Floats held over all slots.
    var capacity: Int { slots.reduce(0) { $0 + $1.capacity } }
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

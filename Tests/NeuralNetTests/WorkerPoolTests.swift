import CKernels
import Foundation
import Testing

@testable import NeuralNet

/// The engine's worker pool (`ck_parallel_for`): every task runs exactly once, each thread's share is a
/// contiguous range taken from its front, and a thread that has finished its own range takes the others'
/// from their back.
@Suite("Worker pool", .serialized)
struct WorkerPoolTests {
    /// Per task: how many times it ran and on which worker.
    struct Record {
        var runs: [Int32]
        var worker: [Int32]
    }

    /// Runs `tasks` tasks on `threads` threads; tasks below `slowBelow` sleep `micros` microseconds.
    static func run(tasks: Int, threads: Int, slowBelow: Int = 0, micros: Int32 = 0) -> Record {
        // Layout: [runs ... | workers ... | slowBelow, micros]
        let buffer = UnsafeMutablePointer<Int32>.allocate(capacity: 2 * tasks + 2)
        defer { buffer.deallocate() }
        buffer.initialize(repeating: 0, count: 2 * tasks + 2)
        buffer[2 * tasks] = Int32(slowBelow)
        buffer[2 * tasks + 1] = micros
        // The context: the buffer's address and the task count.
        let context = UnsafeMutablePointer<Int>.allocate(capacity: 2)
        defer { context.deallocate() }
        context[0] = Int(bitPattern: buffer)
        context[1] = tasks
        Engine.withOverrides(threads: threads) {
            ck_parallel_for(Int32(tasks), { raw, task, worker in
                let c = raw!.assumingMemoryBound(to: Int.self)
                let p = UnsafeMutablePointer<Int32>(bitPattern: c[0])!
                let n = c[1], t = Int(task)
                p[t] += 1
                p[n + t] = worker
                if t < Int(p[2 * n]) { usleep(UInt32(p[2 * n + 1])) }
            }, context)
        }
        return Record(runs: Array(UnsafeBufferPointer(start: buffer, count: tasks)),
                      worker: Array(UnsafeBufferPointer(start: buffer + tasks, count: tasks)))
    }

    @Test("every task runs exactly once, on a worker of the job, for any task and thread count")
    func exactlyOnce() {
        for (tasks, threads) in [(1, 2), (2, 2), (7, 3), (64, 2), (1000, 2), (5, 1), (13, 4)] {
            let r = Self.run(tasks: tasks, threads: threads)
            #expect(r.runs == [Int32](repeating: 1, count: tasks), "tasks \(tasks), threads \(threads)")
            #expect(r.worker.allSatisfy { $0 >= 0 && $0 < Int32(min(threads, tasks)) }, "tasks \(tasks), threads \(threads)")
            if threads == 1 { #expect(r.worker.allSatisfy { $0 == 0 }) }
        }
    }

    @Test("2 threads: the caller's range [0, n/2) from its front; the worker's [n/2, n) from its front; what either takes of the other's range is that range's tail")
    func rangesAndStealing() {
        // The caller's half is slow (1 ms a task): the worker finishes its own half and takes the caller's
        // from the back. Whatever the scheduling, each range's tasks run by the other thread form a tail
        // of that range, and the worker, if it ran anything, ran the front of its own range first.
        for _ in 0..<3 {
            let n = 32
            let r = Self.run(tasks: n, threads: 2, slowBelow: n / 2, micros: 1000)
            #expect(r.runs == [Int32](repeating: 1, count: n))
            for (range, owner) in [(0..<(n / 2), Int32(0)), ((n / 2)..<n, Int32(1))] {
                let foreign = range.filter { r.worker[$0] != owner }
                if let first = foreign.first {
                    #expect(foreign == Array(first..<range.upperBound), "range \(range): \(r.worker)")
                }
            }
            if r.worker.contains(1) { #expect(r.worker[n / 2] == 1, "\(r.worker)") }
        }
    }
}

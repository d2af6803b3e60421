import Testing

@testable import VisionModels

/// The memory plan of the ResNet graphs: values largest first, each into the first slot none of whose
/// values is live at the same time.
@Suite("Activation plan")
struct ActivationPlanTests {
    @Test("greedy by size over lifetimes: exact slots, and the slots' memory as assigned")
    func greedyBySize() throws {
        let ws = Workspace(slots: 1)
        let dry = ActivationPlan(ws, firstSlot: 1, assignment: nil)
        #expect(dry.dry)
        // A block: input a (live to the end), branch b then c (b read by c), projection d after the
        // branch, in place; then e, the next block's first branch value.
        let a = dry.take(100).id
        let b = dry.take(40).id
        let c = dry.take(30).id
        dry.release(b)
        let d = dry.take(80).id
        dry.release(c)
        dry.release(a)
        let e = dry.take(60).id
        #expect([a, b, c, d, e] == [0, 1, 2, 3, 4])
        // Largest first: a (100) -> 0; d (80) lives with a -> 1; e (60) is born after a dies -> 0; b (40)
        // lives with a but dies before d is born -> 1; c (30) lives with a, b and d -> 2.
        #expect(ws.capacity == 0)  // recording takes no memory
        let assignment = dry.assign()
        #expect(assignment == [0, 1, 2, 1, 0])
        // Reserved for each slot's largest value (its first): slots 1, 2, 3 of the workspace hold 100, 80
        // and 30 floats; slot 0 is not the plan's.
        #expect(ws.capacity == 100 + 80 + 30)

        let plan = ActivationPlan(ws, firstSlot: 1, assignment: assignment)
        #expect(!plan.dry)
        let pa = plan.take(100).pointer
        let pb = plan.take(40).pointer
        _ = plan.take(30)
        let pd = plan.take(80).pointer
        let pe = plan.take(60).pointer
        #expect(pa == pe && pb == pd && pa != pb)  // no slot grew
        #expect(ws.capacity == 100 + 80 + 30)
    }
}

import Foundation
import Testing

@testable import Checkpoint

/// Inputs the libFuzzer targets of `Fuzz/` found (`tools/fuzz`), committed under
/// `Tests/Fixtures/fuzz-regressions/<target>/` (see the README there), each read through the entry
/// point its target fuzzes and expected to give exactly this typed error.
@Suite("Fuzz regressions (Checkpoint)")
struct FuzzRegressionTests {
    static let dir = Fixtures.root.appendingPathComponent("fuzz-regressions")

    /// (target, file, expected error without the file name, which the reader adds).
    static let cases: [(target: String, file: String, error: CheckpointError)] = [
        // `}}22s`: d[d] = d, then the data ends. Leaked the dict (a cycle) before the fix.
        ("unpickler", "leak-dict-holds-itself-truncated.pkl", CheckpointError(.truncated, "an opcode needs 1 bytes, 0 left", offset: 5)),
        // `]2a`: l.append(l), then the data ends. Leaked the list before the fix.
        ("unpickler", "leak-list-holds-itself-truncated.pkl", CheckpointError(.truncated, "an opcode needs 1 bytes, 0 left", offset: 3)),
        // The magic pickle, then `(l2a`: l.append(l), then the data ends. Leaked the list before the fix.
        ("legacy-stream", "leak-list-holds-itself-after-magic.pth", CheckpointError(.truncated, "an opcode needs 1 bytes, 0 left", offset: 19)),
    ]

    @Test("each committed fuzz finding gives its exact typed error", arguments: cases.indices)
    func finding(_ i: Int) throws {
        let c = Self.cases[i]
        let path = Self.dir.appendingPathComponent(c.target).appendingPathComponent(c.file).path
        var want = c.error
        want.file = path
        let got = try #require(throws: CheckpointError.self) {
            switch c.target {
            case "unpickler": _ = try CheckpointReader.readPickle(path)
            default: _ = try CheckpointReader.read(path)
            }
        }
        #expect(got == want)
    }

    @Test("every file under fuzz-regressions/ (Checkpoint targets) is listed above")
    func allListed() throws {
        var files: [String] = []
        for target in ["unpickler", "zip", "legacy-stream", "tar", "safetensors", "checkpoint"] {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: Self.dir.appendingPathComponent(target).path)) ?? []
            files += names.map { "\(target)/\($0)" }
        }
        #expect(files.sorted() == Self.cases.map { "\($0.target)/\($0.file)" }.sorted())
    }

    // MARK: cycles are freed (the leak the unpickler fuzzer found)

    /// Holds the list a pickle hands to its persistent-id handler, weakly.
    final class WeakList: @unchecked Sendable {
        weak var list: PickleList?
    }

    /// Runs `pickle` with a BINPERSID handler that remembers (weakly) the list it is given.
    static func run(_ pickle: [UInt8]) -> (Result<PickleNode, CheckpointError>, WeakList) {
        let seen = WeakList()
        var u = Unpickler(
            ByteBuffer(copying: pickle).all, limits: PickleLimits(), allowOpaqueClasses: false,
            persistentLoad: { pid, _ throws(CheckpointError) in
                if case .list(let l) = pid { seen.list = l }
                return .none
            })
        let result: Result<PickleNode, CheckpointError>
        do throws(CheckpointError) { result = .success(try u.load()) } catch { result = .failure(error) }
        return (result, seen)
    }

    // `]2a`: a list that holds itself; `2Q`: hand it to the persistent-id handler.
    static let selfList: [UInt8] = Array("]2a2Q".utf8)

    @Test("a self-containing list the result does not reach is freed; the result is unchanged")
    func unreachableCycleFreed() throws {
        // ... `0` pop the handler's None, `0` pop the list, `N.` return None.
        let (result, seen) = Self.run(Self.selfList + Array("00N.".utf8))
        guard case .success(.none) = result else {
            Issue.record("expected None, got \(result)")
            return
        }
        #expect(seen.list == nil)
    }

    @Test("a result that contains itself is refused at STOP, and freed")
    func reachableCycleRefused() throws {
        // ... `0` pop the handler's None, `.` return the list.
        let (result, seen) = Self.run(Self.selfList + Array("0.".utf8))
        #expect(throws: CheckpointError(.malformed, "a container contains itself", offset: 6)) { try result.get() }
        #expect(seen.list == nil)
    }

    @Test("a self-containing list is freed when the pickle is refused")
    func cycleFreedOnError() throws {
        let (result, seen) = Self.run(Self.selfList)
        #expect(throws: CheckpointError(.truncated, "an opcode needs 1 bytes, 0 left", offset: 5)) {
            try result.get()
        }
        #expect(seen.list == nil)
    }

    // MARK: nesting depth (freeing a deep chain recursed once per level and overflowed the stack)

    @Test("a chain of 100,000 nested tuples is refused when it passes the depth cap, without a crash")
    func deepTuples() throws {
        // `)` then TUPLE1 100,000 times: a 100 KB pickle. Before the cap, freeing the chain
        // overflowed the stack (found by hand while triaging the fuzzer's cycle leak).
        let pickle: [UInt8] = [0x29] + [UInt8](repeating: 0x85, count: 100_000) + [0x2E]
        let (result, _) = Self.run(pickle)
        // The TUPLE1 at offset 201 makes depth 201 (the empty tuple has no elements, so counts as 0).
        #expect(throws: CheckpointError(.limitExceeded, "tuples nested deeper than 200 levels", offset: 201)) { try result.get() }
    }

    @Test("a chain of 50,000 nested lists is refused at STOP, without a crash")
    func deepLists() throws {
        // 50,000 EMPTY_LISTs, then 49,999 APPENDs: each list into the one below it.
        let n = 50_000
        let pickle = [UInt8](repeating: 0x5D, count: n) + [UInt8](repeating: 0x61, count: n - 1) + [0x2E]
        let (result, _) = Self.run(pickle)
        #expect(throws: CheckpointError(.limitExceeded, "values nested deeper than 200 levels", offset: 2 * n - 1)) { try result.get() }
    }

    @Test("a chain of exactly 200 nested lists is still read")
    func depthAtCap() throws {
        let n = 200
        let pickle = [UInt8](repeating: 0x5D, count: n) + [UInt8](repeating: 0x61, count: n - 1) + [0x2E]
        let value = try CheckpointReader.readPickle(ByteBuffer(copying: pickle).all, name: "deep.pkl")
        var depth = 0
        var v = value
        while case .list(let items) = v {
            depth += 1
            guard let first = items.first else { break }
            v = first
        }
        #expect(depth == 200)
    }

    @Test("an acyclic result keeps its shared containers (the memo's sharing survives)")
    func sharedKept() throws {
        // `]q\x00` memo[0] = l; `h\x00` get it again; `\x86` tuple (l, l); `.` return it.
        let (result, _) = Self.run([0x5D, 0x71, 0x00, 0x68, 0x00, 0x86, 0x2E])
        guard case .success(.tuple(let items)) = result, items.count == 2,
            case .list(let a) = items[0], case .list(let b) = items[1]
        else {
            Issue.record("expected a tuple of two lists, got \(result)")
            return
        }
        #expect(a === b)
    }
}

import Foundation
import Testing

@testable import Checkpoint

/// Reading checkpoints from several tasks at once gives what reading them one after another gives: the
/// committed HDF5, safetensors and PyTorch fixtures read by 8 concurrent tasks (each file's tensors
/// compared byte for byte, refused files compared by their error), and one state dict whose tensors 8
/// tasks convert at once (the deferred CRC-32 checks of a zip's records run concurrently).
///
/// `tools/sanitize thread` runs this suite under the thread sanitizer.
@Suite("Concurrent reads")
struct ConcurrentReadTests {
    /// What reading a file gave: every tensor (name, dtype, shape, row-major bytes in native order) or
    /// the error's description.
    enum ReadResult: Equatable, Sendable {
        case tensors([Entry])
        case refused(CheckpointError.Kind, String)
    }

    struct Entry: Equatable, Sendable {
        var name: String
        var dtype: String
        var shape: [Int]
        var bytes: [UInt8]
    }

    /// Every fixture file of the HDF5, safetensors and PyTorch checkpoint folders.
    static let files: [String] = {
        var out: [String] = []
        for (dir, suffixes) in [("hdf5", [".h5"]), ("safetensors", [".safetensors"]), ("checkpoint", [".pth", ".pt"])] {
            let url = Fixtures.root.appendingPathComponent(dir)
            let names = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
            for name in names.sorted() where suffixes.contains(where: name.hasSuffix) {
                out.append(url.appendingPathComponent(name).path)
            }
        }
        return out
    }()

    /// Files that must be refused, with the error kind (the rest must read; `HDF5ReaderTests` and
    /// `CheckpointFixtureTests` check why).
    static let refused: [String: CheckpointError.Kind] = [
        "keras2_theano.h5": .unsupported, "flat_links.h5": .unsupported,
        "malicious_posix_system_zip.pth": .disallowedGlobal, "malicious_os_system_legacy_stream.pth": .disallowedGlobal,
    ]

    static func read(_ path: String) -> ReadResult {
        var options = ReadOptions()
        options.allowModulePickle = true
        do throws(CheckpointError) {
            let sd = try CheckpointReader.read(path, options: options)
            var entries: [Entry] = []
            for (name, t) in sd.entries {
                entries.append(Entry(name: name, dtype: t.dtype.name, shape: t.shape, bytes: try t.contiguousBytes().bytes))
            }
            return .tensors(entries)
        } catch {
            return .refused(error.kind, error.description)
        }
    }

    @Test("8 tasks reading every HDF5, safetensors and PyTorch fixture at once get the sequential results")
    func parallelReads() async throws {
        let files = Self.files
        #expect(files.filter { $0.hasSuffix(".h5") }.count == 13)
        let sequential = files.map(Self.read)
        for (path, result) in zip(files, sequential) {
            let name = URL(fileURLWithPath: path).lastPathComponent
            switch (result, Self.refused[name]) {
            case (.tensors(let entries), nil):
                #expect(!entries.isEmpty, "\(name) read no tensors")
            case (.refused(let kind, _), let expected?):
                #expect(kind == expected, "\(name)")
            case (.tensors, let expected?):
                Issue.record("\(name) read, but should be refused with \(expected)")
            case (.refused(_, let message), nil):
                Issue.record("\(name) refused: \(message)")
            }
        }
        let rounds = 2
        let mismatches = await withTaskGroup(of: [String].self) { group in
            for t in 0..<8 {
                group.addTask {
                    var bad: [String] = []
                    for r in 0..<rounds {
                        // Each task walks the files from its own starting point, so different tasks read
                        // different files at the same moment as well as the same ones.
                        for k in 0..<files.count {
                            let i = (k + t * 5 + r) % files.count
                            if Self.read(files[i]) != sequential[i] { bad.append("task \(t) round \(r): \(files[i])") }
                        }
                    }
                    return bad
                }
            }
            var all: [String] = []
            for await b in group { all += b }
            return all.sorted()
        }
        #expect(mismatches == [])
    }

    @Test("8 tasks converting one state dict's tensors at once (deferred CRC-32 checks) get the sequential values",
          arguments: ["toynet_zip.pth", "toynet_zip_deflated.pth", "views_zip.pth"])
    func sharedStateDict(_ name: String) async throws {
        let path = Fixtures.path(name)
        let reference = try CheckpointReader.read(path).entries.map { try $0.tensor.floats().map(\.bitPattern) }
        #expect(reference.contains { !$0.isEmpty })
        let shared = try CheckpointReader.read(path)
        let entries = shared.entries.map(\.tensor)
        let mismatches = await withTaskGroup(of: [String].self) { group in
            for t in 0..<8 {
                group.addTask {
                    var bad: [String] = []
                    for k in 0..<entries.count {
                        let i = (k + t) % entries.count
                        do throws(CheckpointError) {
                            if try entries[i].floats().map(\.bitPattern) != reference[i] { bad.append("task \(t): tensor \(i) differs") }
                        } catch {
                            bad.append("task \(t): tensor \(i): \(error)")
                        }
                    }
                    return bad
                }
            }
            var all: [String] = []
            for await b in group { all += b }
            return all.sorted()
        }
        #expect(mismatches == [])
    }
}

import Foundation
import Testing

@testable import Checkpoint

/// Every committed fixture (made by `tools/make_fixtures.py` with torch 2.13) read with exact
/// expected contents: format facts, names in order, dtypes, shapes, contiguity, and the SHA-256 of
/// each tensor's raw little-endian bytes and of its float32 conversion.
@Suite("Checkpoint fixtures")
struct CheckpointFixtureTests {
    @Test("the fixture set is present and covers every format")
    func coverage() {
        let formats = Set(Fixtures.expected.values.compactMap { $0["format"] as? String })
        for f in ["pytorch-zip", "pytorch-legacy-stream", "pytorch-legacy-tar", "pytorch-zip-wrapped-legacy", "torchscript"] {
            #expect(formats.contains(f), "no fixture of format \(f)")
        }
        #expect(Fixtures.readable.count >= 20)
        #expect(Fixtures.refused.count >= 2)
        // every file has an expected entry and vice versa
        #expect(Set(Fixtures.allFiles) == Set(Fixtures.expected.keys))
    }

    @Test("reads with exact contents", arguments: Fixtures.readable)
    func readsExactly(_ name: String) throws {
        let expected = try #require(Fixtures.expected[name])
        let sd = try CheckpointReader.read(Fixtures.path(name), options: Fixtures.options(for: name))
        let p = sd.provenance
        #expect(p.format.rawValue == expected["format"] as? String)
        #expect(p.byteOrder.rawValue == expected["byte_order"] as? String)
        if let prefix = expected["archive_prefix"] as? String {
            #expect(p.archivePrefix == prefix)
        }
        #expect(p.nestingPath == (expected["nesting_path"] as? [String] ?? []))
        #expect(p.strippedPrefixes == (expected["stripped_prefixes"] as? [String] ?? []))

        let tensors = try #require(expected["tensors"] as? [[String: Any]])
        #expect(sd.names == tensors.compactMap { $0["name"] as? String })
        for t in tensors {
            let tname = try #require(t["name"] as? String)
            guard let got = sd[tname] else {
                Issue.record("\(name): missing tensor \(tname)")
                continue
            }
            #expect(got.dtype.name == t["dtype"] as? String, "\(name) \(tname) dtype")
            #expect(got.shape == (t["shape"] as? [Int] ?? [-1]), "\(name) \(tname) shape")
            if let contiguous = t["contiguous"] as? Bool {
                #expect(got.isContiguous == contiguous, "\(name) \(tname) contiguity")
            }
            #expect(sha256Hex(try got.contiguousBytes()) == t["sha256_raw"] as? String, "\(name) \(tname) raw bytes")
            if let f32 = t["sha256_f32"] as? String {
                let floats = try got.floats()
                #expect(sha256Hex(floats) == f32, "\(name) \(tname) float32: first \(Array(floats.prefix(4))) expected \(t["first"] ?? "?")")
            } else {
                #expect(throws: CheckpointError.self) { _ = try got.floats() }
            }
        }
        if let extras = expected["extras"] as? [String: Any] {
            for (key, value) in extras {
                guard let got = sd.extras.first(where: { $0.name == key })?.value else {
                    Issue.record("\(name): missing extra \(key); have \(sd.extras.map(\.name))")
                    continue
                }
                #expect(Self.matches(got, value), "\(name) extra \(key): \(got.render()) vs \(value)")
            }
        }
        if let keys = expected["extras_keys"] as? [String] {
            #expect(sd.extras.map(\.name) == keys, "\(name) extras keys")
        }
    }

    /// Compares an inert pickle value with its JSON expectation.
    static func matches(_ value: PickleValue, _ json: Any) -> Bool {
        switch (value, json) {
        case (.object(let type, _, let state), let dict as [String: Any]):
            guard dict["__type__"] as? String == type else { return false }
            for (k, v) in dict where k != "__type__" {
                guard let field = state?[k], matches(field, v) else { return false }
            }
            return true
        case (.int(let i), let n as NSNumber):
            return Double(i) == n.doubleValue
        case (.float(let d), let n as NSNumber):
            return d == n.doubleValue
        case (.string(let s), let j as String):
            return s == j
        case (.bool(let b), let n as NSNumber):
            return b == n.boolValue
        case (.list(let items), let array as [Any]), (.tuple(let items), let array as [Any]):
            return items.count == array.count && zip(items, array).allSatisfy { matches($0, $1) }
        case (.dict(let entries), let dict as [String: Any]):
            return entries.count == dict.count && entries.allSatisfy { e in e.key.stringValue.flatMap { dict[$0] }.map { matches(e.value, $0) } ?? false }
        default:
            return false
        }
    }

    @Test("refuses hostile or unsupported files with the expected typed error", arguments: Fixtures.refused)
    func refuses(_ name: String) throws {
        let expected = try #require(Fixtures.expected[name])
        let marker = "/tmp/pretrainedvision_pwned"
        try? FileManager.default.removeItem(atPath: marker)
        do {
            let sd = try CheckpointReader.read(Fixtures.path(name), options: Fixtures.options(for: name))
            Issue.record("\(name) was read (\(sd.count) tensors) but must be refused")
        } catch {
            #expect(error.kind.rawValue == expected["error"] as? String, "\(name): \(error)")
            if let text = expected["error_contains"] as? String {
                #expect(error.description.contains(text), "\(name): \(error)")
            }
            #expect(error.file == Fixtures.path(name))
        }
        #expect(!FileManager.default.fileExists(atPath: marker), "something ran a command")
    }

    @Test("a whole-module pickle is refused by default and harvested only when allowed")
    func modulePickleNeedsOptIn() throws {
        let modules = Fixtures.readable.filter { (Fixtures.expected[$0]?["needs_option"] as? String) == "allow_module_pickle" }
        #expect(!modules.isEmpty)
        for name in modules {
            #expect(throws: CheckpointError.self) { _ = try CheckpointReader.read(Fixtures.path(name)) }
            do {
                _ = try CheckpointReader.read(Fixtures.path(name))
            } catch {
                #expect(error.kind == .disallowedGlobal, "\(name): \(error)")
            }
        }
    }

    @Test("stored zip records are zero-copy views into the mapped file")
    func zeroCopy() throws {
        let zips = Fixtures.readable.filter { Fixtures.expected[$0]?["format"] as? String == "pytorch-zip" && !$0.contains("deflate") && !$0.contains("big") }
        let name = try #require(zips.first)
        let sd = try CheckpointReader.read(Fixtures.path(name))
        let first = try #require(sd.entries.first(where: { $0.tensor.isContiguous && $0.tensor.byteCount > 0 })?.tensor)
        let bytes = try first.contiguousBytes()
        #expect(bytes.buffer === first.storage.bytes.buffer)
        let file = try ByteBuffer(mapping: Fixtures.path(name))
        // the tensor's bytes equal the file's bytes at that offset
        let inFile = try file.all.slice(bytes.offset, bytes.count)
        #expect(inFile.bytes == bytes.bytes)
    }
}

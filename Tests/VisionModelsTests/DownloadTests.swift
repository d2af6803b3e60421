import Checkpoint
import Foundation
import Testing

@testable import VisionModels

/// Downloads against a local HTTP server on 127.0.0.1 that the test starts: a good file lands in the
/// cache verified; a corrupted file, a dropped connection, an HTTP error and a stalled server all fail
/// with a typed error and leave nothing in the cache. Every case is bounded in time.
@Suite("Downloads from a local server", .serialized)
struct DownloadTests {
    typealias Sandbox = ResolutionTests.Sandbox

    /// Files in `folder` (empty if it does not exist), hidden ones included.
    static func contents(_ folder: String) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
    }

    @Test("a good file: downloaded into the torch hub cache, verified, then found there; Model.load works")
    func good() throws {
        let (probe, data) = try ResolutionTests.smallEntry()
        let server = try DownloadTestServer(routes: ["/models/\(probe.fileName)": .file(data)])
        defer { server.stop() }
        let (entry, _) = try ResolutionTests.smallEntry(base: server.base + "models/")
        let box = try Sandbox()
        defer { box.cleanup() }
        var resolver = box.resolver(download: true)
        let seen = ProgressLog()
        resolver.progress = { seen.add($0.received, $0.expected) }
        let r = try resolver.resolve(entry)
        #expect(r.location == .downloaded && r.verified)
        #expect(r.path == resolver.torchHubCheckpoints + "/" + entry.fileName)
        #expect(try Data(contentsOf: URL(fileURLWithPath: r.path)) == data)
        #expect(Self.contents(resolver.torchHubCheckpoints) == [entry.fileName], "no partial file left")
        #expect(seen.last?.0 == Int64(data.count) && seen.last?.1 == Int64(data.count))
        // Second time: found in the cache, no request made.
        let before = server.requests.count
        #expect(try resolver.resolve(entry).location == .torchHubCache)
        #expect(server.requests.count == before)
        let model = try Model.load(ResolutionTests.smallArchitecture, pretrained: .entry(entry).using(resolver))
        #expect(model.numClasses == 10)
    }

    @Test("a Keras file goes to the Keras cache and is checked by MD5")
    func keras() throws {
        let (probe, data) = try ResolutionTests.smallEntry(origin: .keras)
        let server = try DownloadTestServer(routes: ["/k/\(probe.fileName)": .file(data)])
        defer { server.stop() }
        let (entry, _) = try ResolutionTests.smallEntry(origin: .keras, base: server.base + "k/")
        let box = try Sandbox()
        defer { box.cleanup() }
        let resolver = box.resolver(download: true)
        let r = try resolver.resolve(entry)
        #expect(r.path == resolver.kerasModels + "/" + entry.fileName)
        #expect(!FileManager.default.fileExists(atPath: resolver.torchHubCheckpoints))
    }

    @Test("a corrupted file is rejected and nothing is left in the cache")
    func corrupted() throws {
        let (probe, data) = try ResolutionTests.smallEntry()
        var bad = data
        bad[bad.count / 2] ^= 0xFF
        let server = try DownloadTestServer(routes: ["/models/\(probe.fileName)": .file(bad)])
        defer { server.stop() }
        let (entry, _) = try ResolutionTests.smallEntry(base: server.base + "models/")
        let box = try Sandbox()
        defer { box.cleanup() }
        let resolver = box.resolver(download: true)
        let e = try #require(throws: ModelError.self) { try resolver.resolve(entry) }
        #expect(e.checkpointError?.kind == .integrity)
        #expect(e.message.contains("discarded"))
        #expect(Self.contents(resolver.torchHubCheckpoints).isEmpty)
    }

    @Test("a dropped connection fails and leaves nothing behind")
    func dropped() throws {
        let (probe, data) = try ResolutionTests.smallEntry()
        let server = try DownloadTestServer(routes: ["/models/\(probe.fileName)": .drop(data, sent: data.count / 3)])
        defer { server.stop() }
        let (entry, _) = try ResolutionTests.smallEntry(base: server.base + "models/")
        let box = try Sandbox()
        defer { box.cleanup() }
        let resolver = box.resolver(download: true)
        let started = Date()
        let e = try #require(throws: ModelError.self) { try resolver.resolve(entry) }
        #expect([.truncated, .io].contains(e.checkpointError?.kind))
        #expect(Self.contents(resolver.torchHubCheckpoints).isEmpty)
        #expect(Date().timeIntervalSince(started) < 30)
    }

    @Test("HTTP errors and a stalled server fail within the timeout; downloads stay off by default")
    func httpErrorsAndStall() throws {
        let server = try DownloadTestServer(routes: ["/missing/a-00.pth": .status(404), "/stall/b-00.pth": .stall])
        defer { server.stop() }
        let box = try Sandbox()
        defer { box.cleanup() }
        func entry(_ path: String) -> WeightEntry {
            WeightEntry(
                name: path, architecture: "x", tag: "T", origin: .torchvision, url: server.base + path, integrity: .sha256Prefix("00"),
                fileMegabytes: nil, parameterCount: nil, gflops: nil, top1: nil, top5: nil, preprocessing: .imageClassification())
        }
        var resolver = box.resolver(download: true)
        let e404 = try #require(throws: ModelError.self) { try resolver.resolve(entry("missing/a-00.pth")) }
        #expect(e404.message.contains("HTTP 404"))
        resolver.downloader.idleTimeout = 1
        resolver.downloader.totalTimeout = 3
        let started = Date()
        let stall = try #require(throws: ModelError.self) { try resolver.resolve(entry("stall/b-00.pth")) }
        #expect(stall.checkpointError?.kind == .io)
        #expect(Date().timeIntervalSince(started) < 15)
        #expect(Self.contents(resolver.torchHubCheckpoints).isEmpty)
        // Without permission no request is made at all.
        let before = server.requests.count
        #expect(throws: ModelError.self) { try box.resolver().resolve(entry("missing/a-00.pth")) }
        #expect(server.requests.count == before)
    }
}

/// Collects progress reports from the download thread.
final class ProgressLog: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [(Int64, Int64?)] = []
    func add(_ received: Int64, _ expected: Int64?) { lock.withLock { items.append((received, expected)) } }
    var last: (Int64, Int64?)? { lock.withLock { items.last } }
}

import Checkpoint
import Foundation
import Testing

@testable import VisionModels

/// Resolution order (weights folder, torch hub cache, Keras cache, download) and the hash checks of
/// cached files, on temporary folders: the real `~/.cache` is never touched.
@Suite("Weight resolution")
struct ResolutionTests {
    /// A temporary tree with `weights/`, `torch/` and `keras/`, removed by `cleanup`.
    struct Sandbox {
        let root: URL
        var weights: String { root.appendingPathComponent("weights").path }
        var torchHome: String { root.appendingPathComponent("torch").path }
        var kerasHome: String { root.appendingPathComponent("keras").path }

        init() throws {
            root = FileManager.default.temporaryDirectory.appendingPathComponent("pv-resolve-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        }

        func resolver(download: Bool = false) -> WeightResolver {
            WeightResolver(
                environment: ["TORCH_HOME": torchHome, "KERAS_HOME": kerasHome, "HOME": root.path],
                weightsDirectory: weights, allowDownload: download)
        }

        func place(_ data: Data, in folder: String, as name: String) throws -> String {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            let path = (folder as NSString).appendingPathComponent(name)
            try data.write(to: URL(fileURLWithPath: path))
            return path
        }

        func cleanup() { try? FileManager.default.removeItem(at: root) }
    }

    /// The small torchvision-style ResNet of the golden fixtures and its checkpoint.
    static let smallArchitecture = Architecture(
        name: "small_basic",
        family: .resnet(ResNetConfig(block: .basic, layers: [1, 2, 1, 1], stemWidth: 8, stageWidths: [8, 16, 32, 64], numClasses: 10)))
    static let smallCheckpoint = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/golden/small/small_basic.pth")

    /// A registry-style entry for the small checkpoint, named `small_basic-<sha256 prefix>.pth`.
    static func smallEntry(origin: WeightEntry.Origin = .torchvision, base: String = "http://127.0.0.1:9/models/") throws -> (
        WeightEntry, Data
    ) {
        let data = try Data(contentsOf: smallCheckpoint)
        let sha = SHA256.hex(SHA256.hash(Array(data)))
        let md5 = MD5.hex(MD5.hash(Array(data)))
        let file = origin == .keras ? "small_basic_weights.h5" : "small_basic-\(sha.prefix(8)).pth"
        let entry = WeightEntry(
            name: "Small_Weights.TEST", architecture: "small_basic", tag: "TEST", origin: origin, url: base + file,
            integrity: origin == .keras ? .md5(md5) : .sha256Prefix(String(sha.prefix(8))), fileMegabytes: nil, parameterCount: nil,
            gflops: nil, top1: nil, top5: nil, preprocessing: .imageClassification())
        return (entry, data)
    }

    @Test("environment: TORCH_HOME, XDG_CACHE_HOME and HOME defaults, KERAS_HOME")
    func environment() {
        let a = WeightResolver(environment: ["HOME": "/h"])
        #expect(a.torchHubCheckpoints == "/h/.cache/torch/hub/checkpoints")
        #expect(a.kerasModels == "/h/.keras/models")
        #expect(!a.allowDownload)
        let b = WeightResolver(environment: ["HOME": "/h", "XDG_CACHE_HOME": "/x", "KERAS_HOME": "/k"])
        #expect(b.torchHubCheckpoints == "/x/torch/hub/checkpoints")
        #expect(b.kerasModels == "/k/models")
        #expect(WeightResolver(environment: ["HOME": "/h", "TORCH_HOME": "/t"]).torchHubCheckpoints == "/t/hub/checkpoints")
    }

    @Test("Model.load(.resnet50, pretrained: .imagenet1kV2) finds resnet50-11ad3fa6.pth in the torch hub cache and checks its hash")
    func resnet50InHubCache() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        let resolver = box.resolver()
        let placed = try box.place(Data("not the real file".utf8), in: resolver.torchHubCheckpoints, as: "resnet50-11ad3fa6.pth")
        // Found by its torchvision file name, then refused: its SHA-256 does not start with 11ad3fa6.
        let e = try #require(throws: ModelError.self) { try Model.load(.resnet50, pretrained: .imagenet1kV2.using(resolver)) }
        #expect(e.checkpointError?.kind == .integrity)
        #expect(e.checkpointError?.file == placed)
        #expect(e.message.contains("SHA-256 starts with 11ad3fa6"))
        #expect(FileManager.default.fileExists(atPath: placed), "a user's cached file is never deleted")
        // Without the hash check the same file is what gets read (and is not a checkpoint).
        var lax = resolver
        lax.verifyCachedFiles = false
        let r = try #require(try PretrainedSource.imagenet1kV2.using(lax).resolve(for: .resnet50))
        #expect(r.path == placed && r.location == .torchHubCache && !r.verified)
        let e2 = try #require(throws: ModelError.self) { try Model.load(.resnet50, pretrained: .default.using(lax)) }
        #expect(e2.checkpointError?.kind == .unknownFormat)
    }

    @Test("a verified file in the torch hub cache loads into the model")
    func loadFromHubCache() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        let (entry, data) = try Self.smallEntry()
        let resolver = box.resolver()
        _ = try box.place(data, in: resolver.torchHubCheckpoints, as: entry.fileName)
        let model = try Model.load(Self.smallArchitecture, pretrained: .entry(entry).using(resolver))
        #expect(model.numClasses == 10)
        let r = try #require(try PretrainedSource.entry(entry).using(resolver).resolve(for: Self.smallArchitecture))
        #expect(r.location == .torchHubCache && r.verified)
    }

    @Test("order: the weights folder before the torch hub cache before the Keras cache")
    func order() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        let (entry, data) = try Self.smallEntry()
        let resolver = box.resolver()
        let keras = try box.place(data, in: resolver.kerasModels, as: entry.fileName)
        #expect(try resolver.resolve(entry).path == keras)
        let hub = try box.place(data, in: resolver.torchHubCheckpoints, as: entry.fileName)
        #expect(try resolver.resolve(entry).path == hub)
        let local = try box.place(data, in: box.weights, as: entry.fileName)
        let r = try resolver.resolve(entry)
        #expect(r.path == local && r.location == .weightsDirectory)
        // A converted copy (stem + .safetensors) is preferred to the original in the weights folder.
        let converted = try box.place(Data("converted".utf8), in: box.weights, as: entry.stem + ".safetensors")
        let c = try resolver.resolve(entry)
        #expect(c.path == converted && !c.verified)
    }

    @Test("not found and downloads off: the error names every place looked and how to allow a download")
    func notFound() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        let e = try #require(throws: ModelError.self) { try Model.load(.densenet121, pretrained: .default.using(box.resolver())) }
        #expect(e.checkpointError?.kind == .io)
        #expect(e.message.contains("DenseNet121_Weights.IMAGENET1K_V1 not found"))
        #expect(e.checkpointError?.file == "densenet121-a639ec97.pth")
        #expect(e.message.contains(box.torchHome + "/hub/checkpoints/densenet121-a639ec97.pth"))
        #expect(e.message.contains("--download"))
        #expect(!FileManager.default.fileExists(atPath: box.torchHome), "nothing is created when nothing is found")
    }

    @Test("a Keras file in the Keras cache is checked by MD5")
    func kerasMD5() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        let (entry, data) = try Self.smallEntry(origin: .keras)
        let resolver = box.resolver()
        let path = try box.place(data, in: resolver.kerasModels, as: entry.fileName)
        #expect(try resolver.resolve(entry).path == path)
        var tampered = data
        tampered[tampered.count / 2] ^= 1
        _ = try box.place(tampered, in: resolver.kerasModels, as: entry.fileName)
        let e = try #require(throws: ModelError.self) { try resolver.resolve(entry) }
        #expect(e.checkpointError?.kind == .integrity && e.message.contains("MD5"))
    }
}

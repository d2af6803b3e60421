import ArgumentParser
import Foundation
import Testing

@testable import classify
import VisionData
@testable import VisionModels

/// `classify` tested as a user runs it (the built binary: exit status, stdout, stderr) and in-process
/// for the flag logic.
@Suite("classify CLI", .serialized)
struct ClassifyCLITests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static func path(_ relative: String) -> String { repo.appendingPathComponent(relative).path }
    static let example = path("weights/examples/cifar_resnet8_random.pth")
    static let images = ["chelsea", "coffee", "rocket"].map { path("weights/examples/images/\($0).jpg") }

    struct Run {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    /// The built `classify` next to the test bundle, or in `.build/debug`.
    static func binary() -> URL? {
        var candidates: [URL] = []
        if let override = ProcessInfo.processInfo.environment["CLASSIFY_BINARY"], !override.isEmpty {
            candidates.append(URL(fileURLWithPath: override))
        }
        for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
            candidates.append(bundle.bundleURL.deletingLastPathComponent().appendingPathComponent("classify"))
        }
        #if os(Linux)
            if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
                candidates.append(URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("classify"))
            }
        #endif
        candidates.append(repo.appendingPathComponent(".build/debug/classify"))
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }

    static func run(_ arguments: [String], environment: [String: String] = [:], timeout: TimeInterval = 120) throws -> Run {
        let exe = try #require(binary(), "classify binary not found")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("classify-run-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let outURL = dir.appendingPathComponent("out"), errURL = dir.appendingPathComponent("err")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let out = try FileHandle(forWritingTo: outURL), err = try FileHandle(forWritingTo: errURL)
        let process = Process()
        process.executableURL = exe
        process.arguments = arguments
        process.currentDirectoryURL = repo
        var env = ProcessInfo.processInfo.environment
        env["TORCH_HOME"] = dir.appendingPathComponent("torch").path  // never the real cache
        env["KERAS_HOME"] = dir.appendingPathComponent("keras").path
        for (k, v) in environment { env[k] = v }
        process.environment = env
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline { usleep(5_000) }
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
            Issue.record("classify \(arguments) ran longer than \(timeout) s")
        }
        process.waitUntilExit()
        try out.close()
        try err.close()
        return Run(
            status: process.terminationStatus, stdout: try String(contentsOf: outURL, encoding: .utf8),
            stderr: try String(contentsOf: errURL, encoding: .utf8))
    }

    @Test("top-5 labels with probabilities for each image")
    func images() throws {
        let r = try Self.run(["--model", "resnet8", "--weights", Self.example] + Self.images)
        #expect(r.status == 0, "\(r.stderr)")
        for name in ["chelsea.jpg", "coffee.jpg", "rocket.jpg"] { #expect(r.stdout.contains(name)) }
        #expect(r.stdout.components(separatedBy: "\n").filter { $0.hasPrefix("  1. ") }.count == 3)
        #expect(r.stdout.components(separatedBy: "\n").filter { $0.hasPrefix("  5. ") }.count == 3)
        #expect(r.stdout.contains("%"))
    }

    @Test("--json: one object, probabilities sum to at most 1 and are sorted")
    func json() throws {
        let r = try Self.run(["--model", "resnet8", "--weights", Self.example, "--json", "--top", "10", Self.images[0]])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(object["model"] as? String == "resnet8")
        let image = try #require((object["images"] as? [[String: Any]])?.first)
        let top = try #require(image["top"] as? [[String: Any]])
        #expect(top.count == 10)
        let p = top.compactMap { $0["probability"] as? Double }
        #expect(p == p.sorted(by: >))
        #expect(abs(p.reduce(0, +) - 1) < 1e-5)
        #expect(Set(top.compactMap { $0["label"] as? String }) == Set(CIFAR10.classNames))
    }

    @Test("--cifar10: accuracy and a per-class table that agree with the library", arguments: ["text", "json"])
    func cifar(_ mode: String) throws {
        let args = ["--model", "resnet8", "--weights", Self.example, "--cifar10", Self.path("Tests/Fixtures/cifar10"), "--batch-size", "2"]
        let r = try Self.run(args + (mode == "json" ? ["--json"] : []))
        #expect(r.status == 0, "\(r.stderr)")
        // The same evaluation in-process.
        let model = try Model.load(
            try #require(Classify.architecture(named: "resnet8")), pretrained: .file(URL(fileURLWithPath: Self.example)))
        let test = try CIFAR10(root: Self.path("Tests/Fixtures/cifar10"), split: .test)
        let batch = try BatchLoader(test, batchSize: 5, preprocessing: model.defaultPreprocessing).batch(indices: Array(0..<5))
        let predicted = try model.classify(batch: batch.images, topK: 1).map { $0[0].index }
        let right = zip(predicted, batch.labels).filter { $0 == $1 }.count
        if mode == "json" {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
            #expect(object["images"] as? Int == 5)
            #expect(object["correct"] as? Int == right)
            #expect((object["per_class"] as? [[String: Any]])?.count == 10)
        } else {
            #expect(r.stdout.contains("accuracy \(String(format: "%.2f", 100 * Double(right) / 5))% (\(right)/5)"))
            for name in CIFAR10.classNames { #expect(r.stdout.contains("\n" + name)) }
        }
    }

    @Test("errors: a missing image, registry weights not found, unknown model, bad flags")
    func errors() throws {
        let missing = try Self.run(["--model", "resnet8", "--weights", Self.example, "/nonexistent.jpg", Self.images[0]])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("/nonexistent.jpg: error: io:"))
        #expect(missing.stdout.contains("chelsea.jpg"), "the other images are still classified")
        let notFound = try Self.run([
            "--model", "resnet50", "--pretrained", "IMAGENET1K_V2", "--weights-dir", "/nonexistent-weights", Self.images[0],
        ])
        #expect(notFound.status == 1)
        #expect(notFound.stderr.contains("resnet50-11ad3fa6.pth") && notFound.stderr.contains("--download"))
        let unknown = try Self.run(["--model", "resnet7", Self.images[0]])
        #expect(unknown.status == 1 && unknown.stderr.contains("unknown architecture 'resnet7'"))
        let both = try Self.run(["--model", "resnet8", "--weights", Self.example, "--pretrained", "x", Self.images[0]])
        #expect(both.status == 64 && both.stderr.contains("not both"))
        let none = try Self.run(["--model", "resnet8"])
        #expect(none.status == 64)
        let wrongClasses = try Self.run(["--model", "resnet8", "--weights", Self.example, "--cifar10", Self.path("Tests/Fixtures/images")])
        #expect(wrongClasses.status == 1 && wrongClasses.stderr.contains("no CIFAR-10 batches"))
    }

    @Test("flag logic in-process: sources, resolver folders, validation")
    func parsing() throws {
        let a = try Classify.parse([
            "--model", "resnet50", "--pretrained", "IMAGENET1K_V1", "--download", "--torch-home", "/t", "--keras-home", "/k", "x.jpg",
        ])
        let r = a.resolver()
        #expect(r.allowDownload && r.torchHubCheckpoints == "/t/hub/checkpoints" && r.kerasModels == "/k/models")
        #expect(try a.source().registryEntry(for: .resnet50)?.name == "ResNet50_Weights.IMAGENET1K_V1")
        let b = try Classify.parse(["--model", "resnet50", "x.jpg"])
        #expect(!b.resolver().allowDownload)
        #expect(try b.source().registryEntry(for: .resnet50)?.tag == "IMAGENET1K_V2")
        #expect(throws: (any Error).self) { try Classify.parse(["--model", "resnet50", "--top", "0", "x.jpg"]) }
        #expect(throws: (any Error).self) { try Classify.parse(["--model", "resnet50", "--cifar10", "d", "x.jpg"]) }
        #expect(throws: (any Error).self) { try Classify.parse(["--model", "resnet50", "--cifar10", "d", "--split", "val"]) }
        #expect(Classify.architecture(named: "resnet8")?.name == "resnet8")
        #expect(Classify.architecture(named: "densenet121") != nil)
        #expect(Classify.architecture(named: "resnet9") == nil)
    }
}

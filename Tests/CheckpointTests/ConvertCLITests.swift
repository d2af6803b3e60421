import Foundation
import Testing

@testable import Checkpoint

/// `convert-weights convert`, run as a user runs it (the built binary), on the Keras, h5py and
/// safetensors fixtures of tools/make_hdf5_fixtures.py.
@Suite("CLI: convert")
struct ConvertCLITests {
    static let hdf5 = Fixtures.root.appendingPathComponent("hdf5")
    static func fixture(_ name: String) -> String { hdf5.appendingPathComponent(name).path }
    static let configs = fixture("configs.json")

    /// (file, architecture in configs.json)
    static let kerasFiles: [(String, String)] = [
        ("keras3_resnet.weights.h5", "keras_resnet_tiny"), ("keras3_resnet_noname.weights.h5", "keras_resnet_tiny"),
        ("keras3_legacy_resnet.h5", "keras_resnet_tiny"), ("keras3_full_resnet.h5", "keras_resnet_tiny"),
        ("keras2_resnet_tf.h5", "keras_resnet_tiny"), ("keras22_resnet_caffe.h5", "keras_resnet_caffe_tiny"),
        ("keras3_densenet.weights.h5", "keras_densenet_tiny"), ("keras3_legacy_densenet.h5", "keras_densenet_tiny"),
        ("flat_small_densenet.h5", "small_densenet"),
    ]

    static func metadata(_ sd: StateDict) -> [String: String] {
        var out: [String: String] = [:]
        for e in sd.extras where e.name == "__metadata__" {
            for m in e.value.dictEntries ?? [] {
                if let k = m.key.stringValue, let v = m.value.stringValue { out[k] = v }
            }
        }
        return out
    }

    @Test("every HDF5 layout converts: canonical names, PyTorch layouts, provenance in __metadata__", arguments: kerasFiles)
    func converts(_ file: String, _ arch: String) throws {
        let dir = try CLITemporaryDirectory()
        let out = dir.url.appendingPathComponent("out.safetensors").path
        let r = try ConvertWeightsBinary.run(["convert", Self.fixture(file), "--arch", arch, "--arch-config", Self.configs, "-o", out])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("load report:") && r.stdout.contains("wrote \(out)"))
        let sd = try CheckpointReader.read(out)
        let m = Self.metadata(sd)
        #expect(m["source_file"] == file)
        #expect(m["source_sha256"] == (try SHA256.hashFile(path: Self.fixture(file))))
        #expect(m["architecture"] == arch)
        #expect(m["tensor_layout"]?.hasPrefix("pytorch") == true)
        #expect(m["format"] == "pt")
        if arch.hasPrefix("keras_resnet") {
            #expect(m["preprocessing"] == "caffe-bgr")
            #expect(m["flavor"]?.contains("resnet") == true)
            #expect(sd["conv1.bias"]?.shape == [64])
            #expect(sd["layer1.0.downsample.0.weight"]?.shape == [8, 64, 1, 1])
            #expect(sd["fc.weight"]?.shape == [10, 64])
        } else {
            #expect(m["preprocessing"] == "torch")
            #expect(sd["features.conv0.weight"]?.shape[0] == (arch == "small_densenet" ? 16 : 64))
            #expect(sd["classifier.weight"]?.shape == [10, sd["classifier.weight"]?.shape[1] ?? 0])
        }
        #expect(sd.names.contains { $0.hasSuffix("num_batches_tracked") })
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.url.path) == ["out.safetensors"])
    }

    @Test("HWIO kernels become OIHW and Dense kernels are transposed, value for value")
    func layouts() throws {
        let dir = try CLITemporaryDirectory()
        let out = dir.url.appendingPathComponent("k.safetensors").path
        let r = try ConvertWeightsBinary.run([
            "convert", Self.fixture("keras3_legacy_resnet.h5"), "--arch", "keras_resnet_tiny", "--arch-config", Self.configs, "-o", out,
            "-q",
        ])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.isEmpty)
        let keras = try CheckpointReader.read(Self.fixture("keras3_legacy_resnet.h5"))
        let torch = try CheckpointReader.read(out)
        let hwio = try keras["conv2_block1_2_conv/kernel"]!.floats()  // [3, 3, 2, 2]
        let oihw = try torch["layer1.0.conv2.weight"]!.floats()
        #expect(torch["layer1.0.conv2.weight"]?.shape == [2, 2, 3, 3])
        for o in 0..<2 {
            for i in 0..<2 {
                for h in 0..<3 {
                    for w in 0..<3 {
                        #expect(oihw[((o * 2 + i) * 3 + h) * 3 + w] == hwio[((h * 3 + w) * 2 + i) * 2 + o])
                    }
                }
            }
        }
        let dense = try keras["predictions/kernel"]!.floats()  // [64, 10]
        let fc = try torch["fc.weight"]!.floats()  // [10, 64]
        for o in 0..<10 { for i in 0..<64 { #expect(fc[o * 64 + i] == dense[i * 10 + o]) } }
        #expect(try torch["bn1.running_var"]?.floats() == keras["conv1_bn/moving_variance"]?.floats())
    }

    @Test("the same Keras model written five ways converts to the same tensors")
    func variantsAgree() throws {
        let dir = try CLITemporaryDirectory()
        var fingerprints: [[String]] = []
        for file in [
            "keras3_resnet.weights.h5", "keras3_resnet_noname.weights.h5", "keras3_legacy_resnet.h5", "keras3_full_resnet.h5",
            "keras2_resnet_tf.h5",
        ] {
            let out = dir.url.appendingPathComponent(file + ".safetensors").path
            let r = try ConvertWeightsBinary.run([
                "convert", Self.fixture(file), "--arch", "keras_resnet_tiny", "--arch-config", Self.configs, "-o", out, "-q",
            ])
            #expect(r.status == 0, "\(file): \(r.stderr)")
            fingerprints.append(try fingerprint(try CheckpointReader.read(out)))
        }
        #expect(Set(fingerprints.map { $0.joined(separator: "\n") }).count == 1)
    }

    @Test("--dtype f16 / bf16 and --format hdf5")
    func dtypesAndFormats() throws {
        let dir = try CLITemporaryDirectory()
        for (dtype, expected) in [("f16", DType.float16), ("bf16", .bfloat16), ("f32", .float32)] {
            let out = dir.url.appendingPathComponent("\(dtype).safetensors").path
            let r = try ConvertWeightsBinary.run([
                "convert", Self.fixture("keras3_densenet.weights.h5"), "--arch", "keras_densenet_tiny", "--arch-config", Self.configs, "-o",
                out, "--dtype", dtype, "-q",
            ])
            #expect(r.status == 0, "\(r.stderr)")
            let sd = try CheckpointReader.read(out)
            #expect(sd["features.conv0.weight"]?.dtype == expected)
            #expect(sd["features.norm0.num_batches_tracked"]?.dtype == .int64)
        }
        let h5 = dir.url.appendingPathComponent("flat.h5").path
        let r = try ConvertWeightsBinary.run([
            "convert", Self.fixture("keras3_densenet.weights.h5"), "--arch", "keras_densenet_tiny", "--arch-config", Self.configs, "-o", h5,
            "-q",
        ])
        #expect(r.status == 0, "\(r.stderr)")
        let flat = try CheckpointReader.read(h5)
        let st = try CheckpointReader.read(dir.url.appendingPathComponent("f32.safetensors").path)
        #expect(flat.provenance.format == .hdf5)
        #expect(flat.names.sorted() == st.names.sorted())  // HDF5 lists links by name
        #expect(try fingerprint(flat).sorted() == fingerprint(st).sorted())
        #expect(flat.extras.contains { $0.name == "architecture" && $0.value.stringValue == "keras_densenet_tiny" })
    }

    @Test("never overwrites without --force; --force replaces")
    func overwrite() throws {
        let dir = try CLITemporaryDirectory()
        let out = dir.url.appendingPathComponent("exists.safetensors")
        try Data("precious".utf8).write(to: out)
        let args = [
            "convert", Self.fixture("keras3_densenet.weights.h5"), "--arch", "keras_densenet_tiny", "--arch-config", Self.configs, "-o",
            out.path,
        ]
        let r = try ConvertWeightsBinary.run(args)
        #expect(r.status == 1)
        #expect(r.stderr.contains("refusing to overwrite") && r.stderr.contains("--force"))
        #expect(try Data(contentsOf: out) == Data("precious".utf8))
        let forced = try ConvertWeightsBinary.run(args + ["--force", "-q"])
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(try CheckpointReader.read(out.path).count > 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.url.path) == ["exists.safetensors"])
    }

    @Test("strict by default: wrong flavor, wrong architecture, Keras 1 channels-first kernels, bad input — exit 1, no file")
    func refusals() throws {
        let dir = try CLITemporaryDirectory()
        let out = dir.url.appendingPathComponent("never.safetensors").path
        let truncated = dir.url.appendingPathComponent("truncated.h5")
        try Data(try Data(contentsOf: URL(fileURLWithPath: Self.fixture("keras3_legacy_resnet.h5"))).prefix(5000)).write(to: truncated)
        let cases: [([String], String)] = [
            (["convert", Self.fixture("keras3_legacy_resnet.h5"), "--arch", "resnet50", "-o", out], "keras_resnet50"),
            (
                [
                    "convert", Self.fixture("keras22_resnet_caffe.h5"), "--arch", "keras_resnet_tiny", "--arch-config", Self.configs, "-o",
                    out,
                ], "keras_resnet50_caffe"
            ),
            (["convert", Self.fixture("keras3_densenet.weights.h5"), "--arch", "densenet121", "-o", out], "keras_densenet121"),
            (
                [
                    "convert", Self.fixture("keras3_densenet.weights.h5"), "--arch", "keras_resnet_tiny", "--arch-config", Self.configs,
                    "-o", out,
                ], "missing"
            ),
            (
                [
                    "convert", Self.fixture("keras1_channels_first.h5"), "--arch", "keras_resnet_tiny", "--arch-config", Self.configs, "-o",
                    out,
                ], "channels-first"
            ),
            (
                ["convert", Self.fixture("keras2_theano.h5"), "--arch", "keras_resnet_tiny", "--arch-config", Self.configs, "-o", out],
                "Theano"
            ),
            (["convert", truncated.path, "--arch", "keras_resnet_tiny", "--arch-config", Self.configs, "-o", out], "truncated.h5"),
            (["convert", Self.fixture("keras3_densenet.weights.h5"), "--arch", "no_such_arch", "-o", out], "unknown architecture"),
        ]
        for (args, phrase) in cases {
            let r = try ConvertWeightsBinary.run(args)
            #expect(r.status == 1, "\(args)")
            #expect(r.stderr.contains(phrase), "\(args): \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out))
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir.url.path) == ["truncated.h5"])
        }
    }

    @Test("--allow-missing writes what is there and lists the rest in the metadata")
    func allowMissing() throws {
        let dir = try CLITemporaryDirectory()
        // A Keras file without its classifier (as keras.applications' include_top=False files are).
        let source = try CheckpointReader.read(Self.fixture("keras3_legacy_densenet.h5"))
        let notop = source.entries.filter { !$0.name.hasPrefix("predictions/") }
        let input = dir.url.appendingPathComponent("notop.h5").path
        try HDF5Writer.write(notop, to: input, overwrite: false)
        let out = dir.url.appendingPathComponent("notop.safetensors").path
        let args = ["convert", input, "--arch", "keras_densenet_tiny", "--arch-config", Self.configs, "-o", out]
        let strict = try ConvertWeightsBinary.run(args)
        #expect(strict.status == 1)
        #expect(strict.stderr.contains("missing: classifier.weight"))
        let allowed = try ConvertWeightsBinary.run(args + ["--allow-missing"])
        #expect(allowed.status == 0, "\(allowed.stderr)")
        let sd = try CheckpointReader.read(out)
        #expect(sd["classifier.weight"] == nil && sd["features.norm5.weight"] != nil)
        #expect(Self.metadata(sd)["missing"] == "classifier.weight,classifier.bias")
    }

    @Test("safetensors in, safetensors out: PyTorch files convert too, through the same path")
    func torchAndSafetensorsInputs() throws {
        let dir = try CLITemporaryDirectory()
        let first = dir.url.appendingPathComponent("a.safetensors").path
        let second = dir.url.appendingPathComponent("b.safetensors").path
        let golden = Fixtures.root.appendingPathComponent("golden/small")
        let r1 = try ConvertWeightsBinary.run([
            "convert", Self.fixture("flat_small_densenet.h5"), "--arch", "small_densenet", "--arch-config", Self.configs, "-o", first, "-q",
        ])
        #expect(r1.status == 0, "\(r1.stderr)")
        let r2 = try ConvertWeightsBinary.run([
            "convert", first, "--arch", "small_densenet", "--arch-config", Self.configs, "-o", second, "-q",
        ])
        #expect(r2.status == 0, "\(r2.stderr)")
        #expect(try fingerprint(CheckpointReader.read(first)) == fingerprint(CheckpointReader.read(second)))
        #expect(Self.metadata(try CheckpointReader.read(second))["source_format"] == "safetensors")
        _ = golden
    }

    // MARK: Killing a conversion

    /// A resnet50-sized safetensors input (about 100 MB of float32) in `dir`.
    static func largeInput(in dir: URL) throws -> String {
        let path = dir.appendingPathComponent("large-resnet50.safetensors").path
        var entries: [(name: String, tensor: TensorData)] = []
        var rng = SplitMix64(seed: 50)
        for spec in largeSpecs() {
            let count = spec.shape.reduce(1, *)
            if spec.name.hasSuffix("num_batches_tracked") { continue }
            var values = [Float](repeating: 0, count: count)
            let base = Float(rng.next() % 1000) / 1000
            for i in 0..<count { values[i] = spec.name.hasSuffix("running_var") ? 1 + base : base + Float(i % 97) * 1e-3 }
            entries.append((spec.name, try TensorData(float32: values, shape: spec.shape)))
        }
        try SafetensorsWriter(entries, metadata: ["made_by": "ConvertCLITests"]).write(to: path, overwrite: false)
        return path
    }

    /// torchvision resnet50's keys and shapes.
    static func largeSpecs() -> [(name: String, shape: [Int])] {
        var out: [(name: String, shape: [Int])] = []
        func conv(_ n: String, _ o: Int, _ i: Int, _ k: Int) { out.append((n + ".weight", [o, i, k, k])) }
        func bn(_ n: String, _ c: Int) { for p in ["weight", "bias", "running_mean", "running_var"] { out.append(("\(n).\(p)", [c])) } }
        conv("conv1", 64, 3, 7)
        bn("bn1", 64)
        var inplanes = 64
        for (s, (count, planes)) in zip([3, 4, 6, 3], [64, 128, 256, 512]).enumerated() {
            for b in 0..<count {
                let p = "layer\(s + 1).\(b)"
                conv(p + ".conv1", planes, inplanes, 1); bn(p + ".bn1", planes)
                conv(p + ".conv2", planes, planes, 3); bn(p + ".bn2", planes)
                conv(p + ".conv3", planes * 4, planes, 1); bn(p + ".bn3", planes * 4)
                if b == 0 { conv(p + ".downsample.0", planes * 4, inplanes, 1); bn(p + ".downsample.1", planes * 4) }
                inplanes = planes * 4
            }
        }
        out.append(("fc.weight", [1000, 2048]))
        out.append(("fc.bias", [1000]))
        return out
    }

    @Test("SIGKILL at random moments: no file at the target, an existing target intact (24 runs)", .timeLimit(.minutes(10)))
    func killMidWrite() throws {
        let dir = try CLITemporaryDirectory()
        let input = try Self.largeInput(in: dir.url)
        let outDir = dir.url.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: outDir, withIntermediateDirectories: true)
        let target = outDir.appendingPathComponent("resnet50.safetensors").path
        let binary = try #require(ConvertWeightsBinary.url)

        // How long a whole conversion takes here, to spread the kills over it, and how long it writes
        // (it has a file in the output folder open: the anonymous O_TMPFILE), to aim half of the kills
        // into the write phase.
        let t0 = Date()
        let calibration = Process()
        calibration.executableURL = binary
        calibration.arguments = ["convert", input, "--arch", "resnet50", "-o", target, "-q"]
        calibration.standardOutput = FileHandle.nullDevice
        calibration.standardError = FileHandle.nullDevice
        try calibration.run()
        var writeStart: TimeInterval?
        var writeEnd: TimeInterval = 0
        while calibration.isRunning {
            if Self.isWriting(calibration.processIdentifier, into: outDir.path) {
                writeEnd = Date().timeIntervalSince(t0)
                if writeStart == nil { writeStart = writeEnd }
            }
            usleep(1_000)
        }
        // Lets Foundation finish its termination handling (without it, the Process and its run-loop
        // source stay referenced by each other: LeakSanitizer reports them).
        calibration.waitUntilExit()
        #expect(calibration.terminationStatus == 0)
        let duration = Date().timeIntervalSince(t0)
        let writeFrom = try #require(writeStart, "never saw the conversion write (took \(duration) s)")
        let writeDuration = max(writeEnd - writeFrom, 0.001)
        let completeBytes = try Data(contentsOf: URL(fileURLWithPath: target))
        let old = Data("an older converted file".utf8)

        var rng = SplitMix64(seed: 0x9111)
        var killedBeforeEnd = 0
        var killedWhileWriting = 0
        for run in 0..<24 {
            let withExisting = run % 2 == 1
            try? FileManager.default.removeItem(atPath: target)
            if withExisting { try old.write(to: URL(fileURLWithPath: target)) }
            let process = Process()
            process.executableURL = binary
            process.arguments = ["convert", input, "--arch", "resnet50", "-o", target, "-q"] + (withExisting ? ["--force"] : [])
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            // Runs 2-3, 6-7, ...: at a random point of the first half of the write phase (as long as it
            // took in the calibration run), once the writing has begun; the others at a random point of
            // the whole run.
            let fraction = Double(rng.next() % 1000) / 1000
            if (run / 2) % 2 == 1 {
                while process.isRunning, !Self.isWriting(process.processIdentifier, into: outDir.path) { usleep(500) }
                usleep(UInt32(fraction * writeDuration / 2 * 1_000_000))
            } else {
                usleep(UInt32(fraction * duration * 1.1 * 1_000_000))
            }
            let wasRunning = process.isRunning
            let wasWriting = Self.isWriting(process.processIdentifier, into: outDir.path)
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            if wasRunning && process.terminationReason == .uncaughtSignal { killedBeforeEnd += 1 }
            if wasWriting && process.terminationReason == .uncaughtSignal { killedWhileWriting += 1 }

            let entries = try FileManager.default.contentsOfDirectory(atPath: outDir.path)
            #expect(entries.allSatisfy { $0 == "resnet50.safetensors" }, "run \(run): stray files \(entries)")
            if FileManager.default.fileExists(atPath: target) {
                let now = try Data(contentsOf: URL(fileURLWithPath: target))
                // Either untouched or the complete new file, never anything in between.
                #expect(now == completeBytes || (withExisting && now == old), "run \(run): partial target of \(now.count) bytes")
            } else {
                #expect(!withExisting, "run \(run): the existing target disappeared")
            }
        }
        #expect(killedBeforeEnd >= 12, "only \(killedBeforeEnd) runs were killed mid-conversion")
        // 12 runs aim into the write phase; on a loaded machine a phase of a few hundred milliseconds
        // is sometimes over before the kill arrives.
        #expect(killedWhileWriting >= 4, "only \(killedWhileWriting) runs were killed while writing")
        print("SIGKILL: \(killedBeforeEnd) of 24 runs killed mid-conversion, \(killedWhileWriting) while writing (write phase \(writeDuration) s of \(duration) s)")
    }

    /// Whether process `pid` has a file in `folder` open (Linux: its /proc/<pid>/fd links).
    static func isWriting(_ pid: Int32, into folder: String) -> Bool {
        let fds = "/proc/\(pid)/fd"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: fds) else { return false }
        return names.contains { name in
            guard let link = try? FileManager.default.destinationOfSymbolicLink(atPath: fds + "/" + name) else { return false }
            return link.hasPrefix(folder + "/")
        }
    }
}

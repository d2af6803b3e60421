import Foundation
import Testing

@testable import Checkpoint

/// `convert-weights verify`, run as a user runs it, against references made by Keras 3.15 and torch 2.13
/// (tools/make_hdf5_fixtures.py, tools/reference_taps.py).
@Suite("CLI: verify")
struct VerifyCLITests {
    static let hdf5 = Fixtures.root.appendingPathComponent("hdf5")
    static func fixture(_ name: String) -> String { hdf5.appendingPathComponent(name).path }
    static let configs = fixture("configs.json")

    /// (checkpoint, architecture, reference)
    static let cases: [(String, String, String)] = [
        ("keras3_resnet.weights.h5", "keras_resnet_tiny", "keras_resnet_tiny.ref.safetensors"),
        ("keras3_resnet_noname.weights.h5", "keras_resnet_tiny", "keras_resnet_tiny.ref.safetensors"),
        ("keras3_legacy_resnet.h5", "keras_resnet_tiny", "keras_resnet_tiny.ref.safetensors"),
        ("keras3_full_resnet.h5", "keras_resnet_tiny", "keras_resnet_tiny.ref.safetensors"),
        ("keras2_resnet_tf.h5", "keras_resnet_tiny", "keras_resnet_tiny.ref.safetensors"),
        ("keras22_resnet_caffe.h5", "keras_resnet_caffe_tiny", "keras_resnet_caffe_tiny.ref.safetensors"),
        ("keras3_densenet.weights.h5", "keras_densenet_tiny", "keras_densenet_tiny.ref.safetensors"),
        ("keras3_legacy_densenet.h5", "keras_densenet_tiny", "keras_densenet_tiny.ref.safetensors"),
        ("flat_small_densenet.h5", "small_densenet", "../verify/flat_small_densenet.ref.safetensors"),
    ]

    @Test("every HDF5 layout and flavor verifies against its reference framework", arguments: cases)
    func verifies(_ file: String, _ arch: String, _ reference: String) throws {
        let r = try ConvertWeightsBinary.run([
            "verify", Self.fixture(file), "--arch", arch, "--arch-config", Self.configs, "--reference", Self.fixture(reference),
        ])
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("PASS"))
        for tap in arch.contains("densenet")
            ? ["stem", "denseblock1", "transition3", "denseblock4", "prelogits", "logits"]
            : ["stem", "layer1", "layer4", "prelogits", "logits"]
        {
            #expect(r.stdout.contains("\n\(tap) "), "\(tap) missing from the table")
        }
        #expect(r.stdout.contains("top-5: identical for 2 of 2 samples"))
    }

    @Test("a converted file verifies like its source")
    func convertedVerifies() throws {
        let dir = try CLITemporaryDirectory()
        let out = dir.url.appendingPathComponent("c.safetensors").path
        let c = try ConvertWeightsBinary.run([
            "convert", Self.fixture("keras22_resnet_caffe.h5"), "--arch", "keras_resnet_caffe_tiny", "--arch-config", Self.configs, "-o",
            out, "-q",
        ])
        #expect(c.status == 0, "\(c.stderr)")
        let r = try ConvertWeightsBinary.run([
            "verify", out, "--arch", "keras_resnet_caffe_tiny", "--arch-config", Self.configs, "--reference",
            Self.fixture("keras_resnet_caffe_tiny.ref.safetensors"),
        ])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
    }

    @Test("a reference that differs beyond the bound fails with exit 1 and names the tap")
    func perturbedFails() throws {
        let dir = try CLITemporaryDirectory()
        let reference = try CheckpointReader.read(Self.fixture("keras_densenet_tiny.ref.safetensors"))
        var entries: [(name: String, tensor: TensorData)] = []
        for e in reference.entries {
            if e.name == "transition2" {
                var v = try e.tensor.floats()
                let scale = v.map { abs($0) }.max() ?? 1
                v[3] += 1e-3 * scale  // ten times the bound
                entries.append((e.name, try TensorData(float32: v, shape: e.tensor.shape)))
            } else {
                entries.append(e)
            }
        }
        let path = dir.url.appendingPathComponent("perturbed.safetensors").path
        try SafetensorsWriter(entries).write(to: path, overwrite: false)
        let r = try ConvertWeightsBinary.run([
            "verify", Self.fixture("keras3_densenet.weights.h5"), "--arch", "keras_densenet_tiny", "--arch-config", Self.configs,
            "--reference", path,
        ])
        #expect(r.status == 1)
        #expect(r.stdout.contains("FAIL"))
        let line = r.stdout.split(separator: "\n").first { $0.hasPrefix("transition2 ") }
        #expect(line?.hasSuffix("FAIL") == true, "\(r.stdout)")
        #expect(r.stdout.split(separator: "\n").first { $0.hasPrefix("transition1 ") }?.hasSuffix("ok") == true)
    }

    @Test("the wrong batch-norm epsilon is caught: Keras 2.2 weights run with eps 1.001e-5 fail verify")
    func epsilonMatters() throws {
        let dir = try CLITemporaryDirectory()
        // The Keras 2.2 file's tensors renamed to torchvision names, loaded into the applications flavor (eps 1.001e-5).
        let out = dir.url.appendingPathComponent("caffe.safetensors").path
        let c = try ConvertWeightsBinary.run([
            "convert", Self.fixture("keras22_resnet_caffe.h5"), "--arch", "keras_resnet_caffe_tiny", "--arch-config", Self.configs, "-o",
            out, "-q",
        ])
        #expect(c.status == 0, "\(c.stderr)")
        let r = try ConvertWeightsBinary.run([
            "verify", out, "--arch", "keras_resnet_tiny", "--arch-config", Self.configs, "--reference",
            Self.fixture("keras_resnet_caffe_tiny.ref.safetensors"),
        ])
        #expect(r.status == 1)
        #expect(r.stdout.contains("FAIL"))
    }

    @Test("bad references and checkpoints: exit 1 with one clear error")
    func badInputs() throws {
        let dir = try CLITemporaryDirectory()
        let noInput = dir.url.appendingPathComponent("no-input.safetensors").path
        try SafetensorsWriter([("logits", try TensorData(float32: [1, 2], shape: [1, 2]))]).write(to: noInput, overwrite: false)
        let cases: [([String], String)] = [
            (
                [
                    "verify", Self.fixture("keras3_densenet.weights.h5"), "--arch", "keras_densenet_tiny", "--arch-config", Self.configs,
                    "--reference", noInput,
                ], "no 'input' tensor"
            ),
            (
                [
                    "verify", Self.fixture("keras3_densenet.weights.h5"), "--arch", "keras_densenet_tiny", "--arch-config", Self.configs,
                    "--reference", dir.url.appendingPathComponent("absent").path,
                ], "error: io:"
            ),
            (
                [
                    "verify", Self.fixture("keras2_theano.h5"), "--arch", "keras_resnet_tiny", "--arch-config", Self.configs, "--reference",
                    Self.fixture("keras_resnet_tiny.ref.safetensors"),
                ], "Theano"
            ),
        ]
        for (args, phrase) in cases {
            let r = try ConvertWeightsBinary.run(args)
            #expect(r.status == 1, "\(args)")
            #expect(r.stderr.contains(phrase), "\(r.stderr)")
        }
    }
}
